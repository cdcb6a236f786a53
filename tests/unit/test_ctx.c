/* test_ctx.c - worker/ctx.c, the handler's view of a batch, over a real
 * state shard: the key hash grown far past its first size with every value
 * still right, the arena reused from batch to batch (nothing stale, no
 * memory kept), the write-back handing the store its puts and deletes in
 * key order, a write-back that does not fit the map, the key limits, the
 * cap on outcome names, and the output lines; state kept across batches
 * (read from the shard once, again after a batch that did not commit, all
 * of it dropped past CTX_STATE_BYTES) and table rows kept for one
 * generation of the config environment.
 *
 * The test is linked with -Wl,--wrap=store_state_put,--wrap=store_state_del
 * (see the Makefile) so that it sees the calls ctx_write_back makes, in
 * their order, and with --wrap=store_state_get,--wrap=store_table_get to
 * count the reads that reach the stores; the wrappers pass every call on
 * to the real store. */
/* cmocka.h needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ctx.h"
#include "ringmaster.h"
#include "scratch.h"
#include "shm.h"
#include "store.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* older clang says it only this way */
#define UNDER_ASAN 1
#endif
#endif
#ifdef UNDER_ASAN
/* ASan's allocator: glibc's mallinfo2 sees none of its memory. */
size_t __sanitizer_get_current_allocated_bytes(void);
static size_t heap_in_use(void)
{
	return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd; /* small chunks and mmapped ones */
}
#endif

/* ---- the store calls ctx_write_back makes ---- */

struct store_call {
	char op; /* 'p' put, 'd' del */
	char key[256];
	size_t key_len;
	int rc;
};

static struct {
	int on;
	struct store_call *calls;
	size_t n, cap;
} watch;

int __real_store_state_put(struct store_txn *txn, const void *key, size_t key_len, const void *val,
			   size_t val_len);
int __real_store_state_del(struct store_txn *txn, const void *key, size_t key_len);
int __wrap_store_state_put(struct store_txn *txn, const void *key, size_t key_len, const void *val,
			   size_t val_len);
int __wrap_store_state_del(struct store_txn *txn, const void *key, size_t key_len);
int __real_store_state_write_sorted(struct store_txn *txn, const void *key, size_t key_len,
				    const void *val, size_t val_len, int present);
int __wrap_store_state_write_sorted(struct store_txn *txn, const void *key, size_t key_len,
				    const void *val, size_t val_len, int present);

static void note_call(char op, const void *key, size_t key_len, int rc)
{
	if (!watch.on)
		return;
	if (watch.n == watch.cap) {
		watch.cap = watch.cap ? watch.cap * 2 : 256;
		watch.calls = realloc(watch.calls, watch.cap * sizeof(*watch.calls));
		if (!watch.calls)
			abort();
	}
	struct store_call *c = &watch.calls[watch.n++];
	c->op = op;
	c->key_len = key_len < sizeof(c->key) ? key_len : sizeof(c->key);
	memcpy(c->key, key, c->key_len);
	c->rc = rc;
}

int __wrap_store_state_put(struct store_txn *txn, const void *key, size_t key_len, const void *val,
			   size_t val_len)
{
	int rc = __real_store_state_put(txn, key, key_len, val, val_len);
	note_call('p', key, key_len, rc);
	return rc;
}

int __wrap_store_state_del(struct store_txn *txn, const void *key, size_t key_len)
{
	int rc = __real_store_state_del(txn, key, key_len);
	note_call('d', key, key_len, rc);
	return rc;
}

int __wrap_store_state_write_sorted(struct store_txn *txn, const void *key, size_t key_len,
				    const void *val, size_t val_len, int present)
{
	int rc = __real_store_state_write_sorted(txn, key, key_len, val, val_len, present);
	note_call(present ? 'p' : 'd', key, key_len, rc);
	return rc;
}

static unsigned state_reads, table_reads;

int __real_store_state_get(struct store_txn *txn, const void *key, size_t key_len,
			   struct store_val *val);
int __real_store_table_get(struct store_txn *txn, const char *table, const void *key,
			   size_t key_len, struct store_val *val);
int __wrap_store_state_get(struct store_txn *txn, const void *key, size_t key_len,
			   struct store_val *val);
int __wrap_store_table_get(struct store_txn *txn, const char *table, const void *key,
			   size_t key_len, struct store_val *val);

int __wrap_store_state_get(struct store_txn *txn, const void *key, size_t key_len,
			   struct store_val *val)
{
	state_reads++;
	return __real_store_state_get(txn, key, key_len, val);
}

int __wrap_store_table_get(struct store_txn *txn, const char *table, const void *key,
			   size_t key_len, struct store_val *val)
{
	table_reads++;
	return __real_store_table_get(txn, table, key, key_len, val);
}

static void watch_start(void)
{
	watch.n = 0;
	watch.on = 1;
}

/* ---- fixture: a shard, a hand-made struct cfg, a context ---- */

struct fx {
	char dir[64];
	struct cfg cfg;
	struct store_env *shard;
	struct rm_ctx ctx;
	uint64_t seq;
};

