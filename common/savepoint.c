/* savepoint.c - a savepoint's files: the manifest, the checksums and the
 * copies of LMDB environments (see savepoint.h). */
#include "savepoint.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#define LINE_MAX_LEN 512

static void set_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

uint64_t savepoint_fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int fd_sum(int fd, uint64_t *size, uint64_t *sum)
{
	static __thread unsigned char buf[1 << 16];
	uint64_t h = SAVEPOINT_FNV_SEED, n = 0;
	for (;;) {
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		h = savepoint_fnv(h, buf, (size_t)got);
		n += (uint64_t)got;
	}
	*size = n;
	*sum = h;
	return 0;
}

int savepoint_file_sum(const char *path, uint64_t *size, uint64_t *sum)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fd_sum(fd, size, sum);
	close(fd);
	return rc;
}

int savepoint_copy_env(struct store_env *env, const char *dir, uint64_t *size, uint64_t *sum,
		       char *err, size_t err_len)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) >= sizeof(path)) {
		set_err(err, err_len, "%s/data.mdb: path too long", dir);
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		set_err(err, err_len, "%s: cannot create: %s", path, strerror(e));
		return -e;
	}
	int rc = store_copy(env, fd);
	const char *what = "cannot copy into it";
	if (rc == 0 && fsync(fd) != 0) {
		rc = -errno;
		what = "fsync failed";
	}
	/* Read back what the disk holds now: the checksum covers the file as
	 * written, not as meant. */
	if (rc == 0 && lseek(fd, 0, SEEK_SET) != 0) {
		rc = -errno;
		what = "cannot read it back";
	}
	if (rc == 0 && (rc = fd_sum(fd, size, sum)) != 0)
		what = "cannot read it back";
	if (rc != 0)
		set_err(err, err_len, "%s: %s: %s", path, what, strerror(-rc));
	close(fd);
	return rc;
}

int savepoint_sync_file(const char *path, uint64_t *size, uint64_t *sum, char *err, size_t err_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	if (fd < 0 || fsync(fd) != 0)
		rc = -errno;
	if (rc == 0)
		rc = fd_sum(fd, size, sum);
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		set_err(err, err_len, "%s: cannot sync or read it: %s", path, strerror(-rc));
	return rc;
}

int savepoint_manifest_init(struct savepoint_manifest *m, unsigned partitions)
{
	memset(m, 0, sizeof(*m));
	m->partitions = partitions;
	m->shards = calloc(partitions ? partitions : 1, sizeof(*m->shards));
	m->files = calloc(partitions + 1, sizeof(*m->files));
	if (!m->shards || !m->files) {
		savepoint_manifest_free(m);
		return -ENOMEM;
	}
	return 0;
}

void savepoint_manifest_free(struct savepoint_manifest *m)
{
	free(m->shards);
	free(m->files);
	m->shards = NULL;
	m->files = NULL;
	m->n_files = 0;
}

int savepoint_manifest_write(const char *dir, const struct savepoint_manifest *m, char *err,
			     size_t err_len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/manifest", dir);
	FILE *f = fopen(path, "wxe");
	if (!f) {
		int e = errno;
		set_err(err, err_len, "%s: cannot create: %s", path, strerror(e));
		return -e;
	}
	fprintf(f, "%s %d\npartitions %u\nsource %s\nsource_identity %016" PRIx64 "\n",
		SAVEPOINT_MAGIC, SAVEPOINT_VERSION, m->partitions, m->source, m->source_identity);
	fprintf(f, "position %" PRIu64 "\ngeneration %" PRIu64 "\nhandler %016" PRIx64 "\n",
		m->position, m->generation, m->handler);
	fprintf(f, "created %s\n", m->created);
	for (unsigned p = 0; p < m->partitions; p++) {
		const struct savepoint_shard *sh = &m->shards[p];
		fprintf(f, "shard %u %" PRIu64 " %d %" PRIu64 " %" PRIu64 "\n", p, sh->applied_seq,
			sh->has_applied, sh->output_len, sh->replay_applied);
	}
	for (size_t i = 0; i < m->n_files; i++)
		fprintf(f, "file %s %" PRIu64 " %016" PRIx64 "\n", m->files[i].rel,
			m->files[i].size, m->files[i].sum);
	fprintf(f, "end\n");
	int rc = 0;
	errno = 0;
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0)
		rc = errno ? -errno : -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = errno ? -errno : -EIO;
	if (rc != 0)
		set_err(err, err_len, "%s: cannot write: %s", path, strerror(-rc));
	return rc;
}

/* ---- reading ---- */

