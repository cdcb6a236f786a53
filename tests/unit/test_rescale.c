/* test_rescale.c - tests for common/rescale.c: a re-split of a few thousand
 * keys puts every key in the shard partition_of names with its value, and
 * the meta the shared contract says; 4 -> 7 -> 2 keeps every pair; a map
 * far too small is grown and the re-split redone; a data_dir's swap and
 * every state a crash can leave it in (rolled back or finished); refusals:
 * an existing target, a wrong count, a missing shard, a key in two shards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "partition.h"
#include "rescale.h"
#include "scratch.h"
#include "store.h"

#define KEYS 5000

static int setup(void **state)
{
	return scratch_enter(state, "test_rescale");
}

static int teardown(void **state)
{
	return scratch_leave(state);
}

static void key_of(unsigned i, char *buf, size_t size)
{
	snprintf(buf, size, "acct%06u", i * 7919u % 1000003u);
}

/* data_dir/state with `n` shards holding keys 0..KEYS-1 (value "v<i>",
 * or a long one with `big`), shard p having applied seq 1000 + p, and
 * shard 1 a replay seq. */
static void make_state(const char *data_dir, unsigned n, int big)
{
	char err[STORE_ERR_LEN], key[32], val[2048];
	struct store_env **shards = calloc(n, sizeof(*shards));
	struct store_txn **txns = calloc(n, sizeof(*txns));
	assert_non_null(shards);
	assert_non_null(txns);
	for (unsigned p = 0; p < n; p++) {
		assert_int_equal(store_shard_open(data_dir, p, n, 64 << 20, STORE_SYNC_PERIODIC, 0,
						  &shards[p], err),
				 0);
		assert_int_equal(store_shard_begin(shards[p], &txns[p]), 0);
	}
	for (unsigned i = 0; i < KEYS; i++) {
		key_of(i, key, sizeof(key));
		int len = snprintf(val, sizeof(val), "v%u", i);
		if (big) {
			memset(val + len, 'x', 1500);
			len += 1500;
		}
		unsigned p = partition_of(key, strlen(key), n);
		assert_int_equal(store_state_put(txns[p], key, strlen(key), val, (size_t)len), 0);
	}
	for (unsigned p = 0; p < n; p++) {
		if (p == 1)
			assert_int_equal(
			    store_shard_meta_put_u64(txns[p], "replay_applied", (1ull << 63) + 5),
			    0);
		assert_int_equal(store_shard_commit(txns[p], 1000 + p, 77), 0);
		store_close(shards[p]);
	}
	free(shards);
	free(txns);
}

struct check {
	unsigned p, n, seen;
	int big;
};

static int check_pair(void *arg, const struct store_val *key, const struct store_val *val)
{
	struct check *c = arg;
	char want[32];
	assert_int_equal(partition_of(key->data, key->len, c->n), c->p);
	/* The value names the key it was put under. */
	unsigned i = (unsigned)strtoul((const char *)val->data + 1, NULL, 10);
	key_of(i, want, sizeof(want));
	assert_int_equal(key->len, strlen(want));
	assert_memory_equal(key->data, want, key->len);
	char head[16];
	size_t head_len = (size_t)snprintf(head, sizeof(head), "v%u", i);
	assert_int_equal(val->len, head_len + (c->big ? 1500 : 0));
	assert_memory_equal(val->data, head, head_len);
	c->seen++;
	return 0;
}

/* Every key once, in the shard its hash names, with its value; the meta as
 * the shared contract says. */
static void check_state(const char *data_dir, unsigned n, unsigned layout, uint64_t applied,
			int big)
{
	char err[STORE_ERR_LEN];
	unsigned total = 0;
	for (unsigned p = 0; p < n; p++) {
		struct store_env *e;
		struct check c = {p, n, 0, big};
		int has;
		uint64_t seq, out_len, v;
		assert_int_equal(
		    store_shard_open(data_dir, p, n, 0, STORE_SYNC_PERIODIC, 1, &e, err), 0);
		assert_int_equal(store_state_foreach(e, check_pair, &c), 0);
		total += c.seen;
		assert_int_equal(store_shard_progress(e, &has, &seq, &out_len), 0);
		assert_true(has);
		assert_int_equal(seq, applied);
		assert_int_equal(out_len, 0);
		assert_int_equal(store_meta_get_u64(e, "replay_applied", &v), 0);
		assert_true(v == (1ull << 63) + 5);
		assert_int_equal(store_meta_get_u64(e, "layout", &v), 0);
		assert_int_equal(v, layout);
		assert_int_equal(store_meta_get_u64(e, "partitions", &v), 0);
		assert_int_equal(v, n);
		store_close(e);
	}
	assert_int_equal(total, KEYS);
}