static struct fx *open_fx(void **state, uint64_t map_size)
{
	struct fx *fx = *state;
	char err[STORE_ERR_LEN] = "";

	assert_int_equal(
	    store_shard_open(fx->dir, 0, 1, map_size, STORE_SYNC_NONE, 0, &fx->shard, err), 0);
	assert_int_equal(ctx_init(&fx->ctx, &fx->cfg, 0), 0);
	return fx;
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_ctx.XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	fx->cfg.partitions = 1;
	fx->cfg.data_dir = fx->dir;
	*state = fx;
	watch.on = 0;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	watch.on = 0;
	if (fx->ctx.shard_txn)
		store_txn_abort(fx->ctx.shard_txn);
	ctx_free(&fx->ctx);
	if (fx->shard)
		store_close(fx->shard);
	scratch_remove(fx->dir);
	free(fx);
	return 0;
}

static void begin(struct fx *fx)
{
	assert_int_equal(store_shard_begin(fx->shard, &fx->ctx.shard_txn), 0);
}

/* What the worker does at the end of a good batch. */
static void commit(struct fx *fx)
{
	assert_int_equal(ctx_write_back(&fx->ctx), 0);
	assert_int_equal(store_shard_commit(fx->ctx.shard_txn, ++fx->seq, 0), 0);
	fx->ctx.shard_txn = NULL;
	ctx_committed(&fx->ctx);
	ctx_reset(&fx->ctx);
}

/* ...and of an abandoned one. */
static void abandon(struct fx *fx)
{
	store_txn_abort(fx->ctx.shard_txn);
	fx->ctx.shard_txn = NULL;
	ctx_reset(&fx->ctx);
}

static void put_str(struct fx *fx, const char *key, const char *val)
{
	assert_int_equal(rm_state_put(&fx->ctx, key, strlen(key), val, strlen(val)), 0);
}

/* key's state is `want` (NULL: absent). */
static void assert_state(struct fx *fx, const char *key, const char *want)
{
	struct rm_value v;
	int rc = rm_state_get(&fx->ctx, key, strlen(key), &v);

	if (!want) {
		assert_int_equal(rc, RM_NOTFOUND);
		return;
	}
	assert_int_equal(rc, RM_FOUND);
	assert_int_equal(v.len, strlen(want));
	assert_memory_equal(v.data, want, v.len);
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int d = memcmp(a, b, alen < blen ? alen : blen);
	return d ? d : (alen > blen) - (alen < blen);
}

/* ---- the hash table ---- */

/* Far more keys than the table starts with: it grows (several times) and
 * every key keeps its value, whether put in this batch or read through
 * from the shard before the growth. */
static void test_hash_growth(void **state)
{
	struct fx *fx = open_fx(state, 64 << 20);
	const unsigned n = 20000, old = 100;
	char key[32], val[32];

	begin(fx);
	for (unsigned i = 0; i < old; i++) {
		snprintf(key, sizeof(key), "old-%u", i);
		snprintf(val, sizeof(val), "stored-%u", i);
		put_str(fx, key, val);
	}
	commit(fx);

	begin(fx);
	size_t cap0 = fx->ctx.cap_entries;
	for (unsigned i = 0; i < old; i++) { /* clean entries, pointing into the map */
		snprintf(key, sizeof(key), "old-%u", i);
		snprintf(val, sizeof(val), "stored-%u", i);
		assert_state(fx, key, val);
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "key-%u", i);
		snprintf(val, sizeof(val), "value-%u", i * 7);
		put_str(fx, key, val);
	}
	assert_int_equal(fx->ctx.n_entries, n + old);
	assert_true(fx->ctx.cap_entries >= 4 * cap0);
	assert_int_equal(fx->ctx.cap_entries & (fx->ctx.cap_entries - 1), 0);
	assert_true(fx->ctx.n_entries * 4 <= fx->ctx.cap_entries * 3);
	print_message("    %u keys: table grew from %zu to %zu entries\n", n + old, cap0,
		      fx->ctx.cap_entries);
	for (unsigned i = 0; i < old; i++) {
		snprintf(key, sizeof(key), "old-%u", i);
		snprintf(val, sizeof(val), "stored-%u", i);
		assert_state(fx, key, val);
	}
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "key-%u", i);
		snprintf(val, sizeof(val), "value-%u", i * 7);
		assert_state(fx, key, val);
	}
	assert_state(fx, "key-20000", NULL);
	/* reading the old keys changed none of them */
	assert_int_equal(ctx_changed_count(&fx->ctx), n);
	commit(fx);

	/* the next batch reads every one back through the shard */
	begin(fx);
	for (unsigned i = 0; i < n; i += 97) {
		snprintf(key, sizeof(key), "key-%u", i);
		snprintf(val, sizeof(val), "value-%u", i * 7);
		assert_state(fx, key, val);
	}
	abandon(fx);
}

/* ---- the arena and ctx_reset ---- */

static void fill(char *buf, size_t len, unsigned tag)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (i + tag) % 26);
}

