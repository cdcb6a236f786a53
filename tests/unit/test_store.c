/* test_store.c - tests for common/store.c: loading reference tables into the
 * config environment (reloads, broken files that change nothing, dropped
 * tables, a big table, map growth), a read-only reader in another process
 * that keeps working across reloads, and the state shards (partition check,
 * progress, abort, a full map grown and redone, iteration order).
 *
 * Children of fork() never call cmocka's assertions (they longjmp into the
 * parent's state); they report through their exit status.
 *
 * Each test gets a fresh temporary directory, removed afterwards. The struct
 * cfg is built by hand so these tests do not depend on cfg.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "replay.h"
#include "scratch.h"
#include "store.h"
#include "tsv.h"

#define MAX_TABLES 8
#define ERRS_LEN 4096

/* ---- fixture: a temporary directory and a hand-made struct cfg ---- */

struct fx {
	char dir[64];
	char data_dir[128];
	struct cfg cfg;
	struct cfg_table tables[MAX_TABLES];
	char names[MAX_TABLES][32];
	char paths[MAX_TABLES][256];
	char errs[ERRS_LEN];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	/* not created: the store makes it */
	snprintf(fx->data_dir, sizeof(fx->data_dir), "%s/data", fx->dir);
	fx->cfg.data_dir = fx->data_dir;
	fx->cfg.map_size = 1 << 20;
	fx->cfg.tables = fx->tables;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	scratch_remove(fx->dir);
	free(fx);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* Configure table `name` from file dir/NAME.tsv holding `text` (NULL: the
 * file is not written). Replaces the table if already configured. */
static const char *set_table(struct fx *fx, const char *name, const char *text)
{
	char path[sizeof(fx->paths[0])];
	size_t i;

	for (i = 0; i < fx->cfg.n_tables; i++)
		if (strcmp(fx->names[i], name) == 0)
			break;
	assert_true(i < MAX_TABLES);
	snprintf(path, sizeof(path), "%s/%s.tsv", fx->dir, name);
	snprintf(fx->names[i], sizeof(fx->names[i]), "%s", name);
	memcpy(fx->paths[i], path, sizeof(path));
	fx->tables[i].name = fx->names[i];
	fx->tables[i].path = fx->paths[i];
	if (i == fx->cfg.n_tables)
		fx->cfg.n_tables++;
	if (text)
		write_text(fx->paths[i], text);
	return fx->paths[i];
}

static void unset_table(struct fx *fx, const char *name)
{
	for (size_t i = 0; i < fx->cfg.n_tables; i++) {
		if (strcmp(fx->names[i], name) != 0)
			continue;
		size_t last = --fx->cfg.n_tables;
		memcpy(fx->names[i], fx->names[last], sizeof(fx->names[i]));
		memcpy(fx->paths[i], fx->paths[last], sizeof(fx->paths[i]));
		fx->tables[i].name = fx->names[i];
		fx->tables[i].path = fx->paths[i];
		return;
	}
	fail_msg("table %s not configured", name);
}

static struct store_env *config_open(struct fx *fx)
{
	struct store_env *env = NULL;
	char err[STORE_ERR_LEN] = "";
	int rc = store_config_open(fx->data_dir, fx->cfg.map_size, 0, &env, err);

