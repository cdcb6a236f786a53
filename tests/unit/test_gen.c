/* test_gen.c - the generator is deterministic, its seqs are TSV byte
 * offsets, gen_seek resumes exactly, skew skews, and bad params are refused. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gen.h"

struct ev {
	char key[GEN_KEY_MAX];
	size_t key_len;
	char payload[GEN_PAYLOAD_MAX];
	size_t payload_len;
	uint64_t seq;
};

static int next(struct gen *g, struct ev *e)
{
	return gen_next(g, e->key, &e->key_len, e->payload, &e->payload_len, &e->seq);
}

static struct gen *new_gen(uint64_t events, uint64_t keys, uint64_t seed, double skew)
{
	struct gen_params p = {.events = events, .keys = keys, .seed = seed, .skew = skew};
	struct gen *g = gen_new(&p);

	assert_non_null(g);
	return g;
}

/* The events as the TSV file `ringctl gen events` writes; caller frees. */
static char *tsv_of(struct gen *g, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	struct ev e;

	assert_non_null(buf);
	while (next(g, &e)) {
		if (n + GEN_KEY_MAX + GEN_PAYLOAD_MAX + 2 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		memcpy(buf + n, e.key, e.key_len);
		buf[n + e.key_len] = '\t';
		memcpy(buf + n + e.key_len + 1, e.payload, e.payload_len);
		n += e.key_len + 1 + e.payload_len;
		buf[n++] = '\n';
	}
	*len = n;
	return buf;
}

static void test_deterministic(void **unused)
{
	(void)unused;
	for (int skewed = 0; skewed < 2; skewed++) {
		struct gen *a = new_gen(5000, 1000, 7, skewed ? 1.1 : 0);
		struct gen *b = new_gen(5000, 1000, 7, skewed ? 1.1 : 0);
		struct gen *c = new_gen(5000, 1000, 8, skewed ? 1.1 : 0);
		size_t la, lb, lc;
		char *ta = tsv_of(a, &la), *tb = tsv_of(b, &lb), *tc = tsv_of(c, &lc);

		assert_int_equal(la, lb);
		assert_memory_equal(ta, tb, la);
		assert_true(la != lc || memcmp(ta, tc, la) != 0);
		assert_int_equal(gen_produced(a), 5000);
		free(ta);
		free(tb);
		free(tc);
		gen_free(a);
		gen_free(b);
		gen_free(c);
	}
}

/* Each event's seq is where its line starts in the TSV; lines are well formed:
 * "acct" + 8 digits below keys, a tab, a type, a tab, digits. */
static void test_seq_is_byte_offset(void **unused)
{
	(void)unused;
	struct gen *g = new_gen(3000, 500, 1, 0.5), *h = new_gen(3000, 500, 1, 0.5);
	size_t len, i = 0;
	char *tsv = tsv_of(g, &len);
	struct ev e;

	while (next(h, &e)) {
		assert_int_equal(e.seq, i);
		assert_int_equal(e.key_len, 12);
		assert_memory_equal(tsv + i, e.key, e.key_len);
		assert_memory_equal(e.key, "acct", 4);
		assert_true(strtoul(e.key + 4, NULL, 10) < 500);

		const char *tab = memchr(e.payload, '\t', e.payload_len);

		assert_non_null(tab);
		assert_null(memchr(tab + 1, '\t', e.payload_len - (size_t)(tab + 1 - e.payload)));
		for (const char *p = tab + 1; p < e.payload + e.payload_len; p++)
			assert_true(*p >= '0' && *p <= '9');
		i += e.key_len + 1 + e.payload_len + 1;
		assert_int_equal(tsv[i - 1], '\n');
	}
	assert_int_equal(i, len);
	assert_int_equal(next(h, &e), 0);
	free(tsv);
	gen_free(g);
	gen_free(h);
}

/* Seeking to an event's seq, or to any byte inside the line before it, makes
 * that event the next one; backwards and forwards, and past the end. */
static void test_seek(void **unused)
{
	(void)unused;
	struct gen *g = new_gen(2000, 300, 3, 0.99), *ref = new_gen(2000, 300, 3, 0.99);
	struct ev all[2000], e;

	for (int i = 0; i < 2000; i++)
		assert_int_equal(next(ref, &all[i]), 1);

	static const int picks[] = {1500, 10, 0, 1999, 700, 701, 3};

	for (size_t k = 0; k < sizeof(picks) / sizeof(picks[0]); k++) {
		int i = picks[k];

		gen_seek(g, all[i].seq);
		assert_int_equal(gen_produced(g), i);
		assert_int_equal(next(g, &e), 1);
		assert_int_equal(e.seq, all[i].seq);
		assert_memory_equal(e.payload, all[i].payload, e.payload_len);
		assert_memory_equal(e.key, all[i].key, e.key_len);
		if (i > 0) {
			gen_seek(g, all[i - 1].seq + 1); /* mid-line: the next line */
			assert_int_equal(next(g, &e), 1);
			assert_int_equal(e.seq, all[i].seq);
		}
	}
	gen_seek(g, all[1999].seq + 1000);
	assert_int_equal(next(g, &e), 0);
	gen_seek(g, 0);
	assert_int_equal(next(g, &e), 1);
	assert_int_equal(e.seq, 0);
	assert_memory_equal(e.key, all[0].key, 12);
	gen_free(g);
	gen_free(ref);
}

/* Share of events that go to the most frequent key. */
static double top_share(double skew)
{
	enum { KEYS = 1000, EVENTS = 100000 };
	struct gen *g = new_gen(EVENTS, KEYS, 11, skew);
	unsigned *hits = calloc(KEYS, sizeof(*hits)), top = 0;
	struct ev e;

	assert_non_null(hits);
	while (next(g, &e)) {
		unsigned long k = strtoul(e.key + 4, NULL, 10);

		assert_true(k < KEYS);
		if (++hits[k] > top)
			top = hits[k];
	}
	free(hits);
	gen_free(g);
	return (double)top / EVENTS;
}

/* Uniform: the top key gets about 1/1000 (a little more by chance). Zipf 0.99
 * over 1000 keys: rank 1 gets 1/H where H = sum n^-0.99 ~ 7.7, i.e. ~13%. */
static void test_distribution(void **unused)
{
	(void)unused;
	double uni = top_share(0), zipf = top_share(0.99);

	assert_true(uni < 0.002);
	assert_true(zipf > 0.11 && zipf < 0.15);
}

/* The hot accounts are not simply acct00000000, acct00000001, ... */
static void test_hot_keys_permuted(void **unused)
{
	(void)unused;
	struct gen *g = new_gen(20000, 1000, 5, 1.2);
	unsigned hits[1000] = {0};
	struct ev e;

	while (next(g, &e))
		hits[strtoul(e.key + 4, NULL, 10)]++;
	unsigned best = 0;

	for (unsigned k = 1; k < 1000; k++)
		if (hits[k] > hits[best])
			best = k;
	assert_int_not_equal(best, 0);
	gen_free(g);
}

/* The mix: mostly the six rule types, about 0.5% "chargeback", about 0.5%
 * amounts out of range (0 or above the type's maximum). */
static void test_mix(void **unused)
{
	(void)unused;
	enum { EVENTS = 200000 };
	struct gen *g = new_gen(EVENTS, 100, 9, 0);
	unsigned unknown = 0, out_of_range = 0, withdrawals = 0;
	struct ev e;

	while (next(g, &e)) {
		char pl[GEN_PAYLOAD_MAX + 1];

		memcpy(pl, e.payload, e.payload_len);
		pl[e.payload_len] = 0;
		char *tab = strchr(pl, '\t');
		unsigned long long amount = strtoull(tab + 1, NULL, 10);

		*tab = 0;
		if (!strcmp(pl, "chargeback")) {
			unknown++;
			continue;
		}
		unsigned long long max = !strcmp(pl, "deposit")	       ? 1000000
					 : !strcmp(pl, "withdrawal")   ? 500000
					 : !strcmp(pl, "card_payment") ? 200000
					 : !strcmp(pl, "transfer_in")  ? 5000000
					 : !strcmp(pl, "transfer_out") ? 5000000
					 : !strcmp(pl, "refund")       ? 200000
								       : 0;
		assert_true(max > 0);
		if (amount == 0 || amount > max)
			out_of_range++;
		withdrawals += !strcmp(pl, "withdrawal");
	}
	assert_in_range(unknown, EVENTS / 200 * 8 / 10, EVENTS / 200 * 12 / 10);
	assert_in_range(out_of_range, EVENTS / 200 * 8 / 10, EVENTS / 200 * 12 / 10);
	assert_true(withdrawals > EVENTS / 10);
	gen_free(g);
}

static void test_bad_params(void **unused)
{
	(void)unused;
	struct gen_params bad[] = {
	    {.events = 10, .keys = 0, .seed = 1, .skew = 0},
	    {.events = 10, .keys = GEN_KEYS_MAX + 1, .seed = 1, .skew = 0},
	    {.events = 10, .keys = 10, .seed = 1, .skew = -0.5},
	    {.events = 10, .keys = 10, .seed = 1, .skew = NAN},
	    {.events = 10, .keys = 10, .seed = 1, .skew = INFINITY},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_null(gen_new(&bad[i]));
		assert_int_equal(errno, EINVAL);
	}
	assert_null(gen_new(NULL));

	/* Zero events is fine: an empty stream. One key is fine, skewed too. */
	struct gen *g = new_gen(0, 1, 1, 0), *one = new_gen(10, 1, 1, 2.0);
	struct ev e;

	assert_int_equal(next(g, &e), 0);
	while (next(one, &e))
		assert_memory_equal(e.key, "acct00000000", 12);
	gen_free(g);
	gen_free(one);
}

static void test_account_rows(void **unused)
{
	(void)unused;
	char a[64], b[64], small[8];
	unsigned frozen = 0, od[3] = {0};

	size_t len = gen_account_row(42, 7, a, sizeof(a));

	assert_int_equal(len, strlen(a));
	assert_memory_equal(a, "acct00000007\t", 13);
	for (uint64_t i = 0; i < 10000; i++) {
		size_t n = gen_account_row(42, i, a, sizeof(a));

		assert_int_equal(gen_account_row(42, i, b, sizeof(b)), n);
		assert_string_equal(a, b);

		char *status = strchr(a, '\t') + 1, *limit = strchr(status, '\t') + 1;

		assert_int_equal(limit - status - 1, 6); /* "active" or "frozen" */
		frozen += !strncmp(status, "frozen", 6);
		assert_true(!strncmp(status, "frozen\t", 7) || !strncmp(status, "active\t", 7));
		od[0] += !strcmp(limit, "0");
		od[1] += !strcmp(limit, "10000");
		od[2] += !strcmp(limit, "50000");
	}
	assert_in_range(frozen, 120, 300); /* ~2% */
	assert_int_equal(od[0] + od[1] + od[2], 10000);
	assert_true(od[0] > 0 && od[1] > 0 && od[2] > 0);
	assert_int_equal(gen_account_row(42, 7, small, sizeof(small)), 0);

	/* Another seed, other rows (at least one differs among the first 100). */
	int differ = 0;

	for (uint64_t i = 0; i < 100; i++) {
		gen_account_row(42, i, a, sizeof(a));
		gen_account_row(43, i, b, sizeof(b));
		differ += strcmp(a, b) != 0;
	}
	assert_true(differ > 0);
}

static void test_rules(void **unused)
{
	(void)unused;
	assert_string_equal(gen_rules_tsv(), "deposit\t+1\t1000000\t0\n"
					     "withdrawal\t-1\t500000\t10\n"
					     "card_payment\t-1\t200000\t0\n"
					     "transfer_in\t+1\t5000000\t0\n"
					     "transfer_out\t-1\t5000000\t25\n"
					     "refund\t+1\t200000\t0\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deterministic),
	    cmocka_unit_test(test_seq_is_byte_offset),
	    cmocka_unit_test(test_seek),
	    cmocka_unit_test(test_distribution),
	    cmocka_unit_test(test_hot_keys_permuted),
	    cmocka_unit_test(test_mix),
	    cmocka_unit_test(test_bad_params),
	    cmocka_unit_test(test_account_rows),
	    cmocka_unit_test(test_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
