/* ctl_state.c - ringctl state and dump-state: read the state shards
 * directly, read-only, so they work whether ringmaster runs or not (LMDB
 * readers never block the writer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ctl.h"
#include "partition.h"
#include "store.h"
#include "utf8.h"

/* A key or a value as text when it is (UTF-8, no control byte, not
 * beginning with "hex:"), else "hex:" and its bytes in hex: a binary value
 * is never cut at a NUL or split over lines, and ringctl load-state reads
 * every one back as it was. */
static void print_value(const void *data, size_t len)
{
	const unsigned char *p = data;
	if (utf8_is_line(p, len) && !(len >= 4 && memcmp(p, "hex:", 4) == 0)) {
		fwrite(p, 1, len, stdout);
		return;
	}
	fputs("hex:", stdout);
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
}

static int open_shard(const struct cfg *cfg, unsigned p, struct store_env **env)
{
	char err[STORE_ERR_LEN];
	if (store_shard_open(cfg->data_dir, p, cfg->partitions, cfg->map_size,
			     (enum store_sync)cfg->sync, 1, env, err) == 0)
		return 0;
	fprintf(stderr, "ringctl: %s\n", err);
	return -1;
}

int ctl_state(const struct cfg *cfg, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: ringctl state KEY\n");
		return 2;
	}
	const char *key = argv[1];
	size_t len = strlen(key);
	if (len == 0 || len > 255) {
		fprintf(stderr, "ringctl: a key is 1..255 bytes\n");
		return 2;
	}
	unsigned p = partition_of(key, len, cfg->partitions);
	struct store_env *env;
	if (open_shard(cfg, p, &env) != 0)
		return 1;
	struct store_txn *txn;
	struct store_val v;
	int rc = store_shard_read(env, &txn);
	if (rc == 0) {
		rc = store_state_get(txn, key, len, &v);
		if (rc == 0) {
			printf("%s\tpartition=%u\t", key, p);
			print_value(v.data, v.len);
			putchar('\n');
		} else if (rc == -ENOENT)
			fprintf(stderr, "ringctl: %s: no state (partition %u)\n", key, p);
		store_txn_abort(txn);
	}
	if (rc != 0 && rc != -ENOENT)
		fprintf(stderr, "ringctl: cannot read partition %u: %s\n", p, strerror(-rc));
	store_close(env);
	return rc == 0 ? 0 : 1;
}

/* Each pair in one allocation: the key's and the value's lengths, then
 * their bytes. */
struct pair {
	size_t key_len, val_len;
	unsigned char data[];
};

struct pairs {
	struct pair **lines;
	size_t n, cap;
};

static int collect(void *arg, const struct store_val *key, const struct store_val *val)
{
	struct pairs *ps = arg;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 1024;
		struct pair **l = realloc(ps->lines, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		ps->lines = l;
		ps->cap = cap;
	}
	struct pair *line = malloc(sizeof(*line) + key->len + val->len);
	if (!line)
		return -ENOMEM;
	line->key_len = key->len;
	line->val_len = val->len;
	memcpy(line->data, key->data, key->len);
	memcpy(line->data + key->len, val->data, val->len);
	ps->lines[ps->n++] = line;
	return 0;
}

/* Byte order, a key before the longer keys it begins (LMDB's order). */
static int by_key(const void *a, const void *b)
{
	const struct pair *x = *(struct pair *const *)a, *y = *(struct pair *const *)b;
	int c = memcmp(x->data, y->data, x->key_len < y->key_len ? x->key_len : y->key_len);
	return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

int ctl_dump_state(const struct cfg *cfg, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: ringctl dump-state\n");
		return 2;
	}
	struct pairs ps = {0};
	int rc = 0;
	for (unsigned p = 0; p < cfg->partitions && rc == 0; p++) {
		struct store_env *env;
		if (open_shard(cfg, p, &env) != 0) {
			rc = 1;
			break;
		}
		if (store_state_foreach(env, collect, &ps) != 0) {
			fprintf(stderr, "ringctl: cannot read partition %u\n", p);
			rc = 1;
		}
		store_close(env);
	}
	if (rc == 0 && ps.n) { /* qsort wants an array, even of none */
		qsort(ps.lines, ps.n, sizeof(*ps.lines), by_key);
		for (size_t i = 0; i < ps.n; i++) {
			const struct pair *l = ps.lines[i];
			print_value(l->data, l->key_len);
			putchar('\t');
			print_value(l->data + l->key_len, l->val_len);
			putchar('\n');
		}
	}
	for (size_t i = 0; i < ps.n; i++)
		free(ps.lines[i]);
	free(ps.lines);
	return rc;
}
