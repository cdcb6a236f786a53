/* ctx.c - the calls a handler makes (ringmaster.h), as the worker serves
 * them during a batch.
 *
 * State. The worker is its shard's only writer, so what it has read or
 * committed is what the shard holds until it commits again: state values
 * are kept in a hash table across batches (up to CTX_STATE_BYTES), and a
 * key is read from the shard only the first time it is seen. Puts change
 * only the batch's value (in an arena). At commit the batch's changed keys
 * are written back in one sorted pass (ctx_write_back): one LMDB put per
 * distinct key and batch rather than per event, which is what makes hot
 * keys cheap; ctx_committed then makes them the cached values. A batch that
 * does not commit leaves its keys to be read from the shard again.
 *
 * Reference tables. A table changes only with the generation of the config
 * environment (a reload loads all of them in the transaction that bumps it),
 * so the rows a worker looks up are kept, copied out of the map, for as long
 * as the batches' read transactions show the same generation; the first
 * lookup under another generation drops them all. So a reload takes effect
 * at the same batch boundary as before, and a lookup is one hash probe. */
#include "ctx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bytes.h"
#include "cfg.h"
#include "log.h"

#define ARENA_BLOCK (256u * 1024u)
#define ARENA_KEEP (64u << 20)
#define CTX_MIN_ENTRIES 1024u
#define CTX_MIN_ROWS 256u

struct ctx_arena_block {
	struct ctx_arena_block *next;
	size_t used, size;
	char data[];
};

/* A zeroed table of n slots of `size` bytes, on cache-line boundaries: a
 * 64-byte state slot is one line, a 32-byte row slot half of one, so a
 * probe (and a prefetch) touches one line. */
static void *slots_alloc(size_t n, size_t size)
{
	if (n > SIZE_MAX / size)
		return NULL;
	void *p = aligned_alloc(64, (n * size + 63) & ~(size_t)63);
	if (p)
		memset(p, 0, n * size);
	return p;
}

