/* test_shm.c - common/shm.c: the log2 histograms the worker fills and the
 * control socket reads percentiles from (bucket edges at 0, 1, powers of
 * two and past the last bucket; quantiles read back as bucket upper
 * bounds), the cap on outcome names, and the layout of the mapping. */
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
#include <string.h>

#include "shm.h"

/* The bucket shm_hist_add put one `value` in (exactly one bucket moved). */
static unsigned bucket_of(uint64_t value)
{
	_Atomic uint64_t hist[SHM_HIST_BUCKETS] = {0};
	unsigned found = SHM_HIST_BUCKETS;

	shm_hist_add(hist, value);
	for (unsigned b = 0; b < SHM_HIST_BUCKETS; b++) {
		if (hist[b] == 0)
			continue;
		assert_int_equal(hist[b], 1);
		assert_int_equal(found, SHM_HIST_BUCKETS);
		found = b;
	}
	assert_true(found < SHM_HIST_BUCKETS);
	return found;
}

/* Bucket 0 holds 0; bucket i > 0 holds [2^(i-1), 2^i); the last one also
 * everything larger. */
static void test_hist_buckets(void **state)
{
	(void)state;
	assert_int_equal(bucket_of(0), 0);
	assert_int_equal(bucket_of(1), 1);
	assert_int_equal(bucket_of(2), 2);
	assert_int_equal(bucket_of(3), 2);
	for (unsigned k = 1; k < SHM_HIST_BUCKETS - 1; k++) {
		uint64_t p = 1ull << k;
		assert_int_equal(bucket_of(p - 1), k);
		assert_int_equal(bucket_of(p), k + 1);
		assert_int_equal(bucket_of(p + 1), k + 1);
	}
	/* 2^38 is the last edge; the last bucket takes the rest */
	assert_int_equal(bucket_of((1ull << 38) - 1), 38);
	assert_int_equal(bucket_of(1ull << 38), SHM_HIST_BUCKETS - 1);
	assert_int_equal(bucket_of(1ull << 39), SHM_HIST_BUCKETS - 1);
	assert_int_equal(bucket_of(1ull << 63), SHM_HIST_BUCKETS - 1);
	assert_int_equal(bucket_of(UINT64_MAX), SHM_HIST_BUCKETS - 1);
}

/* A quantile is the upper bound of the bucket where the running count
 * reaches q of the total (at least the first value): 2^i - 1 for bucket
 * i, 0 for bucket 0, and 0 for an empty histogram. */
static void test_hist_quantiles(void **state)
{
	_Atomic uint64_t hist[SHM_HIST_BUCKETS] = {0};

	(void)state;
	assert_int_equal(shm_hist_quantile(hist, 0.5), 0);
	assert_int_equal(shm_hist_quantile(hist, 0.99), 0);

	shm_hist_add(hist, 0);
	assert_int_equal(shm_hist_quantile(hist, 0.0), 0);
	assert_int_equal(shm_hist_quantile(hist, 1.0), 0);

	memset(hist, 0, sizeof(hist));
	shm_hist_add(hist, 5); /* [4, 8) */
	assert_int_equal(shm_hist_quantile(hist, 0.0), 7);
	assert_int_equal(shm_hist_quantile(hist, 0.5), 7);
	assert_int_equal(shm_hist_quantile(hist, 1.0), 7);

	/* 90 batches of 1 event, 9 of 1000, one of 100000 */
	memset(hist, 0, sizeof(hist));
	for (int i = 0; i < 90; i++)
		shm_hist_add(hist, 1);
	for (int i = 0; i < 9; i++)
		shm_hist_add(hist, 1000);
	shm_hist_add(hist, 100000);
	assert_int_equal(shm_hist_quantile(hist, 0.0), 1);
	assert_int_equal(shm_hist_quantile(hist, 0.5), 1);
	assert_int_equal(shm_hist_quantile(hist, 0.9), 1);
	assert_int_equal(shm_hist_quantile(hist, 0.95), 1023);
	assert_int_equal(shm_hist_quantile(hist, 0.99), 1023);
	assert_int_equal(shm_hist_quantile(hist, 1.0), 131071);

	/* a value past the last edge reads back as the last bound, below it */
	memset(hist, 0, sizeof(hist));
	shm_hist_add(hist, UINT64_MAX);
	assert_int_equal(shm_hist_quantile(hist, 0.5), (1ull << (SHM_HIST_BUCKETS - 1)) - 1);
	/* more than the total asked for: the last bound too */
	assert_int_equal(shm_hist_quantile(hist, 2.0), (1ull << (SHM_HIST_BUCKETS - 1)) - 1);
}

