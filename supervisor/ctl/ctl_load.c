/* ctl_load.c - ringctl load-state [--replace] FILE: the text dump-state
 * writes, put back into the shards of a stopped data_dir, each key into
 * the shard partition_of(key, partitions) names.
 *
 * All or none: the whole file is read and checked first (every malformed
 * line named file:line, a key given twice, a key that already has state
 * unless --replace), and only then written, in transactions of LOAD_BATCH
 * keys. Should a write fail (a full disk), what was written is undone:
 * the keys added are deleted and the values replaced are put back. The
 * data_dir's lock is held throughout, so no instance starts meanwhile. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"
#include "durable.h"
#include "partition.h"
#include "store.h"
#include "utf8.h"

#define LOAD_BATCH 10000
#define LOAD_ERRORS_SHOWN 20
#define GROW_RETRIES 16

struct rec {
	char *key, *val; /* into the file's buffer, decoded in place */
	size_t key_len, val_len;
	uint64_t line;
	unsigned p;
	int had; /* the key had state: `old` holds it (--replace) */
	void *old;
	size_t old_len;
};

struct load {
	const char *path;
	char *buf;
	size_t len;
	struct rec *recs;
	size_t n;
	uint64_t errors;
	unsigned partitions;
	const char *data_dir;
	struct store_env **shards;
};

static void bad_line(struct load *ld, uint64_t line, const char *fmt, const char *what)
{
	if (ld->errors++ < LOAD_ERRORS_SHOWN) {
		fprintf(stderr, "ringctl: %s:%llu: ", ld->path, (unsigned long long)line);
		fprintf(stderr, fmt, what);
		fputc('\n', stderr);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A field as dump-state prints it: "hex:" and lower-case hex, or text
 * (UTF-8 without control bytes). Decoded in place. */
static const char *decode_field(char *f, size_t *len)
{
	if (*len >= 4 && memcmp(f, "hex:", 4) == 0) {
		size_t n = *len - 4;
		if (n % 2)
			return "an odd number of hex digits after hex:";
		for (size_t i = 0; i < n / 2; i++) {
			int hi = hexval(f[4 + 2 * i]), lo = hexval(f[5 + 2 * i]);
			if (hi < 0 || lo < 0)
				return "not a lower-case hex digit after hex:";
			f[i] = (char)(hi << 4 | lo);
		}
		*len = n / 2;
		return NULL;
	}
	if (!utf8_is_line(f, *len))
		return "a control byte or bytes that are not UTF-8 in its text: write it as hex:";
	return NULL;
}

static void parse_line(struct load *ld, char *p, size_t l, uint64_t line)
{
	char *tab = memchr(p, '\t', l);
	if (!tab) {
		bad_line(ld, line, "%s", "no tab between the key and the value");
		return;
	}
	struct rec r = {.key = p, .key_len = (size_t)(tab - p), .val = tab + 1, .line = line};
	r.val_len = l - r.key_len - 1;
	const char *why = decode_field(r.key, &r.key_len);
	if (why) {
		bad_line(ld, line, "the key: %s", why);
		return;
	}
	if (r.key_len == 0 || r.key_len > STORE_KEY_MAX) {
		bad_line(ld, line, "%s", r.key_len ? "a key over 511 bytes" : "an empty key");
		return;
	}
	if ((why = decode_field(r.val, &r.val_len)) != NULL) {
		bad_line(ld, line, "the value: %s", why);
		return;
	}
	r.p = partition_of(r.key, r.key_len, ld->partitions);
	ld->recs[ld->n++] = r;
}

static int parse(struct load *ld)
{
	size_t lines = 0;
	for (size_t i = 0; i < ld->len; i++)
		lines += ld->buf[i] == '\n';
	ld->recs = calloc(lines + 1, sizeof(*ld->recs));
	if (!ld->recs) {
		fprintf(stderr, "ringctl: out of memory\n");
		return -1;
	}
	char *p = ld->buf, *end = ld->buf + ld->len;
	for (uint64_t line = 1; p < end; line++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl) {
			bad_line(ld, line, "%s", "no newline at its end (a copy still going on?)");
			break;
		}
		parse_line(ld, p, (size_t)(nl - p), line);
		p = nl + 1;
	}
	return 0;
}

static int by_key(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);
	if (!c)
		c = (x->key_len > y->key_len) - (x->key_len < y->key_len);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int by_partition(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	return x->p != y->p ? (x->p > y->p) - (x->p < y->p) : by_key(a, b);
}

/* recs[*lo..*hi): partition p's, once sorted by partition. */
static void range(const struct load *ld, unsigned p, size_t *lo, size_t *hi)
{
	size_t i = 0;
	while (i < ld->n && ld->recs[i].p < p)
		i++;
	*lo = i;
	while (i < ld->n && ld->recs[i].p == p)
		i++;
	*hi = i;
}

/* Sorted by key to find a key given twice, then by partition. */
static void check_twice(struct load *ld)
{
	qsort(ld->recs, ld->n, sizeof(*ld->recs), by_key);
	for (size_t i = 1; i < ld->n; i++) {
		const struct rec *a = &ld->recs[i - 1], *b = &ld->recs[i];
		if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0) {
			char first[32];
			snprintf(first, sizeof(first), "%llu", (unsigned long long)a->line);
			bad_line(ld, b->line, "a key given twice (first on line %s)", first);
		}
	}
	qsort(ld->recs, ld->n, sizeof(*ld->recs), by_partition);
}