static void test_resplit(void **state)
{
	(void)state;
	char err[RESCALE_ERR_LEN] = "";
	make_state("a", 4, 0);
	assert_int_equal(rescale_shards("a/state", 4, "b/state", 7, 0, err), 0);
	check_state("b", 7, 2, 1003, 0);
	/* 7 -> 2, from the re-split state: the layout goes on counting. */
	assert_int_equal(rescale_shards("b/state", 7, "c/state", 2, 0, err), 0);
	check_state("c", 2, 3, 1003, 0);
	/* b/state is missing nothing: it was only read. */
	struct rescale_info info;
	assert_int_equal(rescale_inspect("b/state", &info, err), 0);
	assert_int_equal(info.partitions, 7);
	assert_int_equal(info.layout, 2);
	assert_int_equal(info.keys, KEYS);
	assert_true(info.has_applied);
	assert_int_equal(info.max_applied, 1003);
}

/* A first map of 64 KiB fills many times over: each time it is doubled
 * and the re-split redone from its last commit; nothing is lost or
 * doubled. */
static void test_map_grows(void **state)
{
	(void)state;
	char err[RESCALE_ERR_LEN] = "";
	make_state("a", 3, 1);
	assert_int_equal(rescale_shards("a/state", 3, "b/state", 2, 64 << 10, err), 0);
	check_state("b", 2, 2, 1002, 1);
}

static void test_refusals(void **state)
{
	(void)state;
	char err[RESCALE_ERR_LEN] = "";
	make_state("a", 4, 0);
	assert_int_equal(mkdir("b", 0700), 0);
	assert_int_equal(mkdir("b/state", 0700), 0);
	assert_int_equal(rescale_shards("a/state", 4, "b/state", 2, 0, err), -EEXIST);
	assert_non_null(strstr(err, "b/state: cannot make it: File exists"));

	assert_int_equal(rescale_shards("a/state", 3, "c/state", 2, 0, err), -EINVAL);
	assert_non_null(strstr(err, "a/state/p0 was made for 4 partitions, not 3"));
	assert_int_equal(access("c/state", F_OK), -1); /* nothing made */

	assert_int_equal(rescale_shards("a/state", 4, "c/state", 0, 0, err), -EINVAL);
	assert_non_null(strstr(err, "both must be 1..1024"));

	assert_int_equal(rescale_shards("nowhere/state", 1, "c/state", 2, 0, err), -ENOENT);
	assert_non_null(strstr(err, "nowhere/state/p0: no such shard"));

	/* A shard gone: the re-split fails and leaves no half-made target. */
	assert_int_equal(rename("a/state/p3", "a/p3.aside"), 0);
	assert_int_equal(rescale_shards("a/state", 4, "c/state", 2, 0, err), -ENOENT);
	assert_non_null(strstr(err, "a/state/p3: no such shard"));
	struct rescale_info info;
	assert_int_equal(rescale_inspect("a/state", &info, err), -ENOENT);
	assert_int_equal(rescale_inspect("nowhere/state", &info, err), -ENOENT);
}

/* The same key in two old shards is a damaged state: refused, and the
 * half-made target removed. */
