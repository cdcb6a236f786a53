/* test_notify_watchdog.c - notify_watchdog_usec reads $WATCHDOG_USEC and
 * $WATCHDOG_PID as sd_watchdog_enabled() does, and clears them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "notify.h"

static void set_pid(long pid)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%ld", pid);
	setenv("WATCHDOG_PID", buf, 1);
}

static void test_unset_is_off(void **state)
{
	(void)state;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_watchdog_usec(), 0);
}

static void test_usec_without_pid(void **state)
{
	(void)state;
	setenv("WATCHDOG_USEC", "30000000", 1);
	unsetenv("WATCHDOG_PID");
	assert_int_equal(notify_watchdog_usec(), 30000000);
	assert_null(getenv("WATCHDOG_USEC")); /* cleared for the workers */
}

static void test_own_pid(void **state)
{
	(void)state;
	setenv("WATCHDOG_USEC", "500000", 1);
	set_pid((long)getpid());
	assert_int_equal(notify_watchdog_usec(), 500000);
	assert_null(getenv("WATCHDOG_PID"));
}

static void test_other_pid_is_off(void **state)
{
	(void)state;
	setenv("WATCHDOG_USEC", "500000", 1);
	set_pid((long)getpid() + 1);
	assert_int_equal(notify_watchdog_usec(), 0);
	assert_null(getenv("WATCHDOG_USEC"));
}

static void test_garbage_is_off(void **state)
{
	(void)state;
	const char *bad[] = {"", "0", "-5", "12x", "99999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("WATCHDOG_USEC", bad[i], 1);
		unsetenv("WATCHDOG_PID");
		assert_int_equal(notify_watchdog_usec(), 0);
	}
	setenv("WATCHDOG_USEC", "1000", 1);
	setenv("WATCHDOG_PID", "self", 1);
	assert_int_equal(notify_watchdog_usec(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unset_is_off),   cmocka_unit_test(test_usec_without_pid),
	    cmocka_unit_test(test_own_pid),	   cmocka_unit_test(test_other_pid_is_off),
	    cmocka_unit_test(test_garbage_is_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