static int read_input(struct load *ld)
{
	FILE *f = strcmp(ld->path, "-") == 0 ? stdin : fopen(ld->path, "re");
	size_t cap = 1 << 16;
	if (!f) {
		fprintf(stderr, "ringctl: %s: %s\n", ld->path, strerror(errno));
		return -1;
	}
	ld->buf = malloc(cap);
	for (size_t n; ld->buf && (n = fread(ld->buf + ld->len, 1, cap - ld->len, f)) > 0;) {
		ld->len += n;
		if (ld->len == cap) {
			char *b = realloc(ld->buf, cap *= 2);
			if (!b)
				free(ld->buf);
			ld->buf = b;
		}
	}
	int rc = !ld->buf ? -ENOMEM : ferror(f) ? -EIO : 0;
	if (f != stdin)
		fclose(f);
	if (rc)
		fprintf(stderr, "ringctl: %s: %s\n", ld->path, strerror(-rc));
	return rc;
}

int ctl_lock_data_dir(const struct cfg *cfg, const char *cmd, int *fd)
{
	char path[4200], err[DUR_ERR_LEN];
	pid_t holder;
	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "ringctl: %s: %s\n", cfg->data_dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/lock", cfg->data_dir);
	int rc = dur_lock(path, fd, &holder, err);
	if (rc == -EWOULDBLOCK) {
		fprintf(stderr,
			"ringctl: ringmaster (pid %ld) is running on data_dir %s (it holds %s): "
			"%s wants a stopped data_dir; stop it first\n",
			(long)holder, cfg->data_dir, path, cmd);
		return -1;
	}
	if (rc) {
		fprintf(stderr, "ringctl: %s\n", err);
		return -1;
	}
	for (unsigned p = 0; p < cfg->partitions; p++) {
		snprintf(path, sizeof(path), "%s/state/p%u/owner.lock", cfg->data_dir, p);
		pid_t w = dur_lock_holder(path);
		if (w > 0) {
			fprintf(stderr,
				"ringctl: worker pid %ld of an earlier instance still writes "
				"partition %u of %s: wait for it to exit\n",
				(long)w, p, cfg->data_dir);
			return -1;
		}
	}
	return 0;
}

/* Keys that have state already: refused, or kept to undo (--replace). */
static int check_present(struct load *ld, int replace)
{
	for (unsigned p = 0; p < ld->partitions; p++) {
		struct store_txn *t;
		size_t lo, hi;
		int rc = store_shard_read(ld->shards[p], &t);
		if (rc)
			return rc;
		range(ld, p, &lo, &hi);
		for (size_t i = lo; i < hi && rc == 0; i++) {
			struct rec *r = &ld->recs[i];
			struct store_val v;
			if ((rc = store_state_get(t, r->key, r->key_len, &v)) == -ENOENT) {
				rc = 0;
				continue;
			}
			if (rc)
				break;
			if (!replace) {
				char where[32];
				snprintf(where, sizeof(where), "%u", p);
				bad_line(
				    ld, r->line,
				    "the key has state already (partition %s): use --replace to "
				    "overwrite it",
				    where);
				continue;
			}
			r->had = 1;
			r->old_len = v.len;
			if (!(r->old = malloc(v.len + 1)))
				rc = -ENOMEM;
			else
				memcpy(r->old, v.data, v.len);
		}
		store_txn_abort(t);
		if (rc)
			return rc;
	}
	return 0;
}

/* Put (undo = 0) or take back (undo = 1) recs[from..to) of partition p in
 * one transaction, growing the map when it is full. */