int ctx_init(struct rm_ctx *c, const struct cfg *cfg, unsigned partition)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->partition = partition;
	c->partitions = cfg->partitions;
	c->clock_cost = stage_clock_cost();
	c->reads_rng = 0x9E3779B97F4A7C15ull ^ partition; /* the sampler's seed: not 0 */
	c->reads_left = c->reads_left_next = STAGE_SAMPLE;
	/* Keys come from the input: a seed nobody knows keeps a crafted set of
	 * keys from landing in one probe chain. */
	if (getrandom(&c->hash_seed, sizeof(c->hash_seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(c->hash_seed))
		c->hash_seed = shm_now_ns() ^ ((uint64_t)partition << 48);
	c->epoch = 1; /* entries start at 0: not changed */
	c->cap_entries = CTX_MIN_ENTRIES;
	c->entries = slots_alloc(c->cap_entries, sizeof(*c->entries));
	return c->entries ? 0 : -ENOMEM;
}

static void arena_free(struct ctx_arena_block *b)
{
	while (b) {
		struct ctx_arena_block *next = b->next;
		free(b);
		b = next;
	}
}

/* Empty the arena. A batch that needed more than the first block gets one
 * block as large as all of them (up to ARENA_KEEP): the next batches, as
 * large, then allocate nothing, rather than a block the allocator hands
 * back to the kernel and faults in again at every batch. */
static void arena_reset(struct ctx_arena_block **head)
{
	struct ctx_arena_block *b = *head;
	if (!b)
		return;
	b->used = 0;
	if (!b->next)
		return;
	size_t total = 0;
	for (struct ctx_arena_block *x = b; x; x = x->next)
		total += x->size;
	arena_free(b->next);
	b->next = NULL;
	if (total > ARENA_KEEP)
		total = ARENA_BLOCK;
	struct ctx_arena_block *nb = realloc(b, sizeof(*nb) + total);
	if (nb) {
		nb->size = total;
		*head = nb;
	}
}

static void *arena_alloc(struct ctx_arena_block **head, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct ctx_arena_block *b = *head;
	if (!b || b->size - b->used < n) {
		size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		struct ctx_arena_block *nb = malloc(sizeof(*nb) + size);
		if (!nb)
			return NULL;
		nb->size = size;
		nb->used = 0;
		nb->next = b; /* the first block is the one allocated from */
		*head = b = nb;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

static void state_drop(struct rm_ctx *c)
{
	for (size_t i = 0; i < c->cap_entries; i++)
		free(c->entries[i].mem);
	memset(c->entries, 0, c->cap_entries * sizeof(*c->entries));
	c->n_entries = 0;
	c->state_bytes = 0;
	c->n_dirty = 0;
	c->last_entry = NULL;
}

void ctx_forget_state(struct rm_ctx *c)
{
	state_drop(c);
}

static void tables_drop(struct rm_ctx *c)
{
	for (size_t i = 0; i < c->n_tables; i++)
		free(c->tables[i]);
	c->n_tables = 0;
	free(c->rows);
	c->rows = NULL;
	c->n_rows = c->cap_rows = 0;
	c->rows_bytes = 0;
	arena_free(c->rows_arena);
	c->rows_arena = NULL;
	c->tables_valid = 0;
	c->evkey_tables = 0;
}

void ctx_free(struct rm_ctx *c)
{
	if (c->entries)
		state_drop(c);
	tables_drop(c);
	arena_free(c->arena);
	free(c->entries);
	free(c->dirty);
	free(c->sort_tmp);
	free(c->out);
	free(c->lines);
	memset(c, 0, sizeof(*c));
}

/* A committed value into the entry's own memory, after its key. */
static int keep_committed(struct ctx_entry *e, const char *val, size_t len, int present,
			  size_t *bytes)
{
	if (present && len > e->cap) {
		size_t cap = len < 32 ? 32 : len + len / 4;
		char *mem = realloc(e->mem, e->key_len + cap);
		if (!mem)
			return -ENOMEM;
		*bytes += cap - e->cap;
		e->mem = mem;
		e->cap = cap;
	}
	if (present)
		bytes_copy(e->mem + e->key_len, val, len);
	e->committed = present != 0;
	e->com_len = present ? len : 0;
	e->present = e->committed;
	e->val = present ? e->mem + e->key_len : NULL;
	e->val_len = e->com_len;
	e->known = 1;
	return 0;
}

/* A new batch: no entry is changed in it yet, and none is touched to say so. */
static void next_epoch(struct rm_ctx *c)
{
	c->n_dirty = 0;
	if (++c->epoch != 0)
		return;
	/* Once in 2^32 batches: no entry may keep an epoch that comes again. */
	for (size_t i = 0; i < c->cap_entries; i++)
		c->entries[i].epoch = 0;
	c->epoch = 1;
}

/* ctx_write_back made each value it wrote the entry's committed one: the
 * commit makes them true. */
void ctx_committed(struct rm_ctx *c)
{
	next_epoch(c);
}

void ctx_reset(struct rm_ctx *c)
{
	/* Changes not committed: what the shard holds is read again (the
	 * committed copy may hold what ctx_write_back wrote). */
	for (size_t i = 0; i < c->n_dirty; i++)
		c->dirty[i].e->known = 0;
	next_epoch(c);
	if (c->state_bytes > CTX_STATE_BYTES)
		state_drop(c);
	arena_reset(&c->arena);
	c->ev_key = NULL; /* no event until the next ctx_set_event */
	c->ev_hashed = 0;
	c->out_len = 0;
	c->n_lines = 0;
	c->n_counts = 0;
	c->reject_reason[0] = '\0';
	c->failed = 0;
}

/* 8 bytes at a time, then a finalizer (murmur3's): table slots are taken
 * from the low bits. */
static uint64_t key_hash(uint64_t seed, const char *key, size_t len)
{
	uint64_t h = seed ^ (len * 0x9E3779B97F4A7C15ull), w;
	for (; len >= 8; key += 8, len -= 8) {
		memcpy(&w, key, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	if (len) {
		/* 1..7 bytes: two loads that may overlap, no loop. */
		if (len >= 4) {
			uint32_t lo, hi;
			memcpy(&lo, key, 4);
			memcpy(&hi, key + len - 4, 4);
			w = (uint64_t)hi << 32 | lo;
		} else {
			w = (uint64_t)(unsigned char)key[0] << 16 |
			    (uint64_t)(unsigned char)key[len / 2] << 8 |
			    (unsigned char)key[len - 1];
		}
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

/* `key` is the event's: its bytes (a Lua handler's key is a copy). */
static inline int is_ev_key(const struct rm_ctx *c, const char *key, size_t len)
{
	return len == c->ev_key_len && c->ev_key &&
	       (key == c->ev_key || bytes_eq(key, c->ev_key, len));
}

/* The hash of `key`: the event's is made once for all its lookups. */
static inline uint64_t hash_of(struct rm_ctx *c, const char *key, size_t len)
{
	if (is_ev_key(c, key, len)) {
		if (!c->ev_hashed) {
			c->ev_hash = key_hash(c->hash_seed, key, len);
			c->ev_hashed = 1;
		}
		return c->ev_hash;
	}
	return key_hash(c->hash_seed, key, len);
}

/* Equal keys of `len` bytes: short keys (the usual account or id) with two
 * loads each, no call (bytes.h). */
static inline int key_eq(const char *a, const char *b, size_t len)
{
	return bytes_eq(a, b, len);
}

static struct ctx_entry *slot_for(struct ctx_entry *tab, size_t cap, uint64_t h, const char *key,
				  size_t len)
{
	size_t i = h & (cap - 1);
	for (;; i = (i + 1) & (cap - 1)) {
		struct ctx_entry *e = &tab[i];
		if (!e->used)
			return e;
		if (e->hash == h && e->key_len == len && key_eq(e->mem, key, len))
			return e;
	}
}

static void key_rank(const char *key, size_t len, uint64_t *hi, uint64_t *lo);

/* e joins the batch's changed entries at `d`. */
static void note_dirty(struct ctx_dirty *d, struct ctx_entry *e)
{
	d->e = e;
	key_rank(e->mem, e->key_len, &d->hi, &d->lo);
}

static int grow_entries(struct rm_ctx *c)
{
	size_t cap = c->cap_entries * 2;
	struct ctx_entry *tab = slots_alloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	c->n_dirty = 0; /* the entries move: list them again */
	for (size_t i = 0; i < c->cap_entries; i++) {
		struct ctx_entry *e = &c->entries[i];
		if (!e->used)
			continue;
		struct ctx_entry *to = slot_for(tab, cap, e->hash, e->mem, e->key_len);
		*to = *e; /* mem and the arena stay where they are: val too */
		if (to->epoch == c->epoch)
			note_dirty(&c->dirty[c->n_dirty++], to);
	}
	c->state_bytes += (cap - c->cap_entries) * sizeof(*tab);
	c->last_entry = NULL;
	free(c->entries);
	c->entries = tab;
	c->cap_entries = cap;
	return 0;
}

/* The entry for `key`, read through from the shard when its value is not
 * known. */
static int lookup(struct rm_ctx *c, const char *key, size_t len, struct ctx_entry **out)
{
	if (len == 0 || len > 255 || !c->shard_txn)
		return -EINVAL;
	/* A put mostly follows a get of the same key: no second probe. */
	struct ctx_entry *e = c->last_entry;
	if (e && e->known && e->key_len == len && key_eq(e->mem, key, len)) {
		*out = e;
		return 0;
	}
	uint64_t h = hash_of(c, key, len);
	if (!c->evkey_state && is_ev_key(c, key, len))
		c->evkey_state = 1; /* ctx_prefetch: the state is read by event key */
	e = slot_for(c->entries, c->cap_entries, h, key, len);
	if (e->used && e->known) {
		*out = c->last_entry = e;
		return 0;
	}
	if (!e->used && (c->n_entries + 1) * 4 > c->cap_entries * 3) {
		if (grow_entries(c) != 0)
			return -ENOMEM;
		e = slot_for(c->entries, c->cap_entries, h, key, len);
	}
	struct store_val v;
	int rc = store_state_get(c->shard_txn, key, len, &v);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	if (!e->used) {
		char *mem = malloc(len);
		if (!mem)
			return -ENOMEM;
		memcpy(mem, key, len);
		*e = (struct ctx_entry){.hash = h, .mem = mem, .key_len = (uint32_t)len, .used = 1};
		c->n_entries++;
		c->state_bytes += len;
	}
	if (keep_committed(e, v.data, rc == 0 ? v.len : 0, rc == 0, &c->state_bytes) != 0)
		return -ENOMEM;
	*out = c->last_entry = e;
	return 0;
}

/* Time about one read in STAGE_SAMPLE: a countdown to the next timed
 * one, its gap drawn at random (1..2 * STAGE_SAMPLE, xorshift), not every
 * 64th: a handler's calls come in a fixed pattern, and batches of a steady
 * size would have the same call of each timed (the first of a batch, which
 * is cold). One decrement a call; the timed one stands for its gap.
 * Returns the start, or 0 when this one is not timed. */
static uint64_t read_begin(rm_ctx *c)
{
	if (--c->reads_left)
		return 0;
	uint64_t x = c->reads_rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	c->reads_rng = x;
	c->reads_gap = c->reads_left_next;
	c->reads_left = c->reads_left_next = 1 + (x & (2 * STAGE_SAMPLE - 1));
	return shm_now_ns();
}

static void read_end(rm_ctx *c, uint64_t t0)
{
	if (t0)
		c->reads_ns += stage_sample_ns(t0, c->clock_cost) / STAGE_SAMPLE * c->reads_gap;
}

int rm_state_get(rm_ctx *c, const char *key, size_t key_len, struct rm_value *val)
{
	struct ctx_entry *e;
	uint64_t t0 = read_begin(c);
	int rc = lookup(c, key, key_len, &e);
	read_end(c, t0);
	if (rc)
		return c->failed = rc;
	if (!e->present)
		return RM_NOTFOUND;
	val->data = e->val;
	val->len = e->val_len;
	return RM_FOUND;
}

/* The batch is about to change e. */
static int make_dirty(struct rm_ctx *c, struct ctx_entry *e)
{
	if (e->epoch == c->epoch)
		return 0;
	if (c->n_dirty == c->cap_dirty) {
		size_t cap = c->cap_dirty ? c->cap_dirty * 2 : 1024;
		struct ctx_dirty *d = realloc(c->dirty, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		c->dirty = d;
		c->cap_dirty = cap;
	}
	note_dirty(&c->dirty[c->n_dirty++], e); /* its key is at hand now */
	e->epoch = c->epoch;
	return 0;
}

int rm_state_put(rm_ctx *c, const char *key, size_t key_len, const void *val, size_t val_len)
{
	struct ctx_entry *e;
	int rc = lookup(c, key, key_len, &e);
	if (rc)
		return c->failed = rc;
	char *copy = arena_alloc(&c->arena, val_len ? val_len : 1);
	if (!copy || make_dirty(c, e) != 0)
		return c->failed = -ENOMEM;
	bytes_copy(copy, val, val_len);
	e->val = copy;
	e->val_len = val_len;
	e->present = 1;
	return 0;
}

int rm_state_del(rm_ctx *c, const char *key, size_t key_len)
{
	struct ctx_entry *e;
	int rc = lookup(c, key, key_len, &e);
	if (rc)
		return c->failed = rc;
	/* Deleting what is not there (nor was at the batch's start) changes
	 * nothing. */
	if (e->present && make_dirty(c, e) != 0)
		return c->failed = -ENOMEM;
	e->present = 0;
	e->val = NULL;
	e->val_len = 0;
	return 0;
}

/* ---- the write-back, in key order ---- */

/* The first 16 bytes of a key as two big-endian integers, zero padded: for
 * most keys (an account, an id) the whole key, so comparing them is
 * comparing the keys. */
static void key_rank(const char *key, size_t len, uint64_t *hi, uint64_t *lo)
{
	uint64_t w[2] = {0, 0};
	memcpy(w, key, len < 16 ? len : 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w[0] = __builtin_bswap64(w[0]);
	w[1] = __builtin_bswap64(w[1]);
#endif
	*hi = w[0];
	*lo = w[1];
}

/* LMDB's order: bytes, then the shorter first. */
static int dirty_cmp(const struct ctx_dirty *a, const struct ctx_dirty *b)
{
	if (a->hi != b->hi)
		return a->hi < b->hi ? -1 : 1;
	if (a->lo != b->lo)
		return a->lo < b->lo ? -1 : 1;
	const struct ctx_entry *x = a->e, *y = b->e;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int d = n > 16 ? memcmp(x->mem + 16, y->mem + 16, n - 16) : 0;
	if (d)
		return d;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static void dirty_swap(struct ctx_dirty *a, struct ctx_dirty *b)
{
	struct ctx_dirty t = *a;
	*a = *b;
	*b = t;
}

/* Quicksort, median of three, insertion sort below 16; the larger side
 * iterates, so the stack stays O(log n). */
static void sort_dirty(struct ctx_dirty *v, size_t n)
{
	while (n > 16) {
		size_t m = n / 2;
		if (dirty_cmp(&v[m], &v[0]) < 0)
			dirty_swap(&v[m], &v[0]);
		if (dirty_cmp(&v[n - 1], &v[m]) < 0) {
			dirty_swap(&v[n - 1], &v[m]);
			if (dirty_cmp(&v[m], &v[0]) < 0)
				dirty_swap(&v[m], &v[0]);
		}
		struct ctx_dirty pivot = v[m];
		size_t i = 0, j = n - 1;
		for (;;) {
			while (dirty_cmp(&v[i], &pivot) < 0)
				i++;
			while (dirty_cmp(&pivot, &v[j]) < 0)
				j--;
			if (i >= j)
				break;
			dirty_swap(&v[i], &v[j]);
			i++;
			j--;
		}
		/* [0, j] <= pivot <= [j + 1, n) */
		size_t left = j + 1;
		if (left < n - left) {
			sort_dirty(v, left);
			v += left;
			n -= left;
		} else {
			sort_dirty(v + left, n - left);
			n = left;
		}
	}
	for (size_t i = 1; i < n; i++) {
		struct ctx_dirty t = v[i];
		size_t j = i;
		for (; j > 0 && dirty_cmp(&t, &v[j - 1]) < 0; j--)
			v[j] = v[j - 1];
		v[j] = t;
	}
}

/* The bytes of the 16-byte ranks that differ between the items: bit i of
 * the result for byte i of lo (0 the lowest), bit 8 + i for hi's. */
static unsigned varying_bytes(const struct ctx_dirty *v, size_t n)
{
	uint64_t dh = 0, dl = 0;
	for (size_t i = 1; i < n; i++) {
		dh |= v[i].hi ^ v[0].hi;
		dl |= v[i].lo ^ v[0].lo;
	}
	unsigned m = 0;
	for (unsigned b = 0; b < 8; b++) {
		m |= ((dl >> (8 * b)) & 0xff) ? 1u << b : 0;
		m |= ((dh >> (8 * b)) & 0xff) ? 1u << (8 + b) : 0;
	}
	return m;
}

/* Sort the batch's changed entries into key order. Keys of one kind differ
 * in a few bytes of their first 16 (an account's last digits): a counting
 * sort on each of those bytes, lowest first, orders the ranks in a few
 * passes over the items with no comparison; then each run of equal ranks
 * (keys that go on past 16 bytes) is sorted on the rest. Many varying
 * bytes, few items or no memory: the quicksort. */
static void sort_changed(struct rm_ctx *c)
{
	size_t n = c->n_dirty;
	unsigned bytes = n >= 256 ? varying_bytes(c->dirty, n) : 0;
	if (n < 256 || __builtin_popcount(bytes) > 6) {
		sort_dirty(c->dirty, n);
		return;
	}
	if (c->cap_sort_tmp < c->cap_dirty) {
		struct ctx_dirty *t = realloc(c->sort_tmp, c->cap_dirty * sizeof(*t));
		if (!t) {
			sort_dirty(c->dirty, n);
			return;
		}
		c->sort_tmp = t;
		c->cap_sort_tmp = c->cap_dirty;
	}
	struct ctx_dirty *from = c->dirty, *to = c->sort_tmp;
	for (unsigned b = 0; b < 16; b++) {
		if (!(bytes >> b & 1))
			continue;
		size_t count[256] = {0};
		unsigned shift = 8 * (b & 7);
		int in_hi = b >= 8;
		for (size_t i = 0; i < n; i++)
			count[((in_hi ? from[i].hi : from[i].lo) >> shift) & 0xff]++;
		size_t at = 0;
		for (unsigned k = 0; k < 256; k++) {
			size_t x = count[k];
			count[k] = at;
			at += x;
		}
		for (size_t i = 0; i < n; i++)
			to[count[((in_hi ? from[i].hi : from[i].lo) >> shift) & 0xff]++] = from[i];
		struct ctx_dirty *t = from;
		from = to;
		to = t;
	}
	if (from != c->dirty) { /* the sorted items are in sort_tmp: swap */
		c->sort_tmp = c->dirty;
		c->dirty = from;
		size_t cap = c->cap_sort_tmp;
		c->cap_sort_tmp = c->cap_dirty;
		c->cap_dirty = cap;
	}
	/* Runs of equal ranks: sorted on the rest of their keys. */
	struct ctx_dirty *v = c->dirty;
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && v[j].hi == v[i].hi && v[j].lo == v[i].lo; j++)
			;
		if (j - i > 1)
			sort_dirty(v + i, j - i);
	}
}

/* How far ahead of its put an entry and its key are asked for. */
#define WRITE_BACK_AHEAD 8

int ctx_write_back(struct rm_ctx *c)
{
	size_t n = c->n_dirty;
	sort_changed(c);
	struct ctx_dirty *v = c->dirty;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (i + WRITE_BACK_AHEAD < n)
			__builtin_prefetch(v[i + WRITE_BACK_AHEAD].e);
		if (i + WRITE_BACK_AHEAD / 2 < n)
			__builtin_prefetch(v[i + WRITE_BACK_AHEAD / 2].e->mem);
		struct ctx_entry *e = v[i].e;
		rc = store_state_write_sorted(c->shard_txn, e->mem, e->key_len, e->val, e->val_len,
					      e->present);
		if (rc == -ENOENT)
			rc = 0;
		/* The value becomes the committed one now, while the entry is at
		 * hand: a commit that fails makes ctx_reset forget it (known =
		 * 0), and out of memory it is read from the shard next time. */
		if (rc == 0 && e->val != e->mem + e->key_len &&
		    keep_committed(e, e->val, e->val_len, e->present, &c->state_bytes) != 0)
			e->known = 0;
	}
	return rc;
}

/* ---- reference tables ---- */

/* Table names: the first byte tells most apart with no call. */
static inline int name_eq(const char *a, const char *b)
{
	return a[0] == b[0] && strcmp(a, b) == 0;
}

/* The index of `table` in c->tables, by name: not by address, which a Lua
 * handler's strings do not keep (a collected name's address can come back
 * holding another). -1 when there is no room. */
static int table_index(struct rm_ctx *c, const char *table)
{
	for (size_t i = 0; i < c->n_tables; i++)
		if (name_eq(c->tables[i], table))
			return (int)i;
	if (c->n_tables == CTX_TABLES_MAX)
		return -1;
	char *copy = strdup(table);
	if (!copy)
		return -1;
	c->tables[c->n_tables] = copy;
	return (int)c->n_tables++;
}

/* Where table t's row of a key with hash h starts probing: the key's hash is
 * the same for every table (and its state), the table moves the slot. */
static inline size_t row_home(uint64_t h, int table, size_t cap)
{
	return (h + (uint64_t)table * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static struct ctx_row *row_slot(struct ctx_row *tab, size_t cap, uint64_t h, int table,
				const char *key, size_t len)
{
	size_t i = row_home(h, table, cap);
	for (;; i = (i + 1) & (cap - 1)) {
		struct ctx_row *r = &tab[i];
		if (!r->used)
			return r;
		if (r->hash == h && r->table == table && r->key_len == len &&
		    key_eq(r->key, key, len))
			return r;
	}
}

static int grow_rows(struct rm_ctx *c)
{
	size_t cap = c->cap_rows ? c->cap_rows * 2 : CTX_MIN_ROWS;
	struct ctx_row *tab = slots_alloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap_rows; i++) {
		struct ctx_row *r = &c->rows[i];
		if (r->used)
			*row_slot(tab, cap, r->hash, r->table, r->key, r->key_len) = *r;
	}
	c->rows_bytes += (cap - c->cap_rows) * sizeof(*tab);
	free(c->rows);
	c->rows = tab;
	c->cap_rows = cap;
	return 0;
}

/* Keep a row looked up in the config environment (found or not). Out of
 * room or memory it is simply not kept. */
static void keep_row(struct rm_ctx *c, struct ctx_row *slot, uint64_t h, int table, const char *key,
		     size_t len, const struct store_val *v)
{
	size_t vlen = v ? v->len : 0;
	if (c->rows_bytes + len + vlen > CTX_TABLE_BYTES)
		return;
	if ((c->n_rows + 1) * 4 > c->cap_rows * 3) {
		if (grow_rows(c) != 0)
			return;
		slot = row_slot(c->rows, c->cap_rows, h, table, key, len);
	}
	char *mem = arena_alloc(&c->rows_arena, len + vlen);
	if (!mem)
		return;
	memcpy(mem, key, len);
	if (vlen)
		memcpy(mem + len, v->data, vlen);
	*slot = (struct ctx_row){.hash = h,
				 .key = mem,
				 .key_len = (uint32_t)len,
				 .table = (uint16_t)table,
				 .used = 1,
				 .found = v != NULL,
				 .val_len = vlen};
	c->n_rows++;
	c->rows_bytes += len + vlen;
}

static int table_get(rm_ctx *c, const char *table, const char *key, size_t key_len,
		     struct rm_value *val)
{
	if (!c->cfg_txn)
		return -EINVAL;
	uint64_t gen = store_config_generation(c->cfg_txn);
	if (!c->tables_valid || gen != c->tables_gen) {
		tables_drop(c);
		c->tables_gen = gen;
		c->tables_valid = 1;
	}
	int t = table_index(c, table);
	struct ctx_row *slot = NULL;
	uint64_t h = t >= 0 ? hash_of(c, key, key_len) : 0;
	if (t >= 0 && !(c->evkey_tables >> t & 1) && is_ev_key(c, key, key_len))
		c->evkey_tables |= 1u << t;
	if (t >= 0 && c->cap_rows) {
		slot = row_slot(c->rows, c->cap_rows, h, t, key, key_len);
		if (slot->used) {
			if (!slot->found)
				return RM_NOTFOUND;
			val->data = slot->key + slot->key_len;
			val->len = slot->val_len;
			return RM_FOUND;
		}
	}
	struct store_val v;
	int rc = store_table_get(c->cfg_txn, table, key, key_len, &v);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	if (t >= 0) {
		if (!slot && grow_rows(c) == 0)
			slot = row_slot(c->rows, c->cap_rows, h, t, key, key_len);
		if (slot)
			keep_row(c, slot, h, t, key, key_len, rc == 0 ? &v : NULL);
	}
	if (rc == -ENOENT)
		return RM_NOTFOUND;
	val->data = v.data;
	val->len = v.len;
	return RM_FOUND;
}

int rm_table_get(rm_ctx *c, const char *table, const char *key, size_t key_len,
		 struct rm_value *val)
{
	uint64_t t0 = read_begin(c);
	int rc = table_get(c, table, key, key_len, val);
	read_end(c, t0);
	return rc < 0 ? (c->failed = rc) : rc;
}

/* Note where the line about to be appended (len bytes) came from. */
static int keep_line(struct rm_ctx *c, size_t len)
{
	if (c->n_lines == c->cap_lines) {
		size_t cap = c->cap_lines ? c->cap_lines * 2 : 1024;
		struct ctx_line *l = realloc(c->lines, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		c->lines = l;
		c->cap_lines = cap;
	}
	c->lines[c->n_lines++] =
	    (struct ctx_line){c->out_len, len, c->ev_seq, c->ev_key, c->ev_key_len};
	return 0;
}

int rm_emit(rm_ctx *c, const char *line, size_t len)
{
	if (memchr(line, '\n', len))
		return -EINVAL;
	if (c->out_cap - c->out_len < len + 1) {
		size_t cap = c->out_cap ? c->out_cap : 64 * 1024;
		while (cap - c->out_len < len + 1)
			cap *= 2;
		char *out = realloc(c->out, cap);
		if (!out)
			return c->failed = -ENOMEM;
		c->out = out;
		c->out_cap = cap;
	}
	if (c->keep_lines && keep_line(c, len) != 0)
		return c->failed = -ENOMEM;
	memcpy(c->out + c->out_len, line, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	return 0;
}

void ctx_set_event(struct rm_ctx *c, uint64_t seq, const char *key, size_t key_len)
{
	c->ev_seq = seq;
	c->ev_key = key;
	c->ev_key_len = (uint32_t)key_len;
	c->ev_hashed = 0;
}

void ctx_set_event_hashed(struct rm_ctx *c, uint64_t seq, const char *key, size_t key_len,
			  uint64_t hash)
{
	ctx_set_event(c, seq, key, key_len);
	c->ev_hash = hash;
	c->ev_hashed = hash != 0; /* 0: not made (nor needed so far) */
}

/* How far ahead of the handler an event's record, its slots (ctx_prefetch)
 * and what they point to (ctx_prefetch_near) are asked for: a few
 * microseconds and a few hundred nanoseconds of handler time, more than a
 * read from memory takes. */
#define AHEAD_RECORD 24
#define AHEAD_FAR 12
#define AHEAD_NEAR 5
_Static_assert(AHEAD_NEAR < AHEAD_FAR && AHEAD_FAR < CTX_AHEAD_RING,
	       "a hash stays in the ring until its event is handled");

/* ctx_prefetch_near's work, inlined where it is used: a call to a function
 * that only reads memory and prefetches has no effect the compiler must keep,
 * and GCC drops it within one file (it did, in ctx_ahead). Probe chains are
 * short (a table is at most 3/4 full): the next line holds the rest of most. */
static inline __attribute__((always_inline)) void prefetch_near(const struct rm_ctx *c, uint64_t h)
{
	if (!h)
		return;
	size_t mask = c->cap_entries - 1;
	for (size_t i = h & mask, k = 0; c->evkey_state && k < 4; i = (i + 1) & mask, k++) {
		const struct ctx_entry *e = &c->entries[i];
		if (!e->used)
			break;
		if (e->hash == h) {
			__builtin_prefetch(e->mem);
			break;
		}
	}
	if (!c->cap_rows)
		return;
	mask = c->cap_rows - 1;
	for (uint32_t m = c->evkey_tables; m; m &= m - 1) {
		int t = __builtin_ctz(m);
		for (size_t i = row_home(h, t, c->cap_rows), k = 0; k < 8;
		     i = (i + 1) & mask, k++) {
			const struct ctx_row *r = &c->rows[i];
			if (!r->used)
				break;
			if (r->hash == h && r->table == t) {
				__builtin_prefetch(r->key);
				break;
			}
		}
	}
}

static struct ctx_evref evref(const void *first, size_t stride, size_t j)
{
	struct ctx_evref r;
	memcpy(&r, (const char *)first + j * stride, sizeof(r));
	return r;
}

uint64_t ctx_ahead(struct rm_ctx *c, struct ctx_ahead *a, const void *first, size_t stride,
		   size_t i, size_t n)
{
	/* A fresh start asks for everything up to each distance at once. */
	int fresh = !a->primed || i != a->last + 1;
	a->primed = 1;
	a->last = i;
	for (size_t j = fresh ? i : i + AHEAD_RECORD; j <= i + AHEAD_RECORD && j < n; j++) {
		struct ctx_evref r = evref(first, stride, j);
		__builtin_prefetch(r.key);
		__builtin_prefetch(r.payload + r.payload_len);
	}
	for (size_t j = fresh ? i : i + AHEAD_FAR; j <= i + AHEAD_FAR && j < n; j++) {
		struct ctx_evref r = evref(first, stride, j);
		a->hash[j % CTX_AHEAD_RING] = ctx_prefetch(c, r.key, r.key_len);
		a->tag[j % CTX_AHEAD_RING] = j;
	}
	for (size_t j = fresh ? i : i + AHEAD_NEAR; j <= i + AHEAD_NEAR && j < n; j++)
		if (a->tag[j % CTX_AHEAD_RING] == j)
			prefetch_near(c, a->hash[j % CTX_AHEAD_RING]);
	return a->tag[i % CTX_AHEAD_RING] == i ? a->hash[i % CTX_AHEAD_RING] : 0;
}

uint64_t ctx_prefetch(struct rm_ctx *c, const char *key, size_t key_len)
{
	/* Nothing is read by the event's key (a handler that does not, or has
	 * not yet): no hash, no prefetch. */
	if (!c->evkey_state && !c->evkey_tables)
		return 0;
	uint64_t h = key_hash(c->hash_seed, key, key_len);
	if (c->evkey_state)
		__builtin_prefetch(&c->entries[h & (c->cap_entries - 1)]);
	if (c->cap_rows)
		for (uint32_t m = c->evkey_tables; m; m &= m - 1)
			__builtin_prefetch(&c->rows[row_home(h, __builtin_ctz(m), c->cap_rows)]);
	return h;
}

void ctx_prefetch_near(const struct rm_ctx *c, uint64_t h)
{
	prefetch_near(c, h);
}

size_t ctx_changed_count(const struct rm_ctx *c)
{
	return c->n_dirty;
}

int ctx_changed_foreach(const struct rm_ctx *c, ctx_change_fn fn, void *arg)
{
	for (size_t i = 0; i < c->n_dirty; i++) {
		const struct ctx_entry *e = c->dirty[i].e;
		int rc =
		    fn(arg, e->mem, e->key_len, e->present ? e->val : NULL, e->val_len, e->present);
		if (rc)
			return rc;
	}
	return 0;
}

void rm_reject(rm_ctx *c, const char *reason)
{
	snprintf(c->reject_reason, sizeof(c->reject_reason), "%s", reason ? reason : "rejected");
}

/* Handlers pass string literals, so comparing pointers first finds almost
 * every name without a strcmp. Past SHM_OUTCOMES - 1 names, the rest are
 * "other", as in the shared table. */
void rm_count(rm_ctx *c, const char *outcome)
{
	for (size_t i = 0; i < c->n_counts; i++) {
		if (c->counts[i].name == outcome || strcmp(c->counts[i].name, outcome) == 0) {
			c->counts[i].n++;
			return;
		}
	}
	if (c->n_counts == SHM_OUTCOMES - 1)
		outcome = "other";
	else if (c->n_counts == SHM_OUTCOMES) {
		c->counts[SHM_OUTCOMES - 1].n++;
		return;
	}
	c->counts[c->n_counts].name = outcome;
	c->counts[c->n_counts].n = 1;
	c->n_counts++;
}

void ctx_publish_counts(struct rm_ctx *c, struct shm_worker *w)
{
	for (size_t i = 0; i < c->n_counts; i++)
		shm_count_outcome(w, c->counts[i].name, c->counts[i].n);
}

void ctx_set_params(struct rm_ctx *c, const struct cfg_kv *params, size_t n)
{
	c->params = params;
	c->n_params = n;
}

const char *rm_param(rm_ctx *c, const char *name)
{
	if (!c->params)
		return cfg_param(c->cfg, name);
	for (size_t i = 0; i < c->n_params; i++)
		if (strcmp(c->params[i].key, name) == 0)
			return c->params[i].value;
	return NULL;
}

unsigned rm_partition(rm_ctx *c)
{
	return c->partition;
}

unsigned rm_partitions(rm_ctx *c)
{
	return c->partitions;
}

void rm_log(rm_ctx *c, int level, const char *fmt, ...)
{
	(void)c;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap); /* RM_LOG_* and LOG_LEVEL_* share values */
	va_end(ap);
}