/* Put `n` values of `len` bytes (several arena blocks' worth). */
static void put_many(struct fx *fx, unsigned n, size_t len, unsigned tag)
{
	char key[32], *val = malloc(len);

	assert_non_null(val);
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "big-%u", i);
		fill(val, len, tag + i);
		assert_int_equal(rm_state_put(&fx->ctx, key, strlen(key), val, len), 0);
	}
	free(val);
}

/* A reset forgets the batch: no state, output, counts, reason or error of
 * it shows in the next, which reads the shard afresh. */
static void test_reset_forgets(void **state)
{
	struct fx *fx = open_fx(state, 16 << 20);

	begin(fx);
	put_str(fx, "k", "old");
	commit(fx);

	begin(fx);
	put_str(fx, "k", "new");
	put_str(fx, "only-here", "x");
	assert_int_equal(rm_emit(&fx->ctx, "line", 4), 0);
	rm_count(&fx->ctx, "accepted");
	rm_reject(&fx->ctx, "malformed");
	assert_int_equal(rm_state_put(&fx->ctx, "", 0, "x", 1), -EINVAL);
	assert_int_equal(fx->ctx.failed, -EINVAL);
	assert_string_equal(fx->ctx.reject_reason, "malformed");
	abandon(fx);

	assert_int_equal(fx->ctx.n_dirty, 0);
	assert_int_equal(ctx_changed_count(&fx->ctx), 0);
	assert_int_equal(fx->ctx.out_len, 0);
	assert_int_equal(fx->ctx.n_counts, 0);
	assert_string_equal(fx->ctx.reject_reason, "");
	assert_int_equal(fx->ctx.failed, 0);
	begin(fx);
	assert_state(fx, "k", "old"); /* not the abandoned batch's "new" */
	assert_state(fx, "only-here", NULL);
	abandon(fx);
}

/* A batch takes its values from arena blocks that fill one after the
 * other (1 MiB of values: about 1 MiB of blocks, not a block a value); at
 * the reset they become one block that large, which the next batches,
 * as large, use without allocating (it stays where it is): no memory is
 * left behind, however many such batches run, and no value shows through
 * in the next batch. */
static void test_arena_reuse(void **state)
{
	struct fx *fx = open_fx(state, 16 << 20);
	const unsigned batches = 200, n = 64;
	const size_t len = 16 << 10; /* 1 MiB a batch: four blocks and more */
	struct ctx_arena_block *first = NULL;
	size_t base = 0;

	for (unsigned b = 0; b < batches; b++) {
		begin(fx);
		if (b > 0) /* the previous batch's values are gone */
			assert_int_equal(rm_state_get(&fx->ctx, "big-0", 5, &(struct rm_value){0}),
					 RM_NOTFOUND);
		size_t before = heap_in_use();
		put_many(fx, n, len, b);
		if (b == 0)
			assert_true(heap_in_use() - before < (2u << 20));
		/* one block from the second batch on: as large as the first
		 * batch's blocks together, allocated once */
		if (b == 1)
			first = fx->ctx.arena;
		/* the last value written is the one read */
		char want[16 << 10];
		struct rm_value v;
		fill(want, len, b + n - 1);
		assert_int_equal(rm_state_get(&fx->ctx, "big-63", 6, &v), RM_FOUND);
		assert_int_equal(v.len, len);
		assert_memory_equal(v.data, want, len);
		abandon(fx);
		if (b > 0)
			assert_ptr_equal(fx->ctx.arena, first);
		if (b == 1)
			base = heap_in_use();
	}
	size_t end = heap_in_use();
	print_message("    %u batches of 1 MiB: heap in use %zu -> %zu bytes\n", batches, base,
		      end);
	assert_true(end <= base + (64 << 10)); /* leaking a batch would be 1 MiB */
}

/* ---- ctx_write_back ---- */

/* The batch's changes reach the store in key order (memcmp, then length:
 * LMDB's order), puts and deletes alike, one call per changed key and none
 * for a key only read, or deleted without ever being there. */