static int parse_u64(const char *s, int base, uint64_t *v)
{
	char *end;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	unsigned long long x = strtoull(s, &end, base);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

/* Split a line into at most `max` words at single spaces. */
static int split(char *line, char **w, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = t;
	}
	return n;
}

/* A file name the manifest may list: config/data.mdb, state/pP/data.mdb. */
static int rel_partition(const char *rel, unsigned partitions, unsigned *p)
{
	uint64_t v;
	char num[16];
	if (strcmp(rel, "config/data.mdb") == 0) {
		*p = partitions;
		return 0;
	}
	const char *slash;
	if (strncmp(rel, "state/p", 7) != 0 || !(slash = strchr(rel + 7, '/')) ||
	    strcmp(slash, "/data.mdb") != 0 || slash - (rel + 7) >= (long)sizeof(num))
		return -1;
	memcpy(num, rel + 7, (size_t)(slash - (rel + 7)));
	num[slash - (rel + 7)] = '\0';
	if (parse_u64(num, 10, &v) != 0 || v >= partitions || (num[0] == '0' && num[1]))
		return -1;
	*p = (unsigned)v;
	return 0;
}

struct reader {
	const char *path;
	unsigned line;
	char *err;
	size_t err_len;
};

static int bad(struct reader *r, const char *what)
{
	set_err(r->err, r->err_len, "%s:%u: %s", r->path, r->line, what);
	return -1;
}

/* One "name value..." line after the header, into m. seen[] marks the
 * shards and files (index partitions: the config's) already given. */
static int parse_line(struct reader *r, char **w, int n, struct savepoint_manifest *m,
		      unsigned char *shard_seen, unsigned char *file_seen)
{
	uint64_t v;
	const char *k = w[0];
	if (!m->shards && strcmp(k, "partitions") != 0)
		return bad(r, "partitions must come first after the header line");
	if (strcmp(k, "partitions") == 0) {
		if (m->shards || n != 2 || parse_u64(w[1], 10, &v) != 0 || v == 0 || v > 1024)
			return bad(r, "partitions: want one count, 1..1024, once");
		return savepoint_manifest_init(m, (unsigned)v) == 0 ? 0 : bad(r, "out of memory");
	}
	if (strcmp(k, "source") == 0 && n == 2 && strlen(w[1]) < sizeof(m->source)) {
		snprintf(m->source, sizeof(m->source), "%s", w[1]);
		return 0;
	}
	if (strcmp(k, "created") == 0 && n == 2 && strlen(w[1]) < sizeof(m->created)) {
		snprintf(m->created, sizeof(m->created), "%s", w[1]);
		return 0;
	}
	if (strcmp(k, "source_identity") == 0 || strcmp(k, "handler") == 0) {
		if (n != 2 || parse_u64(w[1], 16, &v) != 0)
			return bad(r, "want 16 hex digits");
		*(k[0] == 's' ? &m->source_identity : &m->handler) = v;
		return 0;
	}
	if (strcmp(k, "position") == 0 || strcmp(k, "generation") == 0) {
		if (n != 2 || parse_u64(w[1], 10, &v) != 0)
			return bad(r, "want a number");
		*(k[0] == 'p' ? &m->position : &m->generation) = v;
		return 0;
	}
	if (strcmp(k, "shard") == 0) {
		uint64_t x[5];
		for (int i = 0; i < 5; i++)
			if (n != 6 || parse_u64(w[i + 1], 10, &x[i]) != 0)
				return bad(r, "shard: want P APPLIED_SEQ HAS_APPLIED OUTPUT_LEN "
					      "REPLAY_APPLIED");
		if (x[0] >= m->partitions || shard_seen[x[0]] || x[2] > 1)
			return bad(r, "shard: a partition out of range or given twice, or "
				      "HAS_APPLIED not 0 or 1");
		shard_seen[x[0]] = 1;
		m->shards[x[0]] = (struct savepoint_shard){
		    .applied_seq = x[1],
		    .has_applied = (int)x[2],
		    .output_len = x[3],
		    .replay_applied = x[4],
		};
		return 0;
	}
	if (strcmp(k, "file") == 0) {
		unsigned p;
		struct savepoint_file *f = &m->files[m->n_files];
		if (n != 4 || strlen(w[1]) >= sizeof(f->rel) ||
		    rel_partition(w[1], m->partitions, &p) != 0)
			return bad(r, "file: want config/data.mdb or state/pP/data.mdb, SIZE, "
				      "CHECKSUM");
		if (file_seen[p])
			return bad(r, "file: listed twice");
		if (parse_u64(w[2], 10, &f->size) != 0 || strlen(w[3]) != 16 ||
		    parse_u64(w[3], 16, &f->sum) != 0)
			return bad(r, "file: SIZE must be a number, CHECKSUM 16 hex digits");
		file_seen[p] = 1;
		snprintf(f->rel, sizeof(f->rel), "%s", w[1]);
		m->n_files++;
		return 0;
	}
	return bad(r, "unknown line, or the wrong number of values");
}

