/* test_stall.c - a worker blocked on something outside it: each slice of a
 * wait keeps the heartbeat fresh, for beat_max_ns at most; a stop request
 * (the flag, or a signal cutting a slice short) ends the wait after
 * grace_ns, at once with no grace; whole slices are counted per wait. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "stall.h"

#define MS 1000000ull

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void test_heartbeat(void **state)
{
	(void)state;
	struct stall s;
	_Atomic uint64_t heartbeat = 0;
	volatile sig_atomic_t stop = 0;
	stall_init(&s, 0, 0);
	stall_watch(&s, &heartbeat, &stop);
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	uint64_t first = heartbeat;
	assert_true(first > 0);
	sleep_ms(2);
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	assert_true(heartbeat > first);
}

static void test_stop_at_once(void **state)
{
	(void)state;
	struct stall s;
	volatile sig_atomic_t stop = 0;
	stall_init(&s, 0, 0);
	stall_watch(&s, NULL, &stop);
	assert_int_equal(stall_check(&s, STALL_SHORT), 0);
	stop = 1;
	assert_int_equal(stall_check(&s, STALL_SHORT), -EINTR);
}

/* Asked to stop, a wait goes on for grace_ns more, then gives up; a new
 * wait does not start the grace again. */
static void test_stop_after_grace(void **state)
{
	(void)state;
	struct stall s;
	volatile sig_atomic_t stop = 1;
	stall_init(&s, 500 * MS, 0);
	stall_say(&s, STALL_GIVE_UP, "test: giving up");
	stall_watch(&s, NULL, &stop);
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	stall_begin(&s);
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	sleep_ms(510);
	assert_int_equal(stall_check(&s, STALL_SLICE), -EINTR);
}

/* A signal that cuts a slice short is a stop request: no flag needed. */
static void test_interrupted(void **state)
{
	(void)state;
	struct stall s;
	stall_init(&s, 0, 0);
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	assert_int_equal(stall_check(&s, STALL_INTERRUPTED), -EINTR);
}

/* Past beat_max_ns into one wait the heartbeat stops; a new wait has it
 * again. */
static void test_beat_max(void **state)
{
	(void)state;
	struct stall s;
	_Atomic uint64_t heartbeat = 0;
	stall_init(&s, 0, 30 * MS);
	stall_say(&s, STALL_SILENT, "test: no more heartbeats");
	stall_watch(&s, &heartbeat, NULL);
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	assert_true(heartbeat > 0);
	sleep_ms(40);
	uint64_t before = heartbeat;
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	assert_true(heartbeat == before);
	assert_int_equal(s.silent, 2);
	stall_begin(&s);
	assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	assert_true(heartbeat > before);
}

/* Whole slices count toward the warning; short waits do not; a new wait
 * counts from 0. */
static void test_slices(void **state)
{
	(void)state;
	struct stall s;
	stall_init(&s, 0, 0);
	stall_say(&s, STALL_SLOW, "test: slow");
	for (int i = 0; i < STALL_WARN_SLICES + 1; i++)
		assert_int_equal(stall_check(&s, STALL_SLICE), 0);
	assert_int_equal(stall_check(&s, STALL_SHORT), 0);
	assert_int_equal(s.slices, STALL_WARN_SLICES + 1);
	stall_begin(&s);
	assert_int_equal(s.slices, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_heartbeat),	     cmocka_unit_test(test_stop_at_once),
	    cmocka_unit_test(test_stop_after_grace), cmocka_unit_test(test_interrupted),
	    cmocka_unit_test(test_beat_max),	     cmocka_unit_test(test_slices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
