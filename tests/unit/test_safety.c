/* test_safety.c - common/safety.c: a file is opened once, at its resolved
 * path, and trusted only when it and every directory above it are root's or
 * ours and closed to others, a sticky directory excepted; whatever is not a
 * regular file is refused without blocking. */
/* cmocka.h needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safety.h"

static char dir[64];

static int setup(void **unused)
{
	(void)unused;
	snprintf(dir, sizeof(dir), "/tmp/test_safety.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **unused)
{
	char cmd[256];
	(void)unused;
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s; rm -rf %s", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *at(const char *name)
{
	static char buf[4][256];
	static int n;
	char *p = buf[n++ % 4];
	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

/* The descriptor reads the file the name led to. */
static void assert_reads(int fd, const char *want)
{
	char got[64] = "";
	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, sizeof(got) - 1), (ssize_t)strlen(want));
	assert_string_equal(got, want);
	close(fd);
}

static void test_safe_file(void **unused)
{
	char errs[1024] = "";
	(void)unused;
	put(at("ok.txt"), "ok");
	assert_reads(safety_open(at("ok.txt"), 1, NULL, errs, sizeof(errs)), "ok");
	assert_string_equal(errs, "");
	int fd = safety_open(at("ok.txt"), 1, NULL, errs, sizeof(errs));
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

/* A link is resolved once; the descriptor is the target's. */
static void test_link_resolved(void **unused)
{
	char errs[1024] = "";
	(void)unused;
	put(at("target.txt"), "target");
	assert_int_equal(symlink("target.txt", at("link.txt")), 0);
	assert_reads(safety_open(at("link.txt"), 1, NULL, errs, sizeof(errs)), "target");
}

static void test_unsafe_file(void **unused)
{
	char errs[1024] = "", want[512];
	(void)unused;
	put(at("ww.txt"), "x");
	assert_int_equal(chmod(at("ww.txt"), 0666), 0);
	assert_int_equal(safety_open(at("ww.txt"), 1, "P: ", errs, sizeof(errs)), -EPERM);
	snprintf(want, sizeof(want),
		 "P: %s is writable by group or others (mode 0666): run chmod go-w %s, or set "
		 "[ringmaster] strict_modes = no\n",
		 at("ww.txt"), at("ww.txt"));
	assert_string_equal(errs, want);
	errs[0] = '\0';
	assert_reads(safety_open(at("ww.txt"), 0, NULL, errs, sizeof(errs)), "x");
}

/* A directory others can write, above the file: unsafe unless sticky. */
static void test_directory_above(void **unused)
{
	char errs[1024] = "", want[512];
	(void)unused;
	assert_int_equal(mkdir(at("open"), 0755), 0);
	assert_int_equal(chmod(at("open"), 0777), 0);
	assert_int_equal(mkdir(at("open/sub"), 0755), 0);
	put(at("open/sub/f.txt"), "f");
	assert_int_equal(safety_open(at("open/sub/f.txt"), 1, NULL, errs, sizeof(errs)), -EPERM);
	snprintf(want, sizeof(want),
		 "%s (a directory above %s) is writable by group or others (mode 0777): run "
		 "chmod go-w %s, or set [ringmaster] strict_modes = no\n",
		 at("open"), at("open/sub/f.txt"), at("open"));
	assert_string_equal(errs, want);
	/* sticky and ours (or root's), like /tmp: no one else can rename f.txt */
	assert_int_equal(chmod(at("open"), 01777), 0);
	errs[0] = '\0';
	assert_reads(safety_open(at("open/sub/f.txt"), 1, NULL, errs, sizeof(errs)), "f");
	assert_string_equal(errs, "");
	/* sticky helps a directory only: a file others can write is refused */
	assert_int_equal(chmod(at("open/sub"), 01777), 0);
	assert_reads(safety_open(at("open/sub/f.txt"), 1, NULL, errs, sizeof(errs)), "f");
	assert_int_equal(chmod(at("open/sub/f.txt"), 01666), 0);
	assert_int_equal(safety_open(at("open/sub/f.txt"), 1, NULL, errs, sizeof(errs)), -EPERM);
}

static void test_not_regular(void **unused)
{
	char errs[1024] = "", want[512];
	(void)unused;
	assert_int_equal(mkfifo(at("fifo"), 0600), 0);
	/* no writer: an open without O_NONBLOCK would block here */
	assert_int_equal(safety_open(at("fifo"), 1, NULL, errs, sizeof(errs)), -EINVAL);
	snprintf(want, sizeof(want), "%s is not a regular file\n", at("fifo"));
	assert_string_equal(errs, want);
	errs[0] = '\0';
	assert_int_equal(safety_open(dir, 0, NULL, errs, sizeof(errs)), -EINVAL);
}

static void test_missing(void **unused)
{
	char errs[1024] = "", want[512];
	(void)unused;
	assert_int_equal(safety_open(at("nope.so"), 1, "P: ", errs, sizeof(errs)), -ENOENT);
	snprintf(want, sizeof(want), "P: %s: No such file or directory\n", at("nope.so"));
	assert_string_equal(errs, want);
}

/* Messages that do not fit are cut, never overrun. */
static void test_small_buffer(void **unused)
{
	char errs[16] = "";
	(void)unused;
	assert_int_equal(safety_open(at("nope.so"), 1, "P: ", errs, sizeof(errs)), -ENOENT);
	assert_true(strlen(errs) < sizeof(errs));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_safe_file),	 cmocka_unit_test(test_link_resolved),
	    cmocka_unit_test(test_unsafe_file),	 cmocka_unit_test(test_directory_above),
	    cmocka_unit_test(test_not_regular),	 cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_small_buffer),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
