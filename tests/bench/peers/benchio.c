/* benchio.c - the shared parts of the limit program and the peers (see
 * benchio.h). */
#include "benchio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BIO_TABLE_NAME_MAX 63

/* ---- files --------------------------------------------------------------- */

int bio_write_all(int fd, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The whole of path into a malloc'd buffer (one byte more, for a NUL). */
static int read_whole(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "%s: not a regular file\n", path);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fprintf(stderr, "%s: out of memory for %lld bytes\n", path, (long long)st.st_size);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "reading %s: %s\n", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break; /* shrunk under us: take what there is */
		got += (size_t)r;
	}
	buf[got] = '\0';
	close(fd);
	*out = buf;
	*len = got;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

int bio_events_load(const char *path, struct bio_events *e)
{
	size_t cap = 0;

	memset(e, 0, sizeof(*e));
	if (read_whole(path, &e->buf, &e->len) < 0)
		return -1;
	for (size_t off = 0; off < e->len;) {
		const char *line = e->buf + off, *nl = memchr(line, '\n', e->len - off);
		size_t len = nl ? (size_t)(nl - line) : e->len - off;
		uint64_t seq = off;

		off += len + (nl ? 1 : 0);
		if (len && line[len - 1] == '\r')
			len--;
		const char *tab = memchr(line, '\t', len);
		size_t klen = tab ? (size_t)(tab - line) : 0;

		if (len > BIO_LINE_MAX || klen == 0 || klen > BIO_KEY_MAX) {
			e->bad++;
			continue;
		}
		if (e->n == cap) {
			size_t ncap = cap ? 2 * cap : 65536;
			struct rm_event *ev = realloc(e->ev, ncap * sizeof(*ev));

			if (!ev) {
				fprintf(stderr, "%s: out of memory for %zu events\n", path, ncap);
				bio_events_free(e);
				return -1;
			}
			e->ev = ev;
			cap = ncap;
		}
		e->ev[e->n++] = (struct rm_event){seq, line, klen, tab + 1, len - klen - 1};
	}
	return 0;
}

void bio_events_free(struct bio_events *e)
{
	free(e->buf);
	free(e->ev);
	memset(e, 0, sizeof(*e));
}