static void test_write_back_sorted(void **state)
{
	struct fx *fx = open_fx(state, 16 << 20);
	const unsigned n = 500;
	char key[32];

	begin(fx);
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "old-%u", i);
		put_str(fx, key, "o");
	}
	commit(fx);

	begin(fx);
	/* a scrambled order (i * 7919 mod n is a permutation: 7919 is prime) */
	for (unsigned j = 0; j < n; j++) {
		unsigned i = j * 7919u % n;
		snprintf(key, sizeof(key), "new-%u", i);
		put_str(fx, key, "n");
		snprintf(key, sizeof(key), "old-%u", i);
		if (i % 3 == 0)
			assert_int_equal(rm_state_del(&fx->ctx, key, strlen(key)), 0);
		else if (i % 3 == 1)
			assert_state(fx, key, "o"); /* read only */
		else
			put_str(fx, key, "changed");
	}
	/* prefixes and bytes above 0x7f sort as memcmp says */
	put_str(fx, "new", "p");
	put_str(fx, "ne", "p");
	put_str(fx, "\xff", "hi");
	put_str(fx, "\x01", "lo");
	/* put then deleted, never stored: a delete the store finds nothing for */
	put_str(fx, "gone", "g");
	assert_int_equal(rm_state_del(&fx->ctx, "gone", 4), 0);
	/* deleted, never there: no change at all */
	assert_int_equal(rm_state_del(&fx->ctx, "never", 5), 0);

	size_t changed = ctx_changed_count(&fx->ctx);
	watch_start();
	assert_int_equal(ctx_write_back(&fx->ctx), 0);
	watch.on = 0;

	assert_int_equal(watch.n, changed);
	/* n new, n/3 deleted old, n/3 changed old, 4 odd keys, "gone" */
	assert_int_equal(changed, n + 167 + 166 + 4 + 1);
	unsigned dels = 0;
	for (size_t i = 0; i < watch.n; i++) {
		const struct store_call *c = &watch.calls[i];
		if (i > 0) {
			const struct store_call *p = &watch.calls[i - 1];
			if (key_cmp(p->key, p->key_len, c->key, c->key_len) >= 0)
				fail_msg("call %zu: '%.*s' after '%.*s'", i, (int)c->key_len,
					 c->key, (int)p->key_len, p->key);
		}
		if (c->op == 'd') {
			dels++;
			int gone = c->key_len == 4 && memcmp(c->key, "gone", 4) == 0;
			assert_int_equal(c->rc, gone ? -ENOENT : 0);
		} else {
			assert_int_equal(c->rc, 0);
		}
		assert_false(c->key_len == 5 && memcmp(c->key, "never", 5) == 0);
	}
	assert_int_equal(dels, 167 + 1);
	assert_memory_equal(watch.calls[0].key, "\x01", 1);
	assert_memory_equal(watch.calls[watch.n - 1].key, "\xff", 1);
	assert_int_equal(store_shard_commit(fx->ctx.shard_txn, ++fx->seq, 0), 0);
	fx->ctx.shard_txn = NULL;
	ctx_reset(&fx->ctx);

	/* and the shard holds what the batch left */
	begin(fx);
	assert_state(fx, "old-0", NULL);
	assert_state(fx, "old-1", "o");
	assert_state(fx, "old-2", "changed");
	assert_state(fx, "new-499", "n");
	assert_state(fx, "ne", "p");
	assert_state(fx, "gone", NULL);
	abandon(fx);
}

/* The batch's write-back: `n` store calls, in strictly ascending key order. */
static void write_back_in_order(struct fx *fx, size_t n)
{
	watch_start();
	assert_int_equal(ctx_write_back(&fx->ctx), 0);
	watch.on = 0;
	assert_int_equal(watch.n, n);
	for (size_t i = 1; i < watch.n; i++) {
		const struct store_call *c = &watch.calls[i], *p = &watch.calls[i - 1];
		if (key_cmp(p->key, p->key_len, c->key, c->key_len) >= 0)
			fail_msg("call %zu: '%.*s' after '%.*s'", i, (int)c->key_len, c->key,
				 (int)p->key_len, p->key);
	}
}

/* Keys that share a long prefix, and then 8 more bytes in threes (so
 * that the sort's integer rank ties and the keys' tails decide), come out
 * in memcmp order too. */
static void test_write_back_sorted_prefix(void **state)
{
	struct fx *fx = open_fx(state, 64 << 20);
	const unsigned n = 3000;
	char key[64];

	begin(fx);
	for (unsigned j = 0; j < n; j++) {
		unsigned i = j * 7919u % n;
		snprintf(key, sizeof(key), "a-long-shared-prefix-%08u-%u", i / 3, i % 3 * 7);
		put_str(fx, key, "v");
	}
	put_str(fx, "a-long-shared-prefix-", "shortest");
	write_back_in_order(fx, n + 1);
	assert_int_equal(watch.calls[0].key_len, strlen("a-long-shared-prefix-"));
	abandon(fx);
}

/* Many keys of one kind (they differ in a few bytes of their first 16, so
 * the write-back sorts them by those bytes, no comparisons), in threes that
 * agree in their first 16 bytes and differ after (the ties the counting
 * sort leaves, sorted on the rest): memcmp order again. */
static void test_write_back_sorted_counting(void **state)
{
	struct fx *fx = open_fx(state, 64 << 20);
	const unsigned n = 3000;
	char key[64];

	begin(fx);
	for (unsigned j = 0; j < n; j++) {
		unsigned i = j * 7919u % n;
		snprintf(key, sizeof(key), "user:%08u:profile-%u", i / 3, 2 - i % 3);
		put_str(fx, key, "v");
	}
	write_back_in_order(fx, n);
	assert_memory_equal(watch.calls[0].key, "user:00000000:profile-0", 23);
	abandon(fx);
}

/* A value bigger than the whole map: ctx takes it (values have no limit of
 * their own), and the write-back gives STORE_MAP_FULL, -EFBIG (not -ENOSPC,
 * which means a full disk). The batch is still whole in the context, so the
 * worker grows the map and writes it back again on a new transaction. */