	if (rc)
		fail_msg("store_config_open: %d %s", rc, err);
	return env;
}

static uint64_t load_ok(struct fx *fx, struct store_env *env)
{
	uint64_t gen = 0;
	int rc = store_config_load(env, &fx->cfg, &gen, fx->errs, sizeof(fx->errs));

	if (rc)
		fail_msg("store_config_load: %d\n%s", rc, fx->errs);
	return gen;
}

/* 0 if table/key holds `want` (NULL: absent), else a line number; usable in
 * children, which must not call cmocka's assertions. */
static int table_is(struct store_txn *txn, const char *table, const char *key, const char *want)
{
	struct store_val v = {NULL, 0};
	int rc = store_table_get(txn, table, key, strlen(key), &v);

	if (!want)
		return rc == -ENOENT ? 0 : __LINE__;
	if (rc)
		return __LINE__;
	if (v.len != strlen(want) || memcmp(v.data, want, v.len) != 0)
		return __LINE__;
	return 0;
}

#define assert_table(txn, table, key, want) assert_int_equal(table_is(txn, table, key, want), 0)

static void assert_contains(const char *text, const char *want)
{
	if (!strstr(text, want))
		fail_msg("expected \"%s\" in:\n%s", want, text);
}

/* ---- config environment ---- */

static void test_config_load_and_read(void **state)
{
	struct fx *fx = *state;
	struct store_txn *txn;
	struct stat st;

	set_table(fx, "rules", "# comment\na\t1\n\nb\t2\tand more\r\nc\n");
	set_table(fx, "accounts", "acct-1\tAlice\nacct-0\tBob\n");
	struct store_env *env = config_open(fx);

	assert_int_equal(stat(fx->data_dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(load_ok(fx, env), 1);
	assert_string_equal(fx->errs, "");

	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(store_config_generation(txn), 1);
	assert_table(txn, "rules", "a", "1");
	assert_table(txn, "rules", "b", "2\tand more"); /* tabs stay, \r goes */
	assert_table(txn, "rules", "c", "");		/* no value: empty */
	assert_table(txn, "rules", "d", NULL);
	assert_table(txn, "rules", "# comment", NULL);
	assert_table(txn, "accounts", "acct-0", "Bob"); /* no final newline */
	assert_table(txn, "accounts", "acct-1", "Alice");
	assert_table(txn, "nope", "a", NULL);
	assert_table(txn, "nope", "a", NULL); /* the cached miss */
	struct store_txn *again;
	assert_int_equal(store_config_read(env, &again), -EBUSY);
	store_txn_abort(txn);
	store_txn_abort(txn); /* ending twice is harmless */

	uint64_t gen = 0;
	assert_int_equal(store_meta_get_u64(env, "generation", &gen), 0);
	assert_int_equal(gen, 1);
	store_close(env);
}

static void test_config_reload(void **state)
{
	struct fx *fx = *state;
	struct store_txn *txn;

	set_table(fx, "rules", "a\t1\nb\t2\n");
	struct store_env *env = config_open(fx);
	assert_int_equal(load_ok(fx, env), 1);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_table(txn, "rules", "a", "1");
	assert_table(txn, "later", "x", NULL);
	store_txn_abort(txn);

	set_table(fx, "rules", "a\t10\nc\t3\n");
	set_table(fx, "later", "x\ty\n");
	assert_int_equal(load_ok(fx, env), 2);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(store_config_generation(txn), 2);
	assert_table(txn, "rules", "a", "10");
	assert_table(txn, "rules", "b", NULL); /* emptied and refilled */
	assert_table(txn, "rules", "c", "3");
	assert_table(txn, "later", "x", "y"); /* the miss was for generation 1 */
	store_txn_abort(txn);
	store_close(env);

	/* and all of it is on disk */
	env = config_open(fx);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(store_config_generation(txn), 2);
	assert_table(txn, "rules", "a", "10");
	store_txn_abort(txn);
	store_close(env);
}

/* The settings a worker takes from the last load (store_config_live): the
 * per-batch ones and those read at its start, since it is forked from a
 * copy of the configuration made at start (the fork server); -ENOENT
 * before any load. */
static void test_config_live(void **state)
{
	struct fx *fx = *state;
	struct store_txn *txn;
	struct store_live live;
	struct cfg_kv params[] = {{"fee", "3", NULL}, {"mode", "", NULL}};
	struct cfg_kv kafka[] = {
	    {"acks", "all", NULL}, {"linger.ms", "5", NULL}, {"client.rack", "r1", NULL}};

	struct store_env *env = config_open(fx);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(store_config_live(txn, &live), -ENOENT);
	store_txn_abort(txn);

	fx->cfg.batch_max = 77;
	fx->cfg.log_level = 3;
	fx->cfg.stop_timeout_ms = 1234;
	fx->cfg.watchdog_ms = 56789;
	fx->cfg.params = params;
	fx->cfg.n_params = 2;
	fx->cfg.kafka = kafka;
	fx->cfg.n_kafka = 3;
	load_ok(fx, env);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(store_config_live(txn, &live), 0);
	assert_int_equal(live.batch_max, 77);
	assert_int_equal(live.log_level, 3);
	assert_int_equal(live.stop_timeout_ms, 1234);
	assert_int_equal(live.watchdog_ms, 56789);
	/* the literal adds a NUL of its own: - 1 */
	static const char want_params[] = "fee\0003\0mode\0\0";
	static const char want_kafka[] = "acks\0all\0linger.ms\0005\0client.rack\0r1\0";
	assert_int_equal(live.params_len, sizeof(want_params) - 1);
	assert_memory_equal(live.params, want_params, sizeof(want_params) - 1);
	assert_int_equal(live.kafka_len, sizeof(want_kafka) - 1);
	assert_memory_equal(live.kafka, want_kafka, sizeof(want_kafka) - 1);
	store_txn_abort(txn);

	/* A reload replaces them; no [kafka] at all is an empty list. */
	fx->cfg.watchdog_ms = 0;
	fx->cfg.n_kafka = 0;
	load_ok(fx, env);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(store_config_live(txn, &live), 0);
	assert_int_equal(live.watchdog_ms, 0);
	assert_int_equal(live.stop_timeout_ms, 1234);
	assert_int_equal(live.kafka_len, 0);
	store_txn_abort(txn);
	store_close(env);
}

static void test_config_broken_changes_nothing(void **state)
{
	struct fx *fx = *state;
	struct store_txn *txn;
	char line[1024], long_key[601];

	set_table(fx, "rules", "a\t1\n");
	struct store_env *env = config_open(fx);
	assert_int_equal(load_ok(fx, env), 1);

	memset(long_key, 'k', 600);
	long_key[600] = '\0';
	snprintf(line, sizeof(line), "a\t2\n\tno key\n%s\tv\nx\t1\nx\t2\ny\nx\t3\n", long_key);
	const char *rules = set_table(fx, "rules", line);
	const char *missing = set_table(fx, "missing", NULL);

	assert_int_equal(store_config_load(env, &fx->cfg, NULL, fx->errs, sizeof(fx->errs)),
			 -EINVAL);
	/* every problem, table by table in the configuration's order, each
	 * table's in line order (duplicates are found after a sort, yet come
	 * at their lines); a struct cfg not made by cfg_load knows no origin */
	char want[4 * PATH_MAX + 512];
	snprintf(want, sizeof(want),
		 "%s:2: empty key (table rules)\n"
		 "%s:3: key is 600 bytes, at most 511 are allowed (table rules)\n"
		 "%s:5: duplicate key 'x' (first on line 4) (table rules)\n"
		 "%s:7: duplicate key 'x' (first on line 4) (table rules)\n"
		 "[table.missing] path = %s: cannot open: No such file or directory\n",
		 rules, rules, rules, rules, missing);
	assert_string_equal(fx->errs, want);

	/* store_config_check finds the same, and passes a good config */
	char check_errs[ERRS_LEN];
	assert_int_equal(store_config_check(&fx->cfg, check_errs, sizeof(check_errs)), -EINVAL);
	assert_string_equal(check_errs, fx->errs);

	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(store_config_generation(txn), 1);
	assert_table(txn, "rules", "a", "1");
	assert_table(txn, "rules", "x", NULL);
	store_txn_abort(txn);

	/* a small buffer keeps whole lines and says how many it left out */
	char small[160];
	assert_int_equal(store_config_load(env, &fx->cfg, NULL, small, sizeof(small)), -EINVAL);
	assert_non_null(strstr(small, "... and "));
	assert_true(strlen(small) < sizeof(small));

	unset_table(fx, "missing");
	set_table(fx, "rules", "a\t2\n");
	assert_int_equal(store_config_check(&fx->cfg, check_errs, sizeof(check_errs)), 0);
	assert_int_equal(load_ok(fx, env), 2);
	store_close(env);
}

/* Each message names the line of the INI file (or the -o override) that
 * named the table: cfg_load puts it in cfg_table.origin. */
static void test_config_errors_name_origin(void **state)
{
	struct fx *fx = *state;
	char want[2 * PATH_MAX + 512];

	const char *rules = set_table(fx, "rules", "a\t1\n\tx\na\t2");
	const char *gone = set_table(fx, "gone", NULL);
	fx->tables[0].origin = "demo.ini:20";
	fx->tables[1].origin = "-o table.gone.path=gone.tsv";
	struct store_env *env = config_open(fx);

	assert_int_equal(store_config_load(env, &fx->cfg, NULL, fx->errs, sizeof(fx->errs)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:2: empty key (table rules, demo.ini:20)\n"
		 "%s:3: " TSV_INCOMPLETE " (table rules, demo.ini:20)\n"
		 "-o table.gone.path=gone.tsv: [table.gone] path = %s: cannot open: No such file "
		 "or directory\n",
		 rules, rules, gone);
	assert_string_equal(fx->errs, want);

	/* a message longer than any fixed buffer is kept whole */
	char big[3000];
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fx->tables[1].origin = big;
	char *errs = malloc(16384);
	assert_non_null(errs);
	assert_int_equal(store_config_check(&fx->cfg, errs, 16384), -EINVAL);
	assert_non_null(strstr(errs, big));
	assert_non_null(strstr(errs, ": cannot open: No such file or directory\n"));
	free(errs);
	store_close(env);
}

static void test_config_drop_table(void **state)
{
	struct fx *fx = *state;
	struct store_txn *txn;

	set_table(fx, "rules", "a\t1\n");
	set_table(fx, "accounts", "acct\tAlice\n");
	struct store_env *env = config_open(fx);
	assert_int_equal(load_ok(fx, env), 1);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_table(txn, "accounts", "acct", "Alice"); /* caches its handle */
	store_txn_abort(txn);

	unset_table(fx, "accounts");
	assert_int_equal(load_ok(fx, env), 2);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_table(txn, "accounts", "acct", NULL);
	assert_table(txn, "rules", "a", "1");
	store_txn_abort(txn);

	/* back again: the writer's handle was closed by the drop, not reused */
	set_table(fx, "accounts", "acct\tCarol\n");
	assert_int_equal(load_ok(fx, env), 3);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_table(txn, "accounts", "acct", "Carol");
	store_txn_abort(txn);
	store_close(env);
}

static void test_config_readonly_missing(void **state)
{
	struct fx *fx = *state;
	struct store_env *env = NULL;
	char err[STORE_ERR_LEN] = "", want[PATH_MAX];

	assert_int_equal(store_config_open(fx->data_dir, 0, 1, &env, err), -ENOENT);
	assert_null(env);
	snprintf(want, sizeof(want), "%s/config", fx->data_dir);
	assert_contains(err, want);
	assert_int_equal(access(fx->data_dir, F_OK), -1); /* created nothing */
}

static void test_meta_u64(void **state)
{
	struct fx *fx = *state;
	struct store_txn *txn;
	uint64_t v = 0;

	struct store_env *env = config_open(fx);
	assert_int_equal(store_meta_get_u64(env, "watermark", &v), -ENOENT);
	assert_int_equal(store_meta_put_u64(env, "watermark", 0x0102030405060708ull), 0);
	assert_int_equal(store_meta_put_u64(env, "zero", 0), 0);
	store_close(env);

	env = config_open(fx);
	assert_int_equal(store_meta_get_u64(env, "watermark", &v), 0);
	assert_true(v == 0x0102030405060708ull);
	/* inside an open read transaction, and a put then has to wait */
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(store_meta_get_u64(env, "zero", &v), 0);
	assert_true(v == 0);
	assert_int_equal(store_meta_put_u64(env, "zero", 1), -EBUSY);
	store_txn_abort(txn);
	store_close(env);

	char err[STORE_ERR_LEN];
	assert_int_equal(store_config_open(fx->data_dir, 0, 1, &env, err), 0);
	assert_int_equal(store_meta_put_u64(env, "zero", 1), -EROFS);
	assert_int_equal(store_meta_get_u64(env, "watermark", &v), 0);
	assert_true(v == 0x0102030405060708ull);
	store_close(env);
}

/* A replay's seqs (replay.h): number and index in, number and index out;
 * the original seq of each line found in replay/N, none for a line not
 * sent, a line past the end, another replay or a source seq. */
static void test_replay_seqs(void **state)
{
	struct fx *fx = *state;
	struct store_txn *txn;
	char name[REPLAY_NAME_LEN];
	unsigned char blob[24] = {5, 0, 0, 0, 0, 0, 0, 1};
	uint64_t orig = 0, seq = replay_seq(3, 2);

	assert_true(replay_is(seq) && !replay_is(SEQ_REPLAY - 1));
	assert_true(replay_number(seq) == 3 && replay_index(seq) == 2);
	assert_true(seq == SEQ_REPLAY + (3ull << 40) + 2);
	assert_true(replay_seq(REPLAY_NUMBER_MAX, REPLAY_INDEX_MAX) == UINT64_MAX);
	memset(blob + 8, 0xff, 8); /* line 1: not sent */
	blob[16] = 9;
	replay_seqs_name(name, 3);
	assert_string_equal(name, "replay/3");
	replay_file_name(name, 3);
	assert_string_equal(name, "replay/3/file");

	struct store_env *env = config_open(fx);
	assert_int_equal(store_config_put_blob(env, "replay/3", blob, sizeof(blob)), 0);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_int_equal(replay_orig_seq(txn, replay_seq(3, 0), &orig), 0);
	assert_true(orig == (5 | 1ull << 56));
	assert_int_equal(replay_orig_seq(txn, replay_seq(3, 1), &orig), -ENOENT);
	assert_int_equal(replay_orig_seq(txn, replay_seq(3, 2), &orig), 0);
	assert_true(orig == 9);
	assert_int_equal(replay_orig_seq(txn, replay_seq(3, 3), &orig), -ENOENT);
	assert_int_equal(replay_orig_seq(txn, replay_seq(4, 0), &orig), -ENOENT);
	assert_int_equal(replay_orig_seq(txn, 7, &orig), -ENOENT);
	store_txn_abort(txn);
	store_close(env);
	assert_true(replay_hash(REPLAY_HASH_INIT, "", 0) == 0xcbf29ce484222325ull);
	assert_true(replay_hash(REPLAY_HASH_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);
}

/* A table of `rows` rows "kNNNNNNN\tvNNNNNNN", written in reverse order so the
 * load has to sort it. */
static void write_big_table(struct fx *fx, const char *name, unsigned rows)
{
	const char *path = set_table(fx, name, NULL);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (unsigned i = rows; i-- > 0;)
		fprintf(f, "k%07u\tv%07u\n", i, i);
	assert_int_equal(fclose(f), 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 200,000 rows into a 1 MiB map: the load grows the map, after dropping a
 * table it then has to drop again in the redone transaction. */
static void test_config_big_table(void **state)
{
	struct fx *fx = *state;
	struct store_txn *txn;
	const unsigned rows = 200000;

	set_table(fx, "small", "a\t1\n");
	struct store_env *env = config_open(fx);
	assert_int_equal(load_ok(fx, env), 1);
	assert_int_equal(store_config_read(env, &txn), 0);
	assert_table(txn, "small", "a", "1");
	store_txn_abort(txn);

	unset_table(fx, "small");
	write_big_table(fx, "big", rows);
	double t0 = now_s();
	assert_int_equal(load_ok(fx, env), 2);
	double t1 = now_s();
	print_message("    loaded %u rows (reverse order, 1 MiB map grown) in %.3f s\n", rows,
		      t1 - t0);

	assert_int_equal(store_config_read(env, &txn), 0);
	assert_table(txn, "small", "a", NULL);
	char key[16], want[16];
	for (unsigned i = 0; i < rows; i += 997) {
		snprintf(key, sizeof(key), "k%07u", i);
		snprintf(want, sizeof(want), "v%07u", i);
		assert_table(txn, "big", key, want);
	}
	assert_table(txn, "big", "k0199999", "v0199999");
	assert_table(txn, "big", "k0200000", NULL);
	store_txn_abort(txn);
	store_close(env);
}

/* ---- a read-only reader in another process ---- */

#define CHILD_CHECK(cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

static int child_step(int to_parent, int from_parent)
{
	char c = 'r';

	if (write(to_parent, &c, 1) != 1)
		return -1;
	return read(from_parent, &c, 1) == 1 ? 0 : -1;
}

/* The worker's view: its own readonly env with a map far smaller than what
 * the writer grows to, lookups cached across reloads. */
static int child_reader(const char *data_dir, int to_parent, int from_parent)
{
	struct store_env *env = NULL;
	struct store_txn *txn;
	char err[STORE_ERR_LEN];

	CHILD_CHECK(store_config_open(data_dir, 64 << 10, 1, &env, err) == 0);
	CHILD_CHECK(store_config_read(env, &txn) == 0);
	CHILD_CHECK(store_config_generation(txn) == 1);
	CHILD_CHECK(table_is(txn, "rules", "a", "v1") == 0);
	CHILD_CHECK(table_is(txn, "later", "x", NULL) == 0);

	/* the parent reloads while this snapshot stays open */
	CHILD_CHECK(child_step(to_parent, from_parent) == 0);
	CHILD_CHECK(table_is(txn, "rules", "a", "v1") == 0);
	CHILD_CHECK(store_config_generation(txn) == 1);
	store_txn_abort(txn);
	CHILD_CHECK(store_config_read(env, &txn) == 0);
	CHILD_CHECK(store_config_generation(txn) == 2);
	CHILD_CHECK(table_is(txn, "rules", "a", "v2") == 0);
	CHILD_CHECK(table_is(txn, "later", "x", "y") == 0);
	CHILD_CHECK(table_is(txn, "big", "k0012345", "v0012345") == 0);
	store_txn_abort(txn);

	/* "rules" dropped, then back: the cached handle follows both */
	CHILD_CHECK(child_step(to_parent, from_parent) == 0);
	CHILD_CHECK(store_config_read(env, &txn) == 0);
	CHILD_CHECK(store_config_generation(txn) == 3);
	CHILD_CHECK(table_is(txn, "rules", "a", NULL) == 0);
	CHILD_CHECK(table_is(txn, "later", "x", "y") == 0);
	store_txn_abort(txn);
	CHILD_CHECK(child_step(to_parent, from_parent) == 0);
	CHILD_CHECK(store_config_read(env, &txn) == 0);
	CHILD_CHECK(store_config_generation(txn) == 4);
	CHILD_CHECK(table_is(txn, "rules", "a", "v4") == 0);
	store_txn_abort(txn);
	store_close(env);
	return 0;
}

static void parent_wait_step(int from_child)
{
	char c;

	assert_int_equal(read(from_child, &c, 1), 1);
}

static void parent_go(int to_child)
{
	assert_int_equal(write(to_child, "g", 1), 1);
}

static void test_config_reader_process(void **state)
{
	struct fx *fx = *state;
	int up[2], down[2], status;

	set_table(fx, "rules", "a\tv1\n");
	struct store_env *env = config_open(fx);
	assert_int_equal(load_ok(fx, env), 1);
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		_exit(child_reader(fx->data_dir, up[1], down[0]));
	}
	close(up[1]);
	close(down[0]);

	parent_wait_step(up[0]);
	set_table(fx, "rules", "a\tv2\n");
	set_table(fx, "later", "x\ty\n");
	write_big_table(fx, "big", 20000); /* grows the map past the child's */
	assert_int_equal(load_ok(fx, env), 2);
	parent_go(down[1]);

	parent_wait_step(up[0]);
	unset_table(fx, "rules");
	assert_int_equal(load_ok(fx, env), 3);
	parent_go(down[1]);

	parent_wait_step(up[0]);
	set_table(fx, "rules", "a\tv4\n");
	assert_int_equal(load_ok(fx, env), 4);
	parent_go(down[1]);

	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(up[0]);
	close(down[1]);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	store_close(env);
}

/* ---- state shards ---- */

static struct store_env *shard_open(struct fx *fx, unsigned partitions, uint64_t map_size)
{
	struct store_env *s = NULL;
	char err[STORE_ERR_LEN] = "";
	int rc =
	    store_shard_open(fx->data_dir, 0, partitions, map_size, STORE_SYNC_NONE, 0, &s, err);

	if (rc)
		fail_msg("store_shard_open: %d %s", rc, err);
	return s;
}

static int state_is(struct store_txn *txn, const char *key, const char *want)
{
	struct store_val v = {NULL, 0};
	int rc = store_state_get(txn, key, strlen(key), &v);

	if (!want)
		return rc == -ENOENT ? 0 : __LINE__;
	if (rc || v.len != strlen(want) || memcmp(v.data, want, v.len) != 0)
		return __LINE__;
	return 0;
}

static void put_str(struct store_txn *txn, const char *key, const char *val)
{
	assert_int_equal(store_state_put(txn, key, strlen(key), val, strlen(val)), 0);
}

static void test_shard_partitions(void **state)
{
	struct fx *fx = *state;
	struct store_env *s = shard_open(fx, 4, 1 << 20), *other = NULL;
	char err[STORE_ERR_LEN] = "", want[STORE_ERR_LEN * 2];

	store_close(s);
	assert_int_equal(
	    store_shard_open(fx->data_dir, 0, 8, 1 << 20, STORE_SYNC_BATCH, 0, &other, err),
	    -EEXIST);
	assert_null(other);
	snprintf(want, sizeof(want),
		 "%s/state/p0 was made for 4 partitions, not 8: use partitions = 4, "
		 "or start with an empty data_dir",
		 fx->data_dir);
	assert_string_equal(err, want);
	/* the same count is fine, and other partitions are their own shards */
	s = shard_open(fx, 4, 1 << 20);
	store_close(s);
	assert_int_equal(
	    store_shard_open(fx->data_dir, 3, 8, 1 << 20, STORE_SYNC_BATCH, 0, &other, err), 0);
	assert_int_equal(store_sync(other), 0);
	store_close(other);
}

static void test_shard_progress_and_reopen(void **state)
{
	struct fx *fx = *state;
	struct store_env *s = shard_open(fx, 4, 1 << 20);
	struct store_txn *txn, *second;
	int has = -1;
	uint64_t seq = 1, len = 1;

	assert_int_equal(store_shard_progress(s, &has, &seq, &len), 0);
	assert_int_equal(has, 0);
	assert_true(seq == 0 && len == 0);

	assert_int_equal(store_shard_begin(s, &txn), 0);
	assert_int_equal(store_shard_begin(s, &second), -EBUSY);
	put_str(txn, "alice", "10");
	put_str(txn, "bob", "20");
	assert_int_equal(state_is(txn, "alice", "10"), 0); /* own writes visible */
	assert_int_equal(store_state_del(txn, "bob", 3), 0);
	assert_int_equal(store_state_del(txn, "carol", 5), -ENOENT);
	assert_int_equal(store_state_put(txn, "", 0, "x", 1), -EINVAL);
	assert_int_equal(store_shard_commit(txn, 41, 1234), 0);
	assert_int_equal(store_sync(s), 0);
	store_close(s);

	s = shard_open(fx, 4, 1 << 20);
	assert_int_equal(store_shard_progress(s, &has, &seq, &len), 0);
	assert_int_equal(has, 1);
	assert_true(seq == 41 && len == 1234);
	assert_int_equal(store_shard_begin(s, &txn), 0);
	assert_int_equal(state_is(txn, "alice", "10"), 0);
	assert_int_equal(state_is(txn, "bob", NULL), 0);
	store_txn_abort(txn);
	store_close(s);
}

/* The replay mark (replay.h) is apart from applied_seq: absent until a
 * batch puts it, committed (or not) with the batch; and a commit of state
 * alone records no progress at all (load-state). */
static void test_shard_replay_mark(void **state)
{
	struct fx *fx = *state;
	struct store_env *s = shard_open(fx, 2, 1 << 20);
	struct store_txn *txn;
	int has = -1;
	uint64_t seq = 1, len = 1;

	assert_int_equal(store_shard_replay_applied(s, &has, &seq), 0);
	assert_true(has == 0 && seq == 0);
	assert_int_equal(store_shard_begin(s, &txn), 0);
	put_str(txn, "alice", "1");
	assert_int_equal(store_shard_commit_state(txn), 0);
	assert_int_equal(store_shard_progress(s, &has, &seq, &len), 0);
	assert_true(has == 0 && seq == 0 && len == 0);

	assert_int_equal(store_shard_begin(s, &txn), 0);
	assert_int_equal(store_shard_meta_put_u64(txn, "replay_applied", SEQ_REPLAY + 7), 0);
	store_txn_abort(txn);
	assert_int_equal(store_shard_replay_applied(s, &has, &seq), 0);
	assert_int_equal(has, 0);

	assert_int_equal(store_shard_begin(s, &txn), 0);
	assert_int_equal(store_shard_meta_put_u64(txn, "replay_applied", SEQ_REPLAY + 7), 0);
	assert_int_equal(store_shard_commit(txn, 40, 12), 0);
	assert_int_equal(store_shard_replay_applied(s, &has, &seq), 0);
	assert_true(has == 1 && seq == SEQ_REPLAY + 7);
	assert_int_equal(store_shard_progress(s, &has, &seq, &len), 0);
	assert_true(has == 1 && seq == 40 && len == 12);
	store_close(s);
}

static void test_shard_abort(void **state)
{
	struct fx *fx = *state;
	struct store_env *s = shard_open(fx, 4, 1 << 20);
	struct store_txn *txn;
	int has;
	uint64_t seq, len;

	assert_int_equal(store_shard_begin(s, &txn), 0);
	put_str(txn, "alice", "1");
	assert_int_equal(store_shard_commit(txn, 1, 10), 0);

	assert_int_equal(store_shard_begin(s, &txn), 0);
	put_str(txn, "alice", "2");
	put_str(txn, "bob", "2");
	store_txn_abort(txn);

	assert_int_equal(store_shard_progress(s, &has, &seq, &len), 0);
	assert_true(has == 1 && seq == 1 && len == 10);
	assert_int_equal(store_shard_begin(s, &txn), 0);
	assert_int_equal(state_is(txn, "alice", "1"), 0);
	assert_int_equal(state_is(txn, "bob", NULL), 0);
	store_txn_abort(txn);
	store_close(s);
}

/* A batch that does not fit: STORE_MAP_FULL from a put or the commit, grow, redo the
 * whole batch, until it fits; then every row is there. */
static void test_shard_map_full(void **state)
{
	struct fx *fx = *state;
	struct store_env *s = shard_open(fx, 4, 64 << 10);
	struct store_txn *txn;
	char key[32], val[128], err[STORE_ERR_LEN];
	const unsigned n = 3000;
	int rc, grows = 0;

	memset(val, 'v', sizeof(val));
	for (;;) {
		assert_int_equal(store_shard_begin(s, &txn), 0);
		rc = 0;
		for (unsigned i = 0; i < n && !rc; i++) {
			snprintf(key, sizeof(key), "key-%06u", i);
			rc = store_state_put(txn, key, strlen(key), val, sizeof(val));
		}
		if (!rc)
			rc = store_shard_commit(txn, n, 0);
		if (rc != STORE_MAP_FULL)
			break;
		assert_int_equal(store_grow(s, err), 0);
		grows++;
		assert_true(grows < 20);
	}
	assert_int_equal(rc, 0);
	assert_true(grows >= 1);
	print_message("    3000 x 128-byte rows into a 64 KiB map: grown %d times\n", grows);
	store_close(s);

	s = shard_open(fx, 4, 64 << 10); /* the file keeps its size */
	int has;
	uint64_t seq, len;
	assert_int_equal(store_shard_progress(s, &has, &seq, &len), 0);
	assert_true(has == 1 && seq == n);
	assert_int_equal(store_shard_begin(s, &txn), 0);
	for (unsigned i = 0; i < n; i++) {
		struct store_val v;
		snprintf(key, sizeof(key), "key-%06u", i);
		assert_int_equal(store_state_get(txn, key, strlen(key), &v), 0);
		assert_int_equal(v.len, sizeof(val));
	}
	store_txn_abort(txn);
	store_close(s);
}

struct collect {
	char keys[64][16];
	unsigned n, stop_after;
};

static int collect_fn(void *arg, const struct store_val *key, const struct store_val *val)
{
	struct collect *c = arg;

	if (key->len >= sizeof(c->keys[0]) || val->len != key->len || c->n == 64)
		return -1;
	memcpy(c->keys[c->n], key->data, key->len);
	c->keys[c->n][key->len] = '\0';
	c->n++;
	return c->n == c->stop_after ? 7 : 0;
}

static void test_shard_foreach(void **state)
{
	struct fx *fx = *state;
	struct store_env *s = shard_open(fx, 4, 1 << 20);
	struct store_txn *txn;
	/* shuffled, with a prefix pair to check shorter-first */
	static const char *const keys[] = {"m", "b", "zz", "a", "ab", "z", "c", "aa"};
	static const char *const sorted[] = {"a", "aa", "ab", "b", "c", "m", "z", "zz"};
	struct collect c = {.n = 0};

	assert_int_equal(store_state_foreach(s, collect_fn, &c), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(store_shard_begin(s, &txn), 0);
	for (size_t i = 0; i < 8; i++)
		put_str(txn, keys[i], keys[i]);
	assert_int_equal(store_state_foreach(s, collect_fn, &c), -EBUSY);
	assert_int_equal(store_shard_commit(txn, 8, 0), 0);

	assert_int_equal(store_state_foreach(s, collect_fn, &c), 0);
	assert_int_equal(c.n, 8);
	for (size_t i = 0; i < 8; i++)
		assert_string_equal(c.keys[i], sorted[i]);

	c = (struct collect){.n = 0, .stop_after = 3};
	assert_int_equal(store_state_foreach(s, collect_fn, &c), 7);
	assert_int_equal(c.n, 3);
	store_close(s);
}

/* store_state_write_sorted against a model: rounds of puts (values that
 * grow and shrink) and deletes of keys present or not, over sets from one
 * key in a hundred to all of them, in order (and one round out of order),
 * each committed and then read back whole. */
#define WS_KEYS 3000
struct ws_model {
	char val[WS_KEYS][24];
	int present[WS_KEYS];
	size_t seen;
	int bad;
};

static void ws_key(unsigned i, char *buf, size_t size)
{
	/* variable lengths, shared prefixes: "k7" sorts before "k70" */
	snprintf(buf, size, "k%u", i);
}

static int ws_check_fn(void *arg, const struct store_val *kv, const struct store_val *vv)
{
	struct ws_model *m = arg;
	const void *key = kv->data, *val = vv->data;
	size_t key_len = kv->len, val_len = vv->len;
	char k[32];
	unsigned i;

	if (key_len >= sizeof(k))
		return m->bad = 1;
	memcpy(k, key, key_len);
	k[key_len] = '\0';
	if (sscanf(k, "k%u", &i) != 1 || i >= WS_KEYS || !m->present[i] ||
	    val_len != strlen(m->val[i]) || memcmp(val, m->val[i], val_len) != 0)
		return m->bad = 1;
	m->seen++;
	return 0;
}

static int ws_cmp(const void *a, const void *b)
{
	char x[32], y[32];

	ws_key(*(const unsigned *)a, x, sizeof(x));
	ws_key(*(const unsigned *)b, y, sizeof(y));
	return strcmp(x, y);
}

static void test_shard_write_sorted(void **state)
{
	struct fx *fx = *state;
	struct store_env *s = shard_open(fx, 4, 64 << 20);
	static struct ws_model m;
	static unsigned pick[WS_KEYS];
	static const unsigned per_mille[] = {10, 100, 500, 1000, 300, 1000, 30, 700};
	uint64_t x = 0x9E3779B97F4A7C15ull;

	memset(&m, 0, sizeof(m));
	for (unsigned round = 0; round < 40; round++) {
		struct store_txn *txn;
		size_t n = 0;

		for (unsigned i = 0; i < WS_KEYS; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			if (x % 1000 < per_mille[round % 8])
				pick[n++] = i;
		}
		if (round != 17) /* one round as it comes: out of order */
			qsort(pick, n, sizeof(pick[0]), ws_cmp);
		assert_int_equal(store_shard_begin(s, &txn), 0);
		for (size_t j = 0; j < n; j++) {
			unsigned i = pick[j];
			char k[32], v[24];
			int put = (x >> (j % 61)) % 10 < 7;

			ws_key(i, k, sizeof(k));
			snprintf(v, sizeof(v), "%.*s%u", (int)((round + i) % 9), "xxxxxxxxx",
				 round);
			int rc = store_state_write_sorted(txn, k, strlen(k), v, strlen(v), put);
			if (put) {
				assert_int_equal(rc, 0);
				strcpy(m.val[i], v);
				m.present[i] = 1;
			} else {
				assert_int_equal(rc, m.present[i] ? 0 : -ENOENT);
				m.present[i] = 0;
			}
		}
		assert_int_equal(store_shard_commit(txn, round + 1, 0), 0);
		size_t want = 0;
		for (unsigned i = 0; i < WS_KEYS; i++)
			want += m.present[i] != 0;
		m.seen = 0;
		m.bad = 0;
		assert_int_equal(store_state_foreach(s, ws_check_fn, &m), 0);
		assert_int_equal(m.bad, 0);
		assert_int_equal(m.seen, want);
	}
	store_close(s);
}

static void test_shard_readonly(void **state)
{
	struct fx *fx = *state;
	struct store_env *s = NULL;
	struct store_txn *txn;
	char err[STORE_ERR_LEN] = "", want[PATH_MAX];

	assert_int_equal(store_shard_open(fx->data_dir, 2, 4, 0, STORE_SYNC_NONE, 1, &s, err),
			 -ENOENT);
	assert_null(s);
	snprintf(want, sizeof(want), "%s/state/p2", fx->data_dir);
	assert_contains(err, want);

	s = shard_open(fx, 4, 1 << 20);
	assert_int_equal(store_shard_begin(s, &txn), 0);
	put_str(txn, "alice", "1");
	assert_int_equal(store_shard_commit(txn, 5, 6), 0);
	/* a read transaction on the writable shard, as ringctl would take */
	assert_int_equal(store_shard_read(s, &txn), 0);
	assert_int_equal(state_is(txn, "alice", "1"), 0);
	assert_int_equal(store_state_put(txn, "bob", 3, "2", 1), -EROFS);
	store_txn_abort(txn);
	store_close(s);

	assert_int_equal(store_shard_open(fx->data_dir, 0, 0, 0, STORE_SYNC_NONE, 1, &s, err), 0);
	int has;
	uint64_t seq, len;
	assert_int_equal(store_shard_progress(s, &has, &seq, &len), 0);
	assert_true(has == 1 && seq == 5 && len == 6);
	assert_int_equal(store_shard_begin(s, &txn), 0);
	assert_int_equal(state_is(txn, "alice", "1"), 0);
	assert_int_equal(store_state_put(txn, "bob", 3, "2", 1), -EROFS);
	assert_int_equal(store_shard_commit(txn, 6, 7), -EROFS);
	assert_int_equal(store_shard_read(s, &txn), 0);
	assert_int_equal(state_is(txn, "alice", "1"), 0);
	store_txn_abort(txn);
	assert_int_equal(store_sync(s), 0);
	store_close(s);

	/* a readonly open checks the partition count too */
	assert_int_equal(store_shard_open(fx->data_dir, 0, 8, 0, STORE_SYNC_NONE, 1, &s, err),
			 -EEXIST);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_config_load_and_read),
	    T(test_config_reload),
	    T(test_config_live),
	    T(test_config_broken_changes_nothing),
	    T(test_config_errors_name_origin),
	    T(test_config_drop_table),
	    T(test_config_readonly_missing),
	    T(test_meta_u64),
	    T(test_replay_seqs),
	    T(test_config_big_table),
	    T(test_config_reader_process),
	    T(test_shard_partitions),
	    T(test_shard_progress_and_reopen),
	    T(test_shard_replay_mark),
	    T(test_shard_abort),
	    T(test_shard_map_full),
	    T(test_shard_foreach),
	    T(test_shard_write_sorted),
	    T(test_shard_readonly),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
