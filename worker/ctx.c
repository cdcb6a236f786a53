/* ctx.c - the calls a handler makes (ringmaster.h), as the worker serves
 * them during a batch.
 *
 * State is read through to the shard once per key and batch, then kept in a
 * small hash table; puts change only that table. The worker writes the
 * batch's changed keys back in one sorted pass at commit (ctx_write_back):
 * one LMDB put per distinct key and batch rather than per event, which is
 * what makes hot keys cheap. */
#include "ctx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"

#define ARENA_BLOCK (256u * 1024u)
#define CTX_MIN_ENTRIES 1024u

struct ctx_arena_block {
	struct ctx_arena_block *next;
	size_t used, size;
	char data[];
};

int ctx_init(struct rm_ctx *c, const struct cfg *cfg, unsigned partition)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->partition = partition;
	c->partitions = cfg->partitions;
	c->clock_cost = stage_clock_cost();
	c->reads_rng = 0x9E3779B97F4A7C15ull ^ partition; /* the sampler's seed: not 0 */
	c->reads_left = c->reads_left_next = STAGE_SAMPLE;
	c->cap_entries = CTX_MIN_ENTRIES;
	c->entries = calloc(c->cap_entries, sizeof(*c->entries));
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

void ctx_free(struct rm_ctx *c)
{
	arena_free(c->arena);
	free(c->entries);
	free(c->out);
	free(c->lines);
	memset(c, 0, sizeof(*c));
}

/* Keep the first block (the common case fits in it) and drop the rest. */
void ctx_reset(struct rm_ctx *c)
{
	if (c->n_entries)
		memset(c->entries, 0, c->cap_entries * sizeof(*c->entries));
	c->n_entries = 0;
	if (c->arena) {
		arena_free(c->arena->next);
		c->arena->next = NULL;
		c->arena->used = 0;
	}
	c->out_len = 0;
	c->n_lines = 0;
	c->n_counts = 0;
	c->reject_reason[0] = '\0';
	c->failed = 0;
}

static void *arena_alloc(struct rm_ctx *c, size_t n)
{
	n = (n + 7) & ~(size_t)7;
	struct ctx_arena_block *b = c->arena;
	if (!b || b->size - b->used < n) {
		size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		struct ctx_arena_block *nb = malloc(sizeof(*nb) + size);
		if (!nb)
			return NULL;
		nb->size = size;
		nb->used = 0;
		/* New blocks go second so the first, reused one stays first. */
		if (b) {
			nb->next = b->next;
			b->next = nb;
		} else {
			nb->next = NULL;
			c->arena = nb;
		}
		b = nb;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

static uint64_t key_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static struct ctx_entry *slot_for(struct ctx_entry *tab, size_t cap, uint64_t h, const char *key,
				  size_t len)
{
	size_t i = h & (cap - 1);
	for (;; i = (i + 1) & (cap - 1)) {
		struct ctx_entry *e = &tab[i];
		if (!e->used)
			return e;
		if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
			return e;
	}
}

static int grow_entries(struct rm_ctx *c)
{
	size_t cap = c->cap_entries * 2;
	struct ctx_entry *tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < c->cap_entries; i++) {
		struct ctx_entry *e = &c->entries[i];
		if (e->used)
			*slot_for(tab, cap, e->hash, e->key, e->key_len) = *e;
	}
	free(c->entries);
	c->entries = tab;
	c->cap_entries = cap;
	return 0;
}

/* The entry for `key`, read through from the shard on first sight. */
static int lookup(struct rm_ctx *c, const char *key, size_t len, struct ctx_entry **out)
{
	if (len == 0 || len > 255)
		return -EINVAL;
	uint64_t h = key_hash(key, len);
	struct ctx_entry *e = slot_for(c->entries, c->cap_entries, h, key, len);
	if (e->used) {
		*out = e;
		return 0;
	}
	if ((c->n_entries + 1) * 4 > c->cap_entries * 3) {
		if (grow_entries(c) != 0)
			return -ENOMEM;
		e = slot_for(c->entries, c->cap_entries, h, key, len);
	}
	struct store_val v;
	int rc = store_state_get(c->shard_txn, key, len, &v);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	char *k = arena_alloc(c, len);
	if (!k)
		return -ENOMEM;
	memcpy(k, key, len);
	*e = (struct ctx_entry){.hash = h,
				.key = k,
				.key_len = (uint32_t)len,
				.used = 1,
				.present = rc == 0,
				.val = rc == 0 ? v.data : NULL,
				.val_len = rc == 0 ? v.len : 0};
	c->n_entries++;
	*out = e;
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

int rm_state_put(rm_ctx *c, const char *key, size_t key_len, const void *val, size_t val_len)
{
	struct ctx_entry *e;
	int rc = lookup(c, key, key_len, &e);
	if (rc)
		return c->failed = rc;
	char *copy = arena_alloc(c, val_len ? val_len : 1);
	if (!copy)
		return c->failed = -ENOMEM;
	memcpy(copy, val, val_len);
	e->val = copy;
	e->val_len = val_len;
	e->present = 1;
	e->dirty = 1;
	return 0;
}

int rm_state_del(rm_ctx *c, const char *key, size_t key_len)
{
	struct ctx_entry *e;
	int rc = lookup(c, key, key_len, &e);
	if (rc)
		return c->failed = rc;
	if (e->present)
		e->dirty = 1;
	e->present = 0;
	e->val = NULL;
	e->val_len = 0;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct ctx_entry *x = *(const struct ctx_entry *const *)a;
	const struct ctx_entry *y = *(const struct ctx_entry *const *)b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int d = memcmp(x->key, y->key, n);
	if (d)
		return d;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

int ctx_write_back(struct rm_ctx *c)
{
	struct ctx_entry **dirty = malloc((c->n_entries + 1) * sizeof(*dirty));
	if (!dirty)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < c->cap_entries; i++)
		if (c->entries[i].used && c->entries[i].dirty)
			dirty[n++] = &c->entries[i];
	qsort(dirty, n, sizeof(*dirty), entry_cmp);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct ctx_entry *e = dirty[i];
		if (e->present)
			rc = store_state_put(c->shard_txn, e->key, e->key_len, e->val, e->val_len);
		else if ((rc = store_state_del(c->shard_txn, e->key, e->key_len)) == -ENOENT)
			rc = 0;
	}
	free(dirty);
	return rc;
}

int rm_table_get(rm_ctx *c, const char *table, const char *key, size_t key_len,
		 struct rm_value *val)
{
	struct store_val v;
	uint64_t t0 = read_begin(c);
	int rc = store_table_get(c->cfg_txn, table, key, key_len, &v);
	read_end(c, t0);
	if (rc == -ENOENT)
		return RM_NOTFOUND;
	if (rc)
		return c->failed = rc;
	val->data = v.data;
	val->len = v.len;
	return RM_FOUND;
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
}

size_t ctx_changed_count(const struct rm_ctx *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->cap_entries; i++)
		n += c->entries[i].used && c->entries[i].dirty;
	return n;
}

int ctx_changed_foreach(const struct rm_ctx *c, ctx_change_fn fn, void *arg)
{
	for (size_t i = 0; i < c->cap_entries; i++) {
		const struct ctx_entry *e = &c->entries[i];
		if (!e->used || !e->dirty)
			continue;
		int rc =
		    fn(arg, e->key, e->key_len, e->present ? e->val : NULL, e->val_len, e->present);
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