static void test_write_back_map_full(void **state)
{
	struct fx *fx = open_fx(state, 256 << 10);
	const size_t len = 2 << 20;
	char *big = malloc(len), err[STORE_ERR_LEN];
	int grows = 0, rc;

	assert_non_null(big);
	fill(big, len, 3);
	begin(fx);
	put_str(fx, "small", "s");
	assert_int_equal(rm_state_put(&fx->ctx, "big", 3, big, len), 0);
	assert_int_equal(fx->ctx.failed, 0);
	while ((rc = ctx_write_back(&fx->ctx)) != 0) {
		assert_int_equal(rc, STORE_MAP_FULL);
		assert_int_equal(rc, -EFBIG);
		store_txn_abort(fx->ctx.shard_txn);
		fx->ctx.shard_txn = NULL;
		assert_int_equal(store_grow(fx->shard, err), 0);
		assert_true(++grows < 10);
		begin(fx);
	}
	assert_true(grows >= 3); /* 256 KiB to at least 2 MiB */
	assert_int_equal(store_shard_commit(fx->ctx.shard_txn, ++fx->seq, 0), 0);
	fx->ctx.shard_txn = NULL;
	ctx_reset(&fx->ctx);

	begin(fx);
	struct rm_value v;
	assert_int_equal(rm_state_get(&fx->ctx, "big", 3, &v), RM_FOUND);
	assert_int_equal(v.len, len);
	assert_memory_equal(v.data, big, len);
	assert_state(fx, "small", "s");
	abandon(fx);
	free(big);
}

/* ---- limits and errors ---- */

/* Keys are 1..255 bytes (ringmaster.h): others are -EINVAL from every call,
 * noted in ctx.failed, and change nothing. An empty value is a value. */
static void test_key_limits(void **state)
{
	struct fx *fx = open_fx(state, 16 << 20);
	char key[256];
	struct rm_value v;

	memset(key, 'k', sizeof(key));
	begin(fx);
	assert_int_equal(rm_state_put(&fx->ctx, key, 0, "v", 1), -EINVAL);
	assert_int_equal(fx->ctx.failed, -EINVAL);
	fx->ctx.failed = 0;
	assert_int_equal(rm_state_put(&fx->ctx, key, 256, "v", 1), -EINVAL);
	assert_int_equal(fx->ctx.failed, -EINVAL);
	fx->ctx.failed = 0;
	assert_int_equal(rm_state_get(&fx->ctx, key, 256, &v), -EINVAL);
	assert_int_equal(fx->ctx.failed, -EINVAL);
	fx->ctx.failed = 0;
	assert_int_equal(rm_state_del(&fx->ctx, key, 0), -EINVAL);
	assert_int_equal(fx->ctx.failed, -EINVAL);
	fx->ctx.failed = 0;
	assert_int_equal(fx->ctx.n_entries, 0);
	assert_int_equal(ctx_changed_count(&fx->ctx), 0);

	assert_int_equal(rm_state_put(&fx->ctx, key, 255, "v", 1), 0);
	assert_int_equal(rm_state_put(&fx->ctx, "empty", 5, "", 0), 0);
	assert_int_equal(fx->ctx.failed, 0);
	assert_int_equal(ctx_changed_count(&fx->ctx), 2);
	commit(fx);

	begin(fx);
	assert_int_equal(rm_state_get(&fx->ctx, key, 255, &v), RM_FOUND);
	assert_int_equal(v.len, 1);
	assert_state(fx, "empty", "");
	abandon(fx);
}

/* A handler may count any number of outcome names: the first 31 keep their
 * own count, every later name is counted as "other", and no count is lost,
 * in the batch nor once published to the shared counters (whose own cap
 * works the same way across batches). rm_count returns nothing: the cap is
 * not an error. */
