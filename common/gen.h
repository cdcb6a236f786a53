/* gen.h - deterministic ledger data for demos, tests and benchmarks.
 *
 * The same parameters give the same events on every machine, whether they
 * come from the `generate` source inside ringmaster or from `ringctl gen
 * events` as a TSV file. Each event's seq is the byte offset its line has in
 * that TSV file, so a file run and a generate run produce byte-identical
 * output.
 *
 * Accounts are "acct%08u", 0..keys-1. Events pick an account uniformly
 * (skew = 0) or by a Zipf law of exponent `skew` over a fixed permutation of
 * the accounts (so the hot accounts are spread over partitions), and a type
 * and amount from a fixed mix that also yields a small share of rejections
 * (unknown type, amount out of range, insufficient funds).
 */
#ifndef RM_GEN_H
#define RM_GEN_H

#include <stddef.h>
#include <stdint.h>

#define GEN_KEY_MAX 32
#define GEN_PAYLOAD_MAX 64
#define GEN_KEYS_MAX 100000000ull /* "acct" + 8 digits */

struct gen_params {
	uint64_t events;
	uint64_t keys; /* 1..GEN_KEYS_MAX */
	uint64_t seed;
	double skew; /* 0 = uniform, else Zipf exponent (> 0) */
};

struct gen; /* opaque */

/* Returns NULL with errno set (EINVAL for bad params, ENOMEM). */
struct gen *gen_new(const struct gen_params *p);
void gen_free(struct gen *g);

/* The next event. Returns 1 and fills key/payload (not NUL-terminated) and
 * *seq, or 0 when `events` have been produced. */
int gen_next(struct gen *g, char key[GEN_KEY_MAX], size_t *key_len, char payload[GEN_PAYLOAD_MAX],
	     size_t *payload_len, uint64_t *seq);

/* Restart so that the next event is the first whose seq is >= `seq` (the
 * resume position of a restarted supervisor). */
void gen_seek(struct gen *g, uint64_t seq);

/* Events produced so far, and the total. */
uint64_t gen_produced(const struct gen *g);

/* One accounts.tsv row for account i ("acct00000007\tactive\t50000"),
 * NUL-terminated; returns its length, or 0 if it does not fit in `size`
 * (32 bytes always suffice). Deterministic in (seed, i). */
size_t gen_account_row(uint64_t seed, uint64_t i, char *buf, size_t size);

/* The rules table the generated events are made for (rules.tsv contents). */
const char *gen_rules_tsv(void);

#endif
