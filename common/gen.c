/* gen.c - deterministic ledger events, accounts and rules for demos, tests
 * and benchmarks (see gen.h for the contract).
 *
 * Randomness is xoshiro256** seeded through splitmix64, both written here so
 * that the stream does not depend on the C library. Each event draws three
 * 64-bit numbers: the account, the kind of event, the amount. Keys and
 * amounts are formatted by hand because gen_next is on the hot path of the
 * `generate` source and of `ringctl gen events` (tens of millions a second).
 *
 * Zipf ranks come from a precomputed CDF, stored as 64-bit fixed-point
 * thresholds and searched through a guide table, so a draw costs a couple of
 * cache lines even with millions of keys. The CDF is built with pow(), so the
 * hot-key order is reproducible wherever libm's pow gives the same doubles
 * (every glibc on x86-64 and arm64 we know of); uniform runs use no floating
 * point at all.
 */
#include "gen.h"

#include "bytes.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Accounts are "acct" + 8 digits, so at most GEN_KEYS_MAX = 10^8 of them. */
#define GEN_KEY_LEN 12

/* The guide table has at most 2^22 buckets (16 MiB of uint32_t). */
#define GEN_GUIDE_BITS_MAX 22

/* The rules the events are made for, and how the generator draws each type:
 * name, sign, max_amount, fee_bps (the rules.tsv row), then how often the
 * type is drawn (per cent) and the largest valid amount drawn for it. One
 * list yields both the rules.tsv text and the generator's table.
 *
 * Debits slightly outweigh credits on average (about 105k against 103k cents
 * an event) so balances hover near their floor and a steady share of debits
 * is refused for insufficient funds, instead of every account drifting rich
 * and the demo never showing one. With etc/accounts.tsv and 10000 keys that
 * is about 9% of events over the first million, settling near 2% later. */
#define GEN_RULES(X)                                                                               \
	X(deposit, +1, 1000000, 0, 25, 500000)                                                     \
	X(withdrawal, -1, 500000, 10, 16, 500000)                                                  \
	X(card_payment, -1, 200000, 0, 35, 200000)                                                 \
	X(transfer_in, +1, 5000000, 0, 8, 1000000)                                                 \
	X(transfer_out, -1, 5000000, 25, 12, 500000)                                               \
	X(refund, +1, 200000, 0, 4, 50000)

#define GEN_RULE_TSV(name, sign, max, fee, weight, draw) #name "\t" #sign "\t" #max "\t" #fee "\n"

struct gen_type {
	const char *name;
	size_t name_len;
	uint64_t max_amount; /* the rule's limit */
	unsigned weight;     /* per cent */
	uint64_t draw_max;   /* valid amounts are drawn from 1..draw_max */
};

#define GEN_TYPE(name, sign, max, fee, weight, draw) {#name, sizeof(#name) - 1, max, weight, draw},

static const struct gen_type gen_types[] = {GEN_RULES(GEN_TYPE)};
#define GEN_NTYPES (sizeof(gen_types) / sizeof(gen_types[0]))

/* Out of 10000 events: an unknown type, and an amount out of range. */
#define GEN_UNKNOWN_BPS 50
#define GEN_OUT_OF_RANGE_BPS 50
#define GEN_UNKNOWN_TYPE "chargeback"
#define GEN_UNKNOWN_DRAW_MAX 100000

struct gen {
	struct gen_params p;
	uint64_t rng[4];   /* xoshiro256** state */
	uint64_t produced; /* events returned so far */
	uint64_t offset;   /* seq of the next event */
	/* Zipf only (skew > 0): */
	uint64_t *thr;	 /* thr[r]: CDF of rank r in 2^-64 units; last = max */
	uint32_t *guide; /* guide[b]: first rank whose thr >= bucket b's start */
	unsigned guide_bits;
	uint64_t perm_mul; /* rank -> account: (rank * perm_mul + perm_off) % keys */
	uint64_t perm_off;
};

/* ---- random numbers ------------------------------------------------------ */