static void test_outcome_cap(void **state)
{
	struct fx *fx = open_fx(state, 16 << 20);
	static struct shm_worker w; /* static: its 128-byte alignment */
	char names[40][16], same[16];
	uint64_t total = 0, sum = 0, total_named = 0;

	memset(&w, 0, sizeof(w));
	for (unsigned i = 0; i < 40; i++)
		snprintf(names[i], sizeof(names[i]), "outcome-%02u", i);
	for (unsigned i = 0; i < 40; i++) {
		for (unsigned k = 0; k <= i; k++, total++)
			rm_count(&fx->ctx, names[i]);
		/* the same name at another address is the same outcome */
		memcpy(same, names[i], sizeof(same));
		rm_count(&fx->ctx, same);
		total++;
	}
	assert_int_equal(fx->ctx.n_counts, SHM_OUTCOMES);
	for (unsigned i = 0; i < SHM_OUTCOMES - 1; i++) {
		assert_string_equal(fx->ctx.counts[i].name, names[i]);
		assert_int_equal(fx->ctx.counts[i].n, i + 2);
	}
	assert_string_equal(fx->ctx.counts[SHM_OUTCOMES - 1].name, "other");
	for (size_t i = 0; i < fx->ctx.n_counts; i++)
		sum += fx->ctx.counts[i].n;
	assert_int_equal(sum, total);
	for (unsigned i = 0; i < SHM_OUTCOMES - 1; i++)
		total_named += i + 2;
	assert_int_equal(fx->ctx.counts[SHM_OUTCOMES - 1].n, total - total_named);

	ctx_publish_counts(&fx->ctx, &w);
	assert_int_equal(w.n_outcomes, SHM_OUTCOMES);
	assert_string_equal(w.outcomes[SHM_OUTCOMES - 1].name, "other");
	sum = 0;
	for (unsigned i = 0; i < SHM_OUTCOMES; i++)
		sum += w.outcomes[i].count;
	assert_int_equal(sum, total);
	ctx_reset(&fx->ctx);

	/* a later batch: a known name keeps its slot, new ones go to "other" */
	rm_count(&fx->ctx, names[0]);
	rm_count(&fx->ctx, "brand-new");
	rm_count(&fx->ctx, "brand-new");
	assert_int_equal(fx->ctx.n_counts, 2);
	uint64_t other = w.outcomes[SHM_OUTCOMES - 1].count;
	ctx_publish_counts(&fx->ctx, &w);
	assert_int_equal(w.n_outcomes, SHM_OUTCOMES);
	assert_int_equal(w.outcomes[0].count, 3);
	assert_int_equal(w.outcomes[SHM_OUTCOMES - 1].count, other + 2);
}

/* ---- output ---- */

/* Lines are appended with their '\n' (the buffer grows past its first
 * 64 KiB), a line holding a newline is refused, and with keep_lines each
 * line is noted with the event it came from. */
static void test_emit(void **state)
{
	struct fx *fx = open_fx(state, 16 << 20);
	static const char pad[] = "padding padding padding padding padding padding";
	char line[100];
	const unsigned n = 2000; /* some 110 KiB */

	fx->ctx.keep_lines = 1;
	for (unsigned i = 0; i < n; i++) {
		ctx_set_event(&fx->ctx, 1000 + i / 2, "ev", 2);
		int len = snprintf(line, sizeof(line), "line %u %s", i, pad);
		assert_int_equal(rm_emit(&fx->ctx, line, (size_t)len), 0);
	}
	assert_int_equal(rm_emit(&fx->ctx, "a\nb", 3), -EINVAL);
	assert_int_equal(fx->ctx.n_lines, n);
	assert_true(fx->ctx.out_cap > 64 << 10);
	size_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct ctx_line *l = &fx->ctx.lines[i];
		int len = snprintf(line, sizeof(line), "line %u %s", i, pad);
		assert_int_equal(l->off, off);
		assert_int_equal(l->len, (size_t)len);
		assert_int_equal(l->seq, 1000 + i / 2);
		assert_int_equal(l->key_len, 2);
		assert_memory_equal(fx->ctx.out + off, line, (size_t)len);
		assert_int_equal(fx->ctx.out[off + (size_t)len], '\n');
		off += (size_t)len + 1;
	}
	assert_int_equal(fx->ctx.out_len, off);
	ctx_reset(&fx->ctx);
	assert_int_equal(fx->ctx.out_len, 0);
	assert_int_equal(fx->ctx.n_lines, 0);
}

/* rm_param serves cfg's [handler] params until ctx_set_params replaces
 * them (a reload); the partition calls say what ctx_init was given. */
static void test_params(void **state)
{
	struct fx *fx = *state;
	struct cfg_kv from_cfg[] = {{"fee", "1", NULL}};
	struct cfg_kv live[] = {{"fee", "2", NULL}, {"limit", "9", NULL}};

	fx->cfg.params = from_cfg;
	fx->cfg.n_params = 1;
	fx->cfg.partitions = 8;
	assert_int_equal(ctx_init(&fx->ctx, &fx->cfg, 5), 0);
	assert_int_equal(rm_partition(&fx->ctx), 5);
	assert_int_equal(rm_partitions(&fx->ctx), 8);
	assert_string_equal(rm_param(&fx->ctx, "fee"), "1");
	assert_null(rm_param(&fx->ctx, "limit"));
	ctx_set_params(&fx->ctx, live, 2);
	assert_string_equal(rm_param(&fx->ctx, "fee"), "2");
	assert_string_equal(rm_param(&fx->ctx, "limit"), "9");
	assert_null(rm_param(&fx->ctx, "other"));
}

/* ---- state kept across batches ---- */

static unsigned reads_of(struct fx *fx, const char *key, const char *want)
{
	unsigned before = state_reads;
	assert_state(fx, key, want);
	return state_reads - before;
}

/* A committed value is served from memory in later batches; a batch that
 * does not commit leaves its keys to be read from the shard again, which
 * still holds the committed value; a commit the worker did not report
 * (no ctx_committed) is read back from the shard too. */
