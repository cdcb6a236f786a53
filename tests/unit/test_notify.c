/* test_notify.c - notify_send speaks systemd's datagram protocol to
 * $NOTIFY_SOCKET, and does nothing without it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static void test_sends_datagram(void **state)
{
	(void)state;
	char dir[] = "/tmp/notify-test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/notify.sock", dir);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);

	setenv("NOTIFY_SOCKET", path, 1);
	notify_send("READY=1\nSTATUS=running, %u workers", 4u);
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=running, 4 workers");

	unsetenv("NOTIFY_SOCKET");
	notify_send("STOPPING=1");
	assert_true(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0);
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void test_bad_socket_is_ignored(void **state)
{
	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	notify_send("READY=1"); /* must not crash or block */
	setenv("NOTIFY_SOCKET", "/nonexistent/dir/sock", 1);
	notify_send("READY=1");
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sends_datagram),
	    cmocka_unit_test(test_bad_socket_is_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