/* Counting adds to the right bucket however many times. */
static void test_hist_counts_add_up(void **state)
{
	_Atomic uint64_t hist[SHM_HIST_BUCKETS] = {0};
	uint64_t total = 0;

	(void)state;
	for (uint64_t v = 0; v < 5000; v++)
		shm_hist_add(hist, v);
	assert_int_equal(hist[0], 1);
	assert_int_equal(hist[1], 1);
	assert_int_equal(hist[12], 2048);	 /* [2048, 4096) */
	assert_int_equal(hist[13], 5000 - 4096); /* [4096, 5000) */
	for (unsigned b = 0; b < SHM_HIST_BUCKETS; b++)
		total += hist[b];
	assert_int_equal(total, 5000);
	assert_int_equal(shm_hist_quantile(hist, 0.5), 4095);
}

/* The worker's side of the outcome table: 31 names, then "other" for
 * every later one; a name is known by its first 31 bytes. */
static void test_outcomes(void **state)
{
	static struct shm_worker w; /* static: its 128-byte alignment */
	char name[64];
	uint64_t sum = 0;

	(void)state;
	memset(&w, 0, sizeof(w));
	for (unsigned i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "name-%02u", i);
		shm_count_outcome(&w, name, i + 1);
	}
	assert_int_equal(w.n_outcomes, SHM_OUTCOMES);
	assert_string_equal(w.outcomes[0].name, "name-00");
	assert_string_equal(w.outcomes[30].name, "name-30");
	assert_int_equal(w.outcomes[30].count, 31);
	assert_string_equal(w.outcomes[SHM_OUTCOMES - 1].name, "other");
	assert_int_equal(w.outcomes[SHM_OUTCOMES - 1].count,
			 32 + 33 + 34 + 35 + 36 + 37 + 38 + 39 + 40);
	for (unsigned i = 0; i < SHM_OUTCOMES; i++)
		sum += w.outcomes[i].count;
	assert_int_equal(sum, 40 * 41 / 2);
	shm_count_outcome(&w, "name-07", 100);
	assert_int_equal(w.outcomes[7].count, 108);

	/* a long name is kept cut, and found again by its cut form */
	memset(&w, 0, sizeof(w));
	memset(name, 'x', sizeof(name));
	name[sizeof(name) - 1] = '\0';
	shm_count_outcome(&w, name, 1);
	shm_count_outcome(&w, name, 1);
	assert_int_equal(w.n_outcomes, 1);
	assert_int_equal(strlen(w.outcomes[0].name), SHM_OUTCOME_NAME - 1);
	assert_int_equal(w.outcomes[0].count, 2);
}

/* One status block and one ring per partition, in one mapping; the
 * status blocks start zeroed. */
static void test_create(void **state)
{
	struct shm s;

	(void)state;
	assert_int_equal(shm_create(&s, 0, 1 << 16), -EINVAL);
	assert_int_equal(shm_create(&s, 3, 1 << 16), 0);
	assert_int_equal(s.partitions, 3);
	for (unsigned p = 0; p < 3; p++) {
		assert_non_null(s.rings[p]);
		assert_true((char *)s.rings[p] >= (char *)s.base &&
			    (char *)s.rings[p] < (char *)s.base + s.size);
		assert_int_equal((uintptr_t)&s.workers[p] % 128, 0);
		assert_int_equal(s.workers[p].processed, 0);
		assert_int_equal(s.workers[p].n_outcomes, 0);
	}
	shm_destroy(&s);
	assert_null(s.base);
	assert_null(s.rings);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hist_buckets),
	    cmocka_unit_test(test_hist_quantiles),
	    cmocka_unit_test(test_hist_counts_add_up),
	    cmocka_unit_test(test_outcomes),
	    cmocka_unit_test(test_create),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
