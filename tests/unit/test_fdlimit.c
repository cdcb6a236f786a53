/* test_fdlimit.c - descriptor limits (fdlimit.h): the soft limit is raised
 * to the hard one, open descriptors are counted, and a process with none
 * left is told 0 free, not an error. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "fdlimit.h"

static void test_count_and_free(void **state)
{
	(void)state;
	long open_before = fdlimit_open_count(), free_before = fdlimit_free();
	assert_true(open_before >= 3);
	assert_true(free_before > 0);
	int fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fdlimit_open_count(), open_before + 1);
	assert_int_equal(fdlimit_free(), free_before - 1);
	close(fd);
	assert_int_equal(fdlimit_open_count(), open_before);
}

static void test_raise(void **state)
{
	(void)state;
	struct rlimit saved, rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 128)
		skip();
	rl = saved;
	rl.rlim_cur = 100;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	struct fd_limit l;
	assert_int_equal(fdlimit_raise(&l), 0);
	assert_int_equal(l.err, 0);
	assert_int_equal(l.before, 100);
	assert_int_equal(l.hard, saved.rlim_max);
	assert_true(l.soft > 100);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(rl.rlim_cur, l.soft);
	/* Raised already: nothing changes. */
	assert_int_equal(fdlimit_raise(&l), 0);
	assert_int_equal(l.before, l.soft);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

static void test_none_left(void **state)
{
	(void)state;
	struct rlimit saved, rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	/* The limit counts descriptor numbers: with it at the lowest free
	 * number, no new descriptor can be had. */
	int lowest = fcntl(0, F_DUPFD, 0);
	assert_true(lowest >= 0);
	close(lowest);
	rl = saved;
	rl.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(fdlimit_free(), 0);
	assert_int_equal(fdlimit_open_count(), -EMFILE);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
	assert_true(fdlimit_free() > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_count_and_free),
	    cmocka_unit_test(test_raise),
	    cmocka_unit_test(test_none_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