int bio_table_each(const char *path, bio_row_fn fn, void *arg)
{
	char *buf;
	size_t len, lineno = 0;
	int rc = -1;

	if (read_whole(path, &buf, &len) < 0)
		return -1;
	for (size_t off = 0; off < len;) {
		char *line = buf + off, *nl = memchr(line, '\n', len - off);
		size_t n = nl ? (size_t)(nl - line) : len - off;

		off += n + (nl ? 1 : 0);
		lineno++;
		if (n && line[n - 1] == '\r')
			n--;
		if (n == 0 || line[0] == '#')
			continue;
		char *tab = memchr(line, '\t', n);
		size_t klen = tab ? (size_t)(tab - line) : n;
		const char *val = tab ? tab + 1 : line + n;

		if (klen == 0 || klen > BIO_KEY_MAX) {
			fprintf(stderr, "%s:%zu: a key is 1..%d bytes, got %zu\n", path, lineno,
				BIO_KEY_MAX, klen);
			goto out;
		}
		if (fn(arg, line, klen, val, (size_t)(line + n - val)) < 0)
			goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

int bio_table_arg(const char *arg, const char **name, size_t *name_len, const char **file)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0;
	bool ok = eq && n >= 1 && n <= BIO_TABLE_NAME_MAX && eq[1];

	for (size_t i = 0; ok && i < n; i++)
		ok = arg[i] == '_' || (arg[i] >= '0' && arg[i] <= '9') ||
		     (arg[i] >= 'a' && arg[i] <= 'z') || (arg[i] >= 'A' && arg[i] <= 'Z');
	if (!ok) {
		fprintf(stderr, "'%s' is not NAME=FILE (NAME: 1..%d of A-Z a-z 0-9 _)\n", arg,
			BIO_TABLE_NAME_MAX);
		return -1;
	}
	*name = arg;
	*name_len = n;
	*file = eq + 1;
	return 0;
}

/* ---- the map ------------------------------------------------------------- */

/* Eight bytes at a time, multiply and fold: keys here are short, and this
 * is several times cheaper than a byte loop. */
uint64_t bio_hash(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;

	for (; n >= 8; s += 8, n -= 8) {
		uint64_t w;

		memcpy(&w, s, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	if (n) {
		uint64_t w = 0;

		memcpy(&w, s, n);
		h = (h ^ w) * 0x94d049bb133111ebULL;
	}
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return h ? h : 1; /* 0 marks an empty slot of a map */
}

/* Zeroed memory on 2 MB pages where the kernel gives them (THP in madvise
 * mode): a lookup is a random access, and on 4 kB pages each one would
 * miss the TLB as well as the cache. free() releases it. */
static void *huge_calloc(size_t size)
{
	size_t huge = (size_t)2 << 20;
	void *p;

	size = (size + huge - 1) / huge * huge;
	if (posix_memalign(&p, huge, size) != 0)
		return NULL;
	(void)madvise(p, size, MADV_HUGEPAGE); /* a hint: fine if refused */
	memset(p, 0, size);
	return p;
}

struct bio_entry *bio_map_get(const struct bio_map *m, const char *k, size_t n)
{
	if (!m->tab)
		return NULL;
	uint64_t h = bio_hash(k, n);

	for (size_t i = (size_t)h & m->mask;; i = (i + 1) & m->mask) {
		struct bio_entry *e = &m->tab[i];

		if (e->hash == 0)
			return NULL;
		if (e->hash == h && e->klen == n && memcmp(bio_entry_key(e), k, n) == 0)
			return e;
	}
}

/* The empty slot where an entry of hash h goes. */
static struct bio_entry *free_slot(struct bio_map *m, uint64_t h)
{
	size_t i = (size_t)h & m->mask;

	while (m->tab[i].hash != 0)
		i = (i + 1) & m->mask;
	return &m->tab[i];
}

/* Double the table (kept at most three quarters full). */
static int map_grow(struct bio_map *m)
{
	size_t old = m->tab ? m->mask + 1 : 0, nslots = old ? 2 * old : 1024;
	struct bio_entry *tab = huge_calloc(nslots * sizeof(*tab)), *prev = m->tab;

	if (!tab)
		return -1;
	m->tab = tab;
	m->mask = nslots - 1;
	for (size_t i = 0; i < old; i++)
		if (prev[i].hash)
			*free_slot(m, prev[i].hash) = prev[i];
	free(prev);
	return 0;
}

int bio_map_put(struct bio_map *m, const char *k, size_t kn, const void *v, size_t vn)
{
	struct bio_entry *e = bio_map_get(m, k, kn);

	if (!e) {
		if (kn > UINT16_MAX)
			return -1;
		if (4 * (m->n + 1) > 3 * (m->tab ? m->mask + 1 : 0) && map_grow(m) < 0)
			return -1;
		uint64_t h = bio_hash(k, kn);
		char *ext = NULL;

		if (kn > BIO_INLINE_KEY) {
			ext = malloc(kn);
			if (!ext)
				return -1;
			memcpy(ext, k, kn);
		}
		e = free_slot(m, h);
		*e = (struct bio_entry){.hash = h, .klen = (uint16_t)kn};
		if (ext)
			e->kext = ext;
		else
			memcpy(e->k, k, kn);
		m->n++;
	}
	return bio_entry_set(e, v, vn);
}

int bio_entry_set(struct bio_entry *e, const void *v, size_t vn)
{
	char *ext = e->vlen > BIO_INLINE_VAL ? e->vext : NULL;

	if (vn > UINT32_MAX)
		return -1;
	if (vn > BIO_INLINE_VAL) {
		if (vn > e->vlen || !ext) {
			char *p = realloc(ext, vn);

			if (!p)
				return -1;
			ext = p;
		}
		memcpy(ext, v, vn);
		e->vext = ext;
	} else {
		free(ext);
		memcpy(e->v, v, vn);
	}
	e->vlen = (uint32_t)vn;
	return 0;
}

static int by_key(const void *a, const void *b)
{
	const struct bio_entry *x = *(struct bio_entry *const *)a,
			       *y = *(struct bio_entry *const *)b;
	int c = memcmp(bio_entry_key(x), bio_entry_key(y), x->klen < y->klen ? x->klen : y->klen);

	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

int bio_map_dump(const struct bio_map *m, const char *path)
{
	struct bio_entry **order = malloc((m->n ? m->n : 1) * sizeof(*order));
	FILE *f = fopen(path, "w");
	int rc = -1;

	if (!order || !f) {
		fprintf(stderr, "writing %s: %s\n", path,
			order ? strerror(errno) : "out of memory");
		goto out;
	}
	for (size_t i = 0, k = 0; m->tab && i <= m->mask; i++)
		if (m->tab[i].hash)
			order[k++] = &m->tab[i];
	if (m->n)
		qsort(order, m->n, sizeof(*order), by_key);
	for (size_t i = 0; i < m->n; i++)
		fprintf(f, "%.*s\t%.*s\n", (int)order[i]->klen, bio_entry_key(order[i]),
			(int)order[i]->vlen, bio_entry_val(order[i]));
	if (fflush(f) != 0 || ferror(f)) {
		fprintf(stderr, "writing %s: %s\n", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (f && fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "writing %s: %s\n", path, strerror(errno));
		rc = -1;
	}
	free(order);
	return rc;
}

void bio_map_free(struct bio_map *m)
{
	for (size_t i = 0; m->tab && i <= m->mask; i++) {
		if (m->tab[i].klen > BIO_INLINE_KEY)
			free(m->tab[i].kext);
		if (m->tab[i].vlen > BIO_INLINE_VAL)
			free(m->tab[i].vext);
	}
	free(m->tab);
	memset(m, 0, sizeof(*m));
}

unsigned bio_split(const char *key, size_t klen, unsigned n)
{
	return (unsigned)(bio_hash(key, klen) % n);
}

/* ---- clocks and the result ----------------------------------------------- */

double bio_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bio_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime (+ cutime + cstime with `reaped`) of pid, in seconds. */
static double proc_cpu(long pid, bool reaped)
{
	char path[64], buf[1024];
	unsigned long long f[4];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* The command name may hold spaces: count fields after its ')'. */
	const char *p = strrchr(buf, ')');

	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
			 &f[0], &f[1], &f[2], &f[3]) != 4)
		return -1;
	return (double)(f[0] + f[1] + (reaped ? f[2] + f[3] : 0)) / (double)sysconf(_SC_CLK_TCK);
}

double bio_tree_cpu(long pid)
{
	char path[64];
	double total = proc_cpu(pid, true);
	long kid;
	FILE *fp;

	if (total < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", pid, pid);
	fp = fopen(path, "r");
	if (!fp)
		return total;
	while (fscanf(fp, "%ld", &kid) == 1) {
		double c = bio_tree_cpu(kid);

		if (c > 0)
			total += c;
	}
	fclose(fp);
	return total;
}

void bio_report(const char *name, uint64_t events, double secs, double cpu, double server_cpu,
		bool complete)
{
	double all = cpu + server_cpu;

	printf("%s: events=%llu seconds=%.4f events_per_second=%.0f cpu_seconds=%.4f "
	       "server_cpu_seconds=%.4f cpu_us_per_event=%.4f complete=%s\n",
	       name, (unsigned long long)events, secs, secs > 0 ? (double)events / secs : 0.0, all,
	       server_cpu, events ? 1e6 * all / (double)events : 0.0, complete ? "yes" : "no");
	fflush(stdout);
}

int bio_parse_uint(const char *what, const char *s, unsigned long lo, unsigned long hi,
		   unsigned long *v)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		goto bad;
	*v = strtoul(s, &end, 10);
	if (errno || *end || *v < lo || *v > hi)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "%s must be an integer in %lu..%lu, got '%s'\n", what, lo, hi, s);
	return -1;
}