static int write_batch(struct load *ld, unsigned p, size_t from, size_t to, int undo)
{
	char err[STORE_ERR_LEN];
	for (int tries = 0; tries < GROW_RETRIES; tries++) {
		struct store_txn *t;
		int rc = store_shard_begin(ld->shards[p], &t);
		if (rc)
			return rc;
		for (size_t i = from; i < to && rc == 0; i++) {
			const struct rec *r = &ld->recs[i];
			if (!undo)
				rc = store_state_put(t, r->key, r->key_len, r->val, r->val_len);
			else if (r->had)
				rc = store_state_put(t, r->key, r->key_len, r->old, r->old_len);
			else if ((rc = store_state_del(t, r->key, r->key_len)) == -ENOENT)
				rc = 0;
		}
		if (rc == 0)
			return store_shard_commit_state(t);
		store_txn_abort(t);
		if (rc != STORE_MAP_FULL || store_grow(ld->shards[p], err) != 0)
			return rc;
	}
	return STORE_MAP_FULL;
}

/* Write or undo (undo = 1) every partition's keys in batches. */
static int write_parts(struct load *ld, int undo)
{
	int rc = 0;
	for (unsigned p = 0; p < ld->partitions; p++) {
		size_t lo, hi;
		range(ld, p, &lo, &hi);
		for (size_t from = lo; from < hi; from += LOAD_BATCH) {
			size_t to = from + LOAD_BATCH < hi ? from + LOAD_BATCH : hi;
			int e = write_batch(ld, p, from, to, undo);
			if (e && !undo) {
				fprintf(stderr,
					"ringctl: %s/state/p%u: cannot write: %s; undoing what "
					"was written\n",
					ld->data_dir, p, strerror(-e));
				return e;
			}
			if (e)
				rc = e; /* undo the rest all the same */
		}
		if (!rc && (rc = store_sync(ld->shards[p])) != 0)
			fprintf(stderr, "ringctl: %s/state/p%u: fsync failed: %s\n", ld->data_dir,
				p, strerror(-rc));
	}
	return rc;
}

/* All or none: a write that fails undoes the others. */
static int write_all(struct load *ld)
{
	int rc = write_parts(ld, 0);
	if (rc == 0)
		return 0;
	if (write_parts(ld, 1) != 0)
		fprintf(stderr, "ringctl: undoing failed too: run load-state --replace again "
				"once the disk is fixed\n");
	return rc;
}

int ctl_load_state(const struct cfg *cfg, int argc, char **argv)
{
	int replace = argc == 3 && strcmp(argv[1], "--replace") == 0;
	if (argc != 2 + replace) {
		fprintf(stderr, "usage: ringctl load-state [--replace] FILE (- for stdin)\n");
		return 2;
	}
	struct load ld = {
	    .path = argv[1 + replace], .partitions = cfg->partitions, .data_dir = cfg->data_dir};
	int lock_fd = -1, rc = 1;
	char err[STORE_ERR_LEN];
	if (read_input(&ld) != 0 || parse(&ld) != 0)
		goto out;
	check_twice(&ld);
	if (ld.errors)
		goto refused;
	if (ctl_lock_data_dir(cfg, "load-state", &lock_fd) != 0)
		goto out;
	ld.shards = calloc(cfg->partitions, sizeof(*ld.shards));
	if (!ld.shards)
		goto out;
	for (unsigned p = 0; p < cfg->partitions; p++)
		if (store_shard_open(cfg->data_dir, p, cfg->partitions, cfg->map_size,
				     (enum store_sync)cfg->sync, 0, &ld.shards[p], err) != 0) {
			fprintf(stderr, "ringctl: %s\n", err);
			goto out;
		}
	int e = check_present(&ld, replace);
	if (e) {
		fprintf(stderr, "ringctl: cannot read the shards: %s\n", strerror(-e));
		goto out;
	}
	if (ld.errors)
		goto refused;
	if (write_all(&ld) != 0)
		goto out;
	size_t replaced = 0;
	for (size_t i = 0; i < ld.n; i++)
		replaced += (size_t)ld.recs[i].had;
	printf("loaded %zu keys into %u partitions of %s (%zu replaced)\n", ld.n, cfg->partitions,
	       cfg->data_dir, replaced);
	rc = 0;
	goto out;
refused:
	if (ld.errors > LOAD_ERRORS_SHOWN)
		fprintf(stderr, "ringctl: ... and %llu more\n",
			(unsigned long long)(ld.errors - LOAD_ERRORS_SHOWN));
	fprintf(stderr, "ringctl: %s: %llu bad lines: nothing loaded\n", ld.path,
		(unsigned long long)ld.errors);
out:
	for (unsigned p = 0; ld.shards && p < cfg->partitions; p++)
		if (ld.shards[p])
			store_close(ld.shards[p]);
	for (size_t i = 0; i < ld.n; i++)
		free(ld.recs[i].old);
	free(ld.shards);
	free(ld.recs);
	free(ld.buf);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}