static void test_state_cache(void **state)
{
	struct fx *fx = open_fx(state, 16 << 20);

	begin(fx);
	assert_int_equal(reads_of(fx, "k", NULL), 1); /* first sight: the shard */
	assert_int_equal(reads_of(fx, "k", NULL), 0);
	put_str(fx, "k", "v1");
	put_str(fx, "gone", "x");
	commit(fx);

	begin(fx);
	assert_int_equal(reads_of(fx, "k", "v1"), 0);
	assert_int_equal(reads_of(fx, "gone", "x"), 0);
	assert_int_equal(rm_state_del(&fx->ctx, "gone", 4), 0);
	put_str(fx, "k", "v2, longer than the room v1 had");
	assert_int_equal(reads_of(fx, "k", "v2, longer than the room v1 had"), 0);
	commit(fx);

	begin(fx);
	assert_int_equal(reads_of(fx, "k", "v2, longer than the room v1 had"), 0);
	assert_int_equal(reads_of(fx, "gone", NULL), 0);
	put_str(fx, "k", "never committed");
	put_str(fx, "gone", "back, never committed");
	abandon(fx);

	begin(fx);
	assert_int_equal(reads_of(fx, "k", "v2, longer than the room v1 had"), 1);
	assert_int_equal(reads_of(fx, "gone", NULL), 1);
	put_str(fx, "k", "v3");
	assert_int_equal(ctx_write_back(&fx->ctx), 0);
	assert_int_equal(store_shard_commit(fx->ctx.shard_txn, ++fx->seq, 0), 0);
	fx->ctx.shard_txn = NULL;
	ctx_reset(&fx->ctx); /* committed, but ctx was not told */

	begin(fx);
	assert_int_equal(reads_of(fx, "k", "v3"), 1);
	assert_int_equal(reads_of(fx, "k", "v3"), 0);
	abandon(fx);
	ctx_forget_state(&fx->ctx); /* as after a write to the shard not through ctx */
	assert_int_equal(fx->ctx.n_entries, 0);
	begin(fx);
	assert_int_equal(reads_of(fx, "k", "v3"), 1);
	abandon(fx);

	/* Outside a batch (a handler's init) there is no state to read, even
	 * a key held in memory. */
	struct rm_value v;
	assert_int_equal(rm_state_get(&fx->ctx, "k", 1, &v), -EINVAL);
	assert_int_equal(fx->ctx.failed, -EINVAL);
	fx->ctx.failed = 0;
}

/* Past CTX_STATE_BYTES of keys and values the cache is emptied at the end
 * of the batch (a batch keeps what it touched), and every value is then read
 * from the shard again, right. */
static void test_state_cache_bound(void **state)
{
	struct fx *fx = open_fx(state, 256 << 20);
	const size_t len = 1 << 20;
	const unsigned n = CTX_STATE_BYTES / len + 8;

	begin(fx);
	put_many(fx, n, len, 5);
	commit(fx);
	assert_int_equal(fx->ctx.n_entries, 0);
	assert_true(fx->ctx.state_bytes < CTX_STATE_BYTES);

	begin(fx);
	put_str(fx, "small", "s");
	char *want = malloc(len);
	struct rm_value v;
	assert_non_null(want);
	for (unsigned i = 0; i < n; i += 7) {
		char key[32];
		snprintf(key, sizeof(key), "big-%u", i);
		fill(want, len, 5 + i);
		unsigned before = state_reads;
		assert_int_equal(rm_state_get(&fx->ctx, key, strlen(key), &v), RM_FOUND);
		assert_int_equal(state_reads - before, 1);
		assert_int_equal(v.len, len);
		assert_memory_equal(v.data, want, len);
	}
	free(want);
	commit(fx);
	assert_true(fx->ctx.n_entries > 0); /* under the bound: kept */
	begin(fx);
	assert_int_equal(reads_of(fx, "small", "s"), 0);
	abandon(fx);
}

/* ---- table rows kept for a generation ---- */

#define N_TABLES (CTX_TABLES_MAX + 4)

