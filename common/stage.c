/* stage.c - see stage.h. */
#include "stage.h"

#include <string.h>

static const char *const sup_names[SUP_STAGES] = {
    "read", "parse", "partition", "backpressure", "idle", "other",
};

static const char *const wrk_names[WRK_STAGES] = {
    "wait", "handler", "reads", "commit", "fsync", "output", "idle", "other",
};

void stage_start(struct stage_timer *t, struct stage_acct *acct, unsigned stage)
{
	t->acct = acct;
	t->cur = stage;
	t->since = shm_now_ns();
}

uint64_t stage_clock_cost(void)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 16; i++) {
		uint64_t a = shm_now_ns(), b = shm_now_ns();
		if (b - a < best)
			best = b - a;
	}
	return best;
}

const char *stage_name(int worker, unsigned stage)
{
	if (stage >= stage_count(worker))
		return "?";
	return worker ? wrk_names[stage] : sup_names[stage];
}

unsigned stage_count(int worker)
{
	return worker ? WRK_STAGES : SUP_STAGES;
}

/* Take the sampled `part` out of `whole`, as far as there is. */
static void carve(double *whole, double *part)
{
	if (*part > *whole)
		*part = *whole;
	*whole -= *part;
}

double stage_seconds(const struct stage_acct *a, int worker, double out[STAGE_MAX])
{
	double total = 0;
	unsigned n = stage_count(worker);
	for (unsigned i = 0; i < STAGE_MAX; i++)
		out[i] =
		    i < n ? (double)atomic_load_explicit(&a->ns[i], memory_order_relaxed) / 1e9 : 0;
	if (worker) {
		carve(&out[WRK_ST_HANDLER], &out[WRK_ST_READS]);
	} else {
		carve(&out[SUP_ST_READ], &out[SUP_ST_PARSE]);
		carve(&out[SUP_ST_READ], &out[SUP_ST_PARTITION]);
	}
	for (unsigned i = 0; i < n; i++)
		total += out[i];
	return total;
}

/* ---- latency stamps ---- */

void stage_stamp(struct stage_stamps *st, uint64_t pos, uint64_t ns)
{
	uint64_t n = atomic_load_explicit(&st->n, memory_order_relaxed);
	struct stage_stamp *s = &st->s[n % STAGE_STAMPS];
	atomic_store_explicit(&s->pos, pos, memory_order_relaxed);
	atomic_store_explicit(&s->ns, ns, memory_order_relaxed);
	atomic_store_explicit(&st->n, n + 1, memory_order_release);
}

uint64_t stage_read_ns(const struct stage_stamps *st, uint64_t end)
{
	uint64_t n = atomic_load_explicit(&st->n, memory_order_acquire);
	if (n == 0)
		return 0;
	/* Leave a margin: the producer may be writing the oldest ones now. */
	uint64_t keep = STAGE_STAMPS - 16;
	uint64_t lo = n > keep ? n - keep : 0, hi = n - 1;
#define POS(i) atomic_load_explicit(&st->s[(i) % STAGE_STAMPS].pos, memory_order_relaxed)
	if (POS(lo) >= end && lo > 0)
		return 0; /* older than what is kept */
	/* Positions grow: the first stamp at or past `end` covers it. */
	if (POS(hi) >= end)
		while (lo < hi) {
			uint64_t mid = lo + (hi - lo) / 2;
			if (POS(mid) >= end)
				hi = mid;
			else
				lo = mid + 1;
		}
#undef POS
	uint64_t ns = atomic_load_explicit(&st->s[hi % STAGE_STAMPS].ns, memory_order_relaxed);
	/* Overwritten while we looked: too far behind to say. */
	if (atomic_load_explicit(&st->n, memory_order_acquire) - n >= 16)
		return 0;
	return ns;
}

/* ---- heavy hitters ---- */

static uint64_t key_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
	return h;
}

void hot_add(struct hot_table *h, const char *key, size_t len, uint64_t weight)
{
	if (len > HOT_KEY_MAX)
		len = HOT_KEY_MAX;
	uint64_t hash = key_hash(key, len);
	unsigned min = 0;
	h->total += weight;
	for (unsigned i = 0; i < h->used; i++) {
		struct hot_slot *s = &h->slot[i];
		if (s->hash == hash && s->len == len && memcmp(s->key, key, len) == 0) {
			s->count += weight;
			return;
		}
		if (s->count < h->slot[min].count)
			min = i;
	}
	struct hot_slot *s;
	if (h->used < HOT_SLOTS) {
		s = &h->slot[h->used++];
		s->count = s->error = 0;
	} else {
		s = &h->slot[min];
		s->error = s->count; /* what it may have had before it came in */
	}
	s->count += weight;
	s->hash = hash;
	s->len = (uint8_t)len;
	memcpy(s->key, key, len);
}

void hot_publish(const struct hot_table *h, struct hot_pub *pub)
{
	/* Pick the HOT_SHOWN heaviest, heaviest first (a partial selection
	 * sort: HOT_SLOTS is small and this runs a few times a second). */
	unsigned idx[HOT_SLOTS], n = h->used;
	for (unsigned i = 0; i < n; i++)
		idx[i] = i;
	unsigned shown = n < HOT_SHOWN ? n : HOT_SHOWN;
	for (unsigned i = 0; i < shown; i++) {
		unsigned best = i;
		for (unsigned j = i + 1; j < n; j++)
			if (h->slot[idx[j]].count > h->slot[idx[best]].count)
				best = j;
		unsigned t = idx[i];
		idx[i] = idx[best];
		idx[best] = t;
	}
	uint32_t seq = atomic_load_explicit(&pub->seq, memory_order_relaxed);
	atomic_store_explicit(&pub->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	pub->n = shown;
	pub->total = h->total;
	for (unsigned i = 0; i < shown; i++) {
		const struct hot_slot *s = &h->slot[idx[i]];
		pub->top[i].count = s->count;
		pub->top[i].len = s->len;
		memcpy(pub->top[i].key, s->key, s->len);
	}
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&pub->seq, seq + 2, memory_order_relaxed);
}

int hot_read(const struct hot_pub *pub, struct hot_pub *out)
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t a = atomic_load_explicit(&pub->seq, memory_order_acquire);
		if (a & 1)
			continue;
		out->n = pub->n;
		out->total = pub->total;
		memcpy(out->top, pub->top, sizeof(out->top));
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&pub->seq, memory_order_relaxed) == a) {
			if (out->n > HOT_SHOWN)
				out->n = HOT_SHOWN;
			return 0;
		}
	}
	return -1;
}