static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(uint64_t s[4])
{
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* A number in 0..n-1 from a 64-bit draw: the high half of r * n. The bias is
 * at most n / 2^64, far below anything a demo can see, and it costs one
 * multiply instead of a division. */
static inline uint64_t below(uint64_t r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

static void rng_seed(struct gen *g)
{
	uint64_t x = g->p.seed;

	for (int i = 0; i < 4; i++)
		g->rng[i] = splitmix64(&x);
}

/* ---- Zipf table ---------------------------------------------------------- */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* A multiplier near keys / golden ratio and coprime to keys, so consecutive
 * ranks land far apart; the offset comes from the seed. */
static void perm_init(struct gen *g)
{
	uint64_t keys = g->p.keys, x = g->p.seed ^ 0x5eed5eed5eed5eedull;
	uint64_t mul = (uint64_t)((double)keys * 0.6180339887498949) | 1;

	while (gcd64(mul % keys, keys) != 1)
		mul++;
	g->perm_mul = mul % keys;
	g->perm_off = splitmix64(&x) % keys;
}

/* Build the CDF thresholds: thr[r] = floor(2^64 * P(rank <= r)), with the
 * last one pinned to UINT64_MAX so every draw finds a rank. */
static int zipf_thresholds(struct gen *g)
{
	uint64_t keys = g->p.keys;
	double total = 0, acc = 0;

	g->thr = malloc(keys * sizeof(*g->thr));
	if (!g->thr)
		return -1;
	for (uint64_t r = 0; r < keys; r++)
		total += pow((double)(r + 1), -g->p.skew);
	for (uint64_t r = 0; r < keys; r++) {
		acc += pow((double)(r + 1), -g->p.skew);
		double f = acc / total * 18446744073709551616.0;

		g->thr[r] = f >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)f;
	}
	g->thr[keys - 1] = UINT64_MAX;
	return 0;
}

/* Guide table: bucket b covers draws whose top guide_bits bits equal b, and
 * records the first rank that such a draw can map to. */
static int zipf_guide(struct gen *g)
{
	unsigned bits = 1;

	while (bits < GEN_GUIDE_BITS_MAX && (1ull << bits) < g->p.keys)
		bits++;
	g->guide_bits = bits;
	g->guide = malloc(((size_t)1 << bits) * sizeof(*g->guide) + sizeof(*g->guide));
	if (!g->guide)
		return -1;

	uint64_t r = 0;

	for (uint64_t b = 0; b < (1ull << bits); b++) {
		uint64_t start = b << (64 - bits);

		while (g->thr[r] < start)
			r++;
		g->guide[b] = (uint32_t)r;
	}
	g->guide[(size_t)1 << bits] = (uint32_t)(g->p.keys - 1);
	return 0;
}

/* The first rank whose threshold is >= u: between the guide entries of u's
 * bucket and the next, by binary search. */
static inline uint64_t zipf_rank(const struct gen *g, uint64_t u)
{
	uint64_t b = u >> (64 - g->guide_bits);
	uint64_t lo = g->guide[b], hi = g->guide[b + 1];

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (g->thr[mid] >= u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ---- lifecycle ----------------------------------------------------------- */

static bool params_ok(const struct gen_params *p)
{
	return p && p->keys >= 1 && p->keys <= GEN_KEYS_MAX && isfinite(p->skew) && p->skew >= 0;
}

struct gen *gen_new(const struct gen_params *p)
{
	if (!params_ok(p)) {
		errno = EINVAL;
		return NULL;
	}
	struct gen *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->p = *p;
	rng_seed(g);
	if (p->skew > 0) {
		perm_init(g);
		if (zipf_thresholds(g) < 0 || zipf_guide(g) < 0) {
			gen_free(g);
			errno = ENOMEM;
			return NULL;
		}
	}
	return g;
}

void gen_free(struct gen *g)
{
	if (!g)
		return;
	free(g->thr);
	free(g->guide);
	free(g);
}

uint64_t gen_produced(const struct gen *g)
{
	return g->produced;
}

/* ---- events -------------------------------------------------------------- */

/* Write v in decimal at p; returns the length. */
static inline size_t put_u64(char *p, uint64_t v)
{
	return dec_u64(p, v);
}

/* "acct" and exactly eight digits (idx < 10^8). */
static inline void put_key(char *p, uint64_t idx)
{
	memcpy(p, "acct", 4);
	dec_fixed(p + 4, idx, GEN_KEY_LEN - 4);
}

static inline uint64_t draw_account(struct gen *g)
{
	uint64_t r = rng_next(g->rng);

	if (g->thr == NULL)
		return below(r, g->p.keys);
	uint64_t rank = zipf_rank(g, r);

	return (rank * g->perm_mul + g->perm_off) % g->p.keys;
}

static inline const struct gen_type *pick_type(uint64_t r)
{
	unsigned pct = (unsigned)below(r, 100);
	size_t i = 0;

	while (i < GEN_NTYPES - 1 && pct >= gen_types[i].weight) {
		pct -= gen_types[i].weight;
		i++;
	}
	return &gen_types[i];
}

/* Type and amount: mostly valid, with the rejection shares of gen.h. The
 * kind uses the low 32 bits of one draw and the type the high 32. */
static size_t make_payload(struct gen *g, char *out)
{
	uint64_t kind = rng_next(g->rng), ra = rng_next(g->rng);
	unsigned bps = (unsigned)below(kind << 32, 10000);
	const char *name;
	size_t name_len;
	uint64_t amount;

	if (bps < GEN_UNKNOWN_BPS) {
		name = GEN_UNKNOWN_TYPE;
		name_len = sizeof(GEN_UNKNOWN_TYPE) - 1;
		amount = 1 + below(ra, GEN_UNKNOWN_DRAW_MAX);
	} else {
		const struct gen_type *t = pick_type(kind & 0xffffffff00000000ull);

		name = t->name;
		name_len = t->name_len;
		if (bps < GEN_UNKNOWN_BPS + GEN_OUT_OF_RANGE_BPS)
			/* Zero half the time, else just over to twice the max. */
			amount = (ra & 1) ? t->max_amount + 1 + below(ra, t->max_amount) : 0;
		else
			amount = 1 + below(ra, t->draw_max);
	}
	bytes_copy(out, name, name_len);
	out[name_len] = '\t';
	return name_len + 1 + put_u64(out + name_len + 1, amount);
}

int gen_next(struct gen *g, char key[GEN_KEY_MAX], size_t *key_len, char payload[GEN_PAYLOAD_MAX],
	     size_t *payload_len, uint64_t *seq)
{
	if (g->produced >= g->p.events)
		return 0;
	put_key(key, draw_account(g));
	*key_len = GEN_KEY_LEN;
	*payload_len = make_payload(g, payload);
	*seq = g->offset;
	/* key TAB payload NEWLINE: where the next line starts in the TSV. */
	g->offset += GEN_KEY_LEN + 1 + *payload_len + 1;
	g->produced++;
	return 1;
}

/* Forward seeks continue from here; backward ones replay from the start.
 * Replay runs at generator speed, so even a deep resume takes well under a
 * second per ten million events. */
void gen_seek(struct gen *g, uint64_t seq)
{
	char key[GEN_KEY_MAX], payload[GEN_PAYLOAD_MAX];
	size_t kl, pl;
	uint64_t s;

	if (seq < g->offset) {
		rng_seed(g);
		g->produced = 0;
		g->offset = 0;
	}
	while (g->produced < g->p.events && g->offset < seq)
		gen_next(g, key, &kl, payload, &pl, &s);
}

/* ---- accounts and rules -------------------------------------------------- */

/* About 2% frozen; overdraft 0 for 60%, 10000 for 30%, 50000 for 10%. */
size_t gen_account_row(uint64_t seed, uint64_t i, char *buf, size_t size)
{
	uint64_t x = seed ^ 0xacc0acc0acc0acc0ull, h;

	splitmix64(&x);
	x ^= i;
	h = splitmix64(&x);

	unsigned status = (unsigned)(h % 10000), od = (unsigned)((h >> 32) % 10);
	unsigned long overdraft = od < 6 ? 0 : od < 9 ? 10000 : 50000;
	int n = snprintf(buf, size, "acct%08llu\t%s\t%lu", (unsigned long long)i,
			 status < 200 ? "frozen" : "active", overdraft);

	/* 0 when it does not fit (a row is at most 31 bytes for i < 10^8). */
	if (n < 0 || (size_t)n >= size)
		return 0;
	return (size_t)n;
}

const char *gen_rules_tsv(void)
{
	return GEN_RULES(GEN_RULE_TSV);
}