struct tfx {
	struct cfg cfg;
	struct cfg_table tables[N_TABLES];
	char names[N_TABLES][16], paths[N_TABLES][96];
	struct store_env *config;
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static uint64_t load_tables(struct fx *fx, struct tfx *t)
{
	char errs[1024] = "";
	uint64_t gen = 0;
	(void)fx;
	int rc = store_config_load(t->config, &t->cfg, &gen, errs, sizeof(errs));
	if (rc)
		fail_msg("store_config_load: %d\n%s", rc, errs);
	return gen;
}

/* key's row in table is `want` (NULL: none); returns the reads that went
 * to the config environment for it. */
static unsigned row_is(struct fx *fx, const char *table, const char *key, const char *want)
{
	struct rm_value v;
	unsigned before = table_reads;
	int rc = rm_table_get(&fx->ctx, table, key, strlen(key), &v);
	if (!want) {
		assert_int_equal(rc, RM_NOTFOUND);
	} else {
		assert_int_equal(rc, RM_FOUND);
		assert_int_equal(v.len, strlen(want));
		assert_memory_equal(v.data, want, v.len);
	}
	return table_reads - before;
}

static void read_config(struct fx *fx, struct tfx *t)
{
	assert_int_equal(store_config_read(t->config, &fx->ctx.cfg_txn), 0);
}

static void end_config(struct fx *fx)
{
	store_txn_abort(fx->ctx.cfg_txn);
	fx->ctx.cfg_txn = NULL;
	ctx_reset(&fx->ctx);
}

/* A row (or its absence, or an unknown table) is read from the config
 * environment once per generation; the first batch under a new generation
 * sees the new rows, changed, removed and added; a table is known by its
 * name, wherever the name is; past CTX_TABLES_MAX tables lookups are still
 * right, read every time. */
static void test_table_rows(void **state)
{
	struct fx *fx = open_fx(state, 16 << 20);
	struct tfx *t = calloc(1, sizeof(*t));
	char err[STORE_ERR_LEN] = "", data[96];

	assert_non_null(t);
	snprintf(data, sizeof(data), "%s/data", fx->dir);
	t->cfg.data_dir = data;
	t->cfg.map_size = 4 << 20;
	t->cfg.tables = t->tables;
	for (unsigned i = 0; i < N_TABLES; i++) {
		snprintf(t->names[i], sizeof(t->names[i]), "t%u", i);
		snprintf(t->paths[i], sizeof(t->paths[i]), "%s/t%u.tsv", fx->dir, i);
		t->tables[i] = (struct cfg_table){t->names[i], t->paths[i], NULL};
		char text[64];
		snprintf(text, sizeof(text), "a\t%u\nb\tb-%u\n", i, i);
		write_file(t->paths[i], text);
	}
	t->cfg.n_tables = N_TABLES;
	assert_int_equal(store_config_open(data, t->cfg.map_size, 0, &t->config, err), 0);
	uint64_t gen1 = load_tables(fx, t);

	read_config(fx, t);
	assert_int_equal(row_is(fx, "t0", "a", "0"), 1);
	assert_int_equal(row_is(fx, "t0", "a", "0"), 0);
	assert_int_equal(row_is(fx, "t0", "zz", NULL), 1);
	assert_int_equal(row_is(fx, "t0", "zz", NULL), 0);
	assert_int_equal(row_is(fx, "nope", "a", NULL), 1);
	assert_int_equal(row_is(fx, "nope", "a", NULL), 0);
	char name[8] = "t1"; /* not the literal's address */
	assert_int_equal(row_is(fx, name, "b", "b-1"), 1);
	assert_int_equal(row_is(fx, "t1", "b", "b-1"), 0);
	/* the same address naming another table (a reused buffer, a collected
	 * Lua string) is that other table */
	snprintf(name, sizeof(name), "t0");
	assert_int_equal(row_is(fx, name, "b", "b-0"), 1);
	assert_int_equal(row_is(fx, name, "a", "0"), 0);
	end_config(fx);

	/* the next batch, same generation: nothing read again */
	read_config(fx, t);
	assert_int_equal(row_is(fx, "t0", "a", "0"), 0);
	assert_int_equal(row_is(fx, "t0", "zz", NULL), 0);
	/* more tables than kept: each lookup reads, each is right */
	for (unsigned round = 0; round < 2; round++)
		for (unsigned i = 0; i < N_TABLES; i++) {
			char want[16];
			snprintf(want, sizeof(want), "%u", i);
			unsigned reads = row_is(fx, t->names[i], "a", want);
			if (round == 1 && i < CTX_TABLES_MAX - 3) /* t0, t1, nope */
				assert_int_equal(reads, 0);
			if (i >= CTX_TABLES_MAX)
				assert_int_equal(reads, 1);
		}
	end_config(fx);

	/* a reload: a changed, b gone, zz added */
	write_file(t->paths[0], "a\tnew\nzz\tadded\n");
	uint64_t gen2 = load_tables(fx, t);
	assert_true(gen2 > gen1);
	read_config(fx, t);
	assert_int_equal(row_is(fx, "t0", "a", "new"), 1);
	assert_int_equal(row_is(fx, "t0", "b", NULL), 1);
	assert_int_equal(row_is(fx, "t0", "zz", "added"), 1);
	assert_int_equal(row_is(fx, "t0", "zz", "added"), 0);
	assert_int_equal(row_is(fx, "t1", "b", "b-1"), 1);
	end_config(fx);

	/* outside a batch: no view of the tables */
	struct rm_value v;
	assert_int_equal(rm_table_get(&fx->ctx, "t0", "a", 1, &v), -EINVAL);
	fx->ctx.failed = 0;
	store_close(t->config);
	free(t);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_hash_growth),
	    T(test_reset_forgets),
	    T(test_arena_reuse),
	    T(test_write_back_sorted),
	    T(test_write_back_sorted_prefix),
	    T(test_write_back_sorted_counting),
	    T(test_write_back_map_full),
	    T(test_key_limits),
	    T(test_outcome_cap),
	    T(test_emit),
	    T(test_params),
	    T(test_state_cache),
	    T(test_state_cache_bound),
	    T(test_table_rows),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(watch.calls);
	return rc;
}