int savepoint_manifest_read(const char *dir, struct savepoint_manifest *m, char *err,
			    size_t err_len)
{
	char path[4096], line[LINE_MAX_LEN + 2];
	char *w[8];
	unsigned char shard_seen[1024] = {0}, file_seen[1025] = {0};
	int rc = -1, ended = 0;
	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "%s/manifest", dir);
	struct reader r = {path, 0, err, err_len};
	FILE *f = fopen(path, "re");
	if (!f) {
		set_err(err, err_len, "%s: cannot open: %s (not a savepoint?)", path,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		r.line++;
		if (ended) {
			bad(&r, "text after the end line");
			goto out;
		}
		if (len == 0 || line[len - 1] != '\n' || len > LINE_MAX_LEN) {
			bad(&r, "a line too long or without its newline (cut?)");
			goto out;
		}
		line[len - 1] = '\0';
		int n = split(line, w, 7);
		if (n == 0 || n > 7) {
			bad(&r, n ? "too many values" : "empty line");
			goto out;
		}
		if (r.line == 1) {
			char want[8];
			snprintf(want, sizeof(want), "%d", SAVEPOINT_VERSION);
			if (n != 2 || strcmp(w[0], SAVEPOINT_MAGIC) != 0 || strcmp(w[1], want)) {
				bad(&r, "not a ringmaster savepoint manifest of version 1");
				goto out;
			}
			continue;
		}
		if (strcmp(w[0], "end") == 0 && n == 1) {
			ended = 1;
			continue;
		}
		if (parse_line(&r, w, n, m, shard_seen, file_seen) != 0)
			goto out;
	}
	if (ferror(f)) {
		set_err(err, err_len, "%s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	if (!ended || !m->shards) {
		r.line++;
		bad(&r, "no end line: the manifest is cut");
		goto out;
	}
	for (unsigned p = 0; p <= m->partitions; p++) {
		if ((p < m->partitions && !shard_seen[p]) || !file_seen[p]) {
			set_err(err, err_len, "%s: no %s line for %s%u", path,
				p < m->partitions && !shard_seen[p] ? "shard" : "file",
				p < m->partitions ? "partition " : "the config, after partition ",
				p < m->partitions ? p : p - 1);
			goto out;
		}
	}
	if (!m->source[0] || !m->created[0]) {
		set_err(err, err_len, "%s: no source or created line", path);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	if (rc != 0)
		savepoint_manifest_free(m);
	return rc;
}

int savepoint_verify(const char *dir, struct savepoint_manifest *out, char *err, size_t err_len)
{
	struct savepoint_manifest m;
	char path[4096];
	if (savepoint_manifest_read(dir, &m, err, err_len) != 0)
		return -1;
	for (size_t i = 0; i < m.n_files; i++) {
		const struct savepoint_file *f = &m.files[i];
		uint64_t size, sum;
		snprintf(path, sizeof(path), "%s/%s", dir, f->rel);
		int rc = savepoint_file_sum(path, &size, &sum);
		if (rc != 0) {
			set_err(err, err_len, "%s: cannot read: %s", path, strerror(-rc));
			goto bad;
		}
		if (size != f->size) {
			set_err(err, err_len,
				"%s: %" PRIu64 " bytes where the manifest says %" PRIu64
				": the file is cut or grew",
				path, size, f->size);
			goto bad;
		}
		if (sum != f->sum) {
			set_err(err, err_len,
				"%s: checksum %016" PRIx64 " where the manifest says %016" PRIx64
				": the file is corrupt",
				path, sum, f->sum);
			goto bad;
		}
	}
	if (out)
		*out = m;
	else
		savepoint_manifest_free(&m);
	return 0;
bad:
	savepoint_manifest_free(&m);
	return -1;
}

void savepoint_remove(const char *dir, unsigned partitions)
{
	char path[4096];
	for (unsigned p = 0; p < partitions; p++) {
		snprintf(path, sizeof(path), "%s/state/p%u/data.mdb", dir, p);
		unlink(path);
		snprintf(path, sizeof(path), "%s/state/p%u", dir, p);
		rmdir(path);
	}
	static const char *const names[] = {"config/data.mdb", "config", "state", "manifest"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path) != 0)
			rmdir(path);
	}
	rmdir(dir);
}
