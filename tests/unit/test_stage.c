/* test_stage.c - common/stage.c: stage accounting (time charged to the
 * stage a process is in, sampled stages taken out of the stage they ran
 * in), the latency stamps the worker looks its records up in, and the
 * space-saving heavy hitters (the hottest key of a skewed stream comes
 * first, in bounded memory). */
/* cmocka.h needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stage.h"

static void sleep_us(long us)
{
	struct timespec ts = {0, us * 1000};
	nanosleep(&ts, NULL);
}

/* Every nanosecond goes to the stage the timer was in. */
static void test_stage_charges(void **state)
{
	(void)state;
	struct stage_acct a;
	memset(&a, 0, sizeof(a));
	struct stage_timer t;
	stage_start(&t, &a, WRK_ST_OTHER);
	stage_enter(&t, WRK_ST_HANDLER);
	sleep_us(2000);
	stage_enter(&t, WRK_ST_WAIT);
	sleep_us(1000);
	/* The wait turns out to have been idle. */
	stage_relabel(&t, WRK_ST_IDLE);
	stage_enter(&t, WRK_ST_OTHER);
	assert_true(a.ns[WRK_ST_HANDLER] >= 2000000);
	assert_true(a.ns[WRK_ST_IDLE] >= 1000000);
	assert_int_equal(a.ns[WRK_ST_WAIT], 0);
}

/* Sampled reads come out of the handler's time, never below zero; the
 * supervisor's parse and partition out of its read. */
static void test_stage_carve(void **state)
{
	(void)state;
	struct stage_acct a;
	double s[STAGE_MAX];
	memset(&a, 0, sizeof(a));
	a.ns[WRK_ST_HANDLER] = 3000000000ull;
	a.ns[WRK_ST_READS] = 1000000000ull;
	a.ns[WRK_ST_COMMIT] = 1000000000ull;
	double total = stage_seconds(&a, 1, s);
	assert_true(s[WRK_ST_HANDLER] > 1.99 && s[WRK_ST_HANDLER] < 2.01);
	assert_true(s[WRK_ST_READS] > 0.99 && s[WRK_ST_READS] < 1.01);
	assert_true(total > 3.99 && total < 4.01);

	a.ns[WRK_ST_READS] = 5000000000ull; /* an estimate over the whole */
	total = stage_seconds(&a, 1, s);
	assert_true(s[WRK_ST_HANDLER] == 0);
	assert_true(s[WRK_ST_READS] > 2.99 && s[WRK_ST_READS] < 3.01);
	assert_true(total > 3.99 && total < 4.01);

	memset(&a, 0, sizeof(a));
	a.ns[SUP_ST_READ] = 4000000000ull;
	a.ns[SUP_ST_PARSE] = 1000000000ull;
	a.ns[SUP_ST_PARTITION] = 2000000000ull;
	total = stage_seconds(&a, 0, s);
	assert_true(s[SUP_ST_READ] > 0.99 && s[SUP_ST_READ] < 1.01);
	assert_true(total > 3.99 && total < 4.01);
	assert_string_equal(stage_name(0, SUP_ST_BACKPRESSURE), "backpressure");
	assert_string_equal(stage_name(1, WRK_ST_FSYNC), "fsync");
	assert_string_equal(stage_name(1, 99), "?");
}

/* One event in 64 or so is sampled, whatever the seqs look like. */
static void test_stage_sampled_rate(void **state)
{
	(void)state;
	unsigned n = 0, offsets = 0;
	for (uint64_t seq = 0; seq < 640000; seq++)
		n += stage_sampled(seq);
	for (uint64_t seq = 0; seq < 640000; seq++)
		offsets += stage_sampled(seq * 96); /* byte offsets of 96-byte lines */
	assert_true(n > 9000 && n < 11000);
	assert_true(offsets > 9000 && offsets < 11000);
}

/* A record is read at the earliest at the first stamp at or past its end. */
static void test_stamps(void **state)
{
	(void)state;
	static struct stage_stamps st;
	memset(&st, 0, sizeof(st));
	assert_int_equal(stage_read_ns(&st, 100), 0); /* no stamp yet */
	stage_stamp(&st, 100, 1000);
	stage_stamp(&st, 200, 2000);
	stage_stamp(&st, 300, 3000);
	assert_int_equal(stage_read_ns(&st, 50), 1000);
	assert_int_equal(stage_read_ns(&st, 100), 1000);
	assert_int_equal(stage_read_ns(&st, 101), 2000);
	assert_int_equal(stage_read_ns(&st, 300), 3000);
	assert_int_equal(stage_read_ns(&st, 400), 3000); /* past the newest: that one */

	/* Many more: the oldest are gone, and a record that old is unknown. */
	for (uint64_t i = 4; i < 4 + 2 * STAGE_STAMPS; i++)
		stage_stamp(&st, i * 100, i * 1000);
	assert_int_equal(stage_read_ns(&st, 150), 0);
	uint64_t last = 3 + 2 * STAGE_STAMPS;
	assert_int_equal(stage_read_ns(&st, last * 100 - 50), last * 1000);
}

/* A skewed stream over more keys than counters: the hottest comes first,
 * with its count (space-saving never undercounts a key it keeps), and the
 * published copy reads back the same. */
static void test_hot_keys(void **state)
{
	(void)state;
	static struct hot_table h;
	memset(&h, 0, sizeof(h));
	char key[32];
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int k;
		if (i % 10 < 3)
			k = 42; /* 30% */
		else if (i % 10 < 4)
			k = 7; /* 10% */
		else
			k = 100 + (int)(x % 5000); /* the rest, spread thin */
		int n = snprintf(key, sizeof(key), "acct%08d", k);
		hot_add(&h, key, (size_t)n, 1);
	}
	assert_true(h.used <= HOT_SLOTS);
	static struct hot_pub pub, out;
	hot_publish(&h, &pub);
	assert_int_equal(hot_read(&pub, &out), 0);
	assert_int_equal(out.n, HOT_SHOWN);
	assert_int_equal(out.total, 200000);
	assert_memory_equal(out.top[0].key, "acct00000042", 12);
	assert_int_equal(out.top[0].len, 12);
	assert_true(out.top[0].count >= 60000);
	assert_memory_equal(out.top[1].key, "acct00000007", 12);
	for (unsigned i = 1; i < out.n; i++)
		assert_true(out.top[i - 1].count >= out.top[i].count);

	/* A key longer than HOT_KEY_MAX is kept cut. */
	char long_key[100];
	memset(long_key, 'k', sizeof(long_key));
	memset(&h, 0, sizeof(h));
	hot_add(&h, long_key, sizeof(long_key), 5);
	hot_publish(&h, &pub);
	assert_int_equal(hot_read(&pub, &out), 0);
	assert_int_equal(out.top[0].len, HOT_KEY_MAX);
	assert_int_equal(out.top[0].count, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stage_charges),      cmocka_unit_test(test_stage_carve),
	    cmocka_unit_test(test_stage_sampled_rate), cmocka_unit_test(test_stamps),
	    cmocka_unit_test(test_hot_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