static void test_duplicate_key(void **state)
{
	(void)state;
	char err[RESCALE_ERR_LEN] = "";
	char serr[STORE_ERR_LEN];
	struct store_env *e;
	struct store_txn *t;
	make_state("a", 2, 0);
	assert_int_equal(store_shard_open("a", 1, 2, 1 << 20, STORE_SYNC_PERIODIC, 0, &e, serr), 0);
	assert_int_equal(store_shard_begin(e, &t), 0);
	char key[32];
	unsigned i = 0;
	do /* a key of shard 0, put into shard 1 as well */
		key_of(i++, key, sizeof(key));
	while (partition_of(key, strlen(key), 2) != 0);
	assert_int_equal(store_state_put(t, key, strlen(key), "v0", 2), 0);
	assert_int_equal(store_shard_commit(t, 1, 0), 0);
	store_close(e);
	assert_int_equal(rescale_shards("a/state", 2, "b/state", 3, 0, err), -EINVAL);
	assert_non_null(strstr(err, "is in two old shards"));
	assert_int_equal(access("b/state", F_OK), -1);
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The swap in a data_dir, then each state a crash can leave behind. */
static void test_swap_and_recover(void **state)
{
	(void)state;
	char err[RESCALE_ERR_LEN] = "";
	enum rescale_recovery what;
	make_state("d", 4, 0);
	assert_int_equal(rescale_recover("d", &what, err), 0);
	assert_int_equal(what, RESCALE_CLEAN);
	assert_int_equal(rescale_data_dir("d", 4, 7, 0, err), 0);
	check_state("d", 7, 2, 1003, 0);
	assert_false(is_dir("d/state.new"));
	assert_false(is_dir("d/state.old"));

	/* Cut short while writing: state.new is removed, the state kept. */
	assert_int_equal(mkdir("d/state.new", 0700), 0);
	assert_int_equal(mkdir("d/state.new/p0", 0700), 0);
	assert_int_equal(rescale_recover("d", &what, err), 0);
	assert_int_equal(what, RESCALE_ROLLED_BACK);
	assert_false(is_dir("d/state.new"));
	check_state("d", 7, 2, 1003, 0);

	/* Between the two renames: the durable new state goes in. */
	make_state("e", 4, 0);
	assert_int_equal(rescale_shards("e/state", 4, "e/state.new", 3, 0, err), 0);
	assert_int_equal(rename("e/state", "e/state.old"), 0);
	assert_int_equal(rescale_recover("e", &what, err), 0);
	assert_int_equal(what, RESCALE_FINISHED);
	assert_false(is_dir("e/state.old"));
	assert_false(is_dir("e/state.new"));
	check_state("e", 3, 2, 1003, 0);

	/* After both, before the old one was removed (or while it was). */
	assert_int_equal(mkdir("e/state.old", 0700), 0);
	assert_int_equal(mkdir("e/state.old/p9", 0700), 0);
	assert_int_equal(rescale_recover("e", &what, err), 0);
	assert_int_equal(what, RESCALE_FINISHED);
	assert_false(is_dir("e/state.old"));
	check_state("e", 3, 2, 1003, 0);

	/* All three: not a state a swap passes through: refused, untouched. */
	assert_int_equal(mkdir("e/state.old", 0700), 0);
	assert_int_equal(mkdir("e/state.new", 0700), 0);
	assert_int_equal(rescale_recover("e", &what, err), -EINVAL);
	assert_non_null(strstr(err, "holds state, state.new and state.old"));
	assert_true(is_dir("e/state.old") && is_dir("e/state.new"));
}

/* A savepoint's shards: compacted copies on a read-only tree. They are
 * read without a lock file, and installed into a new data_dir. */
static void test_from_savepoint_copy(void **state)
{
	(void)state;
	char err[RESCALE_ERR_LEN] = "", path[64];
	make_state("a", 4, 0);
	assert_int_equal(mkdir("sp", 0700), 0);
	assert_int_equal(mkdir("sp/state", 0700), 0);
	for (unsigned p = 0; p < 4; p++) {
		MDB_env *env;
		snprintf(path, sizeof(path), "a/state/p%u", p);
		assert_int_equal(mdb_env_create(&env), 0);
		assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
		assert_int_equal(mdb_env_open(env, path, MDB_RDONLY, 0600), 0);
		snprintf(path, sizeof(path), "sp/state/p%u", p);
		assert_int_equal(mkdir(path, 0700), 0);
		assert_int_equal(mdb_env_copy2(env, path, MDB_CP_COMPACT), 0);
		mdb_env_close(env);
		snprintf(path, sizeof(path), "sp/state/p%u/data.mdb", p);
		assert_int_equal(chmod(path, 0400), 0);
		snprintf(path, sizeof(path), "sp/state/p%u", p);
		assert_int_equal(chmod(path, 0500), 0);
	}
	assert_int_equal(rescale_install("sp/state", 4, "new", 6, 0, err), 0);
	check_state("new", 6, 2, 1003, 0);
	assert_int_equal(access("sp/state/p0/lock.mdb", F_OK), -1);
	assert_int_equal(access("new/state.new", F_OK), -1);
	/* Not over a state that is there. */
	assert_int_equal(rescale_install("sp/state", 4, "new", 6, 0, err), -EEXIST);
	assert_non_null(strstr(err, "new already holds a state"));
	for (unsigned p = 0; p < 4; p++) { /* so the teardown can remove them */
		snprintf(path, sizeof(path), "sp/state/p%u", p);
		assert_int_equal(chmod(path, 0700), 0);
	}
}

static void test_output_path(void **state)
{
	(void)state;
	char buf[64];
	assert_int_equal(rescale_output_path(buf, sizeof(buf), "out", 3, 0), 0);
	assert_string_equal(buf, "out/p3.tsv");
	assert_int_equal(rescale_output_path(buf, sizeof(buf), "out", 3, 1), 0);
	assert_string_equal(buf, "out/p3.tsv");
	assert_int_equal(rescale_output_path(buf, sizeof(buf), "out", 12, 2), 0);
	assert_string_equal(buf, "out/p12.g2.tsv");
	assert_int_equal(rescale_output_path(buf, 8, "out", 12, 2), -ENAMETOOLONG);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_resplit),	   T(test_map_grows),	     T(test_refusals),
	    T(test_duplicate_key), T(test_swap_and_recover), T(test_from_savepoint_copy),
	    T(test_output_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
