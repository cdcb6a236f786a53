/* test_safety.c - common/safety.c: a file is opened once, at its resolved
 * path, and trusted only when it and every directory above it are root's or
 * ours and closed to others, a sticky directory excepted; whatever is not a
 * regular file is refused without blocking; the checks of a loaded
 * configuration (its file and tables, its directories, the run directory)
 * and the messages that name the setting to change. */
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

#include "cfg.h"
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

/* ---- the checks of a loaded configuration ---- */

#define HOW_TO_RELAX "or set [ringmaster] strict_modes = no"

/* These tests each get a directory of their own (the names below are the
 * same in each), inside the group's. */
static char group_dir[64];

static int setup_own(void **unused)
{
	memcpy(group_dir, dir, sizeof(dir));
	return setup(unused);
}

static int teardown_own(void **unused)
{
	int rc = teardown(unused);
	memcpy(dir, group_dir, sizeof(dir));
	return rc;
}

/* Load dir/demo.ini (run, data and out below dir, one table). */
static void load_cfg(struct cfg *c)
{
	struct cfg_errors e = {0};

	put(at("demo.ini"), "[ringmaster]\n"
			    "run_dir = run\n"
			    "data_dir = data\n"
			    "[source]\n"
			    "path = -\n"
			    "[output]\n"
			    "dir = out\n"
			    "[table.rules]\n"
			    "path = rules.tsv\n");
	if (cfg_load(at("demo.ini"), NULL, 0, c, &e) != 0)
		fail_msg("cfg_load: %s", e.text ? e.text : "");
	assert_true(c->strict_modes);
	assert_string_equal(c->run_dir, at("run"));
}

/* The config file and each table file, with the table's path setting first
 * in its message; a missing table is the loader's to report. */
static void test_check_files(void **unused)
{
	char errs[2048] = "", want[2048];
	struct cfg c;

	(void)unused;
	load_cfg(&c);
	assert_int_equal(safety_check_files(&c, at("demo.ini"), errs, sizeof(errs)), 0);
	assert_string_equal(errs, "");
	put(at("rules.tsv"), "k\tv\n");
	assert_int_equal(safety_check_files(&c, at("demo.ini"), errs, sizeof(errs)), 0);
	assert_string_equal(errs, "");

	assert_int_equal(chmod(at("rules.tsv"), 0664), 0);
	assert_int_equal(chmod(at("demo.ini"), 0646), 0);
	assert_int_equal(safety_check_files(&c, at("demo.ini"), errs, sizeof(errs)), -1);
	snprintf(want, sizeof(want),
		 "%s/demo.ini is writable by group or others (mode 0646): run chmod go-w "
		 "%s/demo.ini, " HOW_TO_RELAX "\n"
		 "%s/demo.ini:9: [table.rules] path: %s/rules.tsv is writable by group or others "
		 "(mode 0664): run chmod go-w %s/rules.tsv, " HOW_TO_RELAX "\n",
		 dir, dir, dir, dir, dir);
	assert_string_equal(errs, want);

	errs[0] = '\0';
	c.strict_modes = 0;
	assert_int_equal(safety_check_files(&c, at("demo.ini"), errs, sizeof(errs)), 0);
	assert_string_equal(errs, "");
	cfg_free(&c);
}

/* Owned by someone else (only root can make such a file here). */
static void test_check_files_owner(void **unused)
{
	char errs[2048] = "", want[2048];
	struct cfg c;

	(void)unused;
	if (geteuid() != 0)
		skip();
	load_cfg(&c);
	put(at("rules.tsv"), "k\tv\n");
	assert_int_equal(chown(at("rules.tsv"), 65534, 65534), 0);
	assert_int_equal(safety_check_files(&c, at("demo.ini"), errs, sizeof(errs)), -1);
	snprintf(want, sizeof(want),
		 "%s:9: [table.rules] path: %s belongs to uid 65534, not to root or to the user "
		 "ringmaster runs as (uid 0): chown it, " HOW_TO_RELAX "\n",
		 at("demo.ini"), at("rules.tsv"));
	assert_string_equal(errs, want);
	cfg_free(&c);
}

/* run_dir, data_dir and, for a file output, the output dir must not be
 * links; a directory not yet made passes. */
static void test_check_dirs(void **unused)
{
	char errs[2048] = "", want[2048];
	struct cfg c;

	(void)unused;
	load_cfg(&c);
	assert_int_equal(safety_check_dirs(&c, errs, sizeof(errs)), 0);
	assert_int_equal(mkdir(at("real"), 0755), 0);
	assert_int_equal(mkdir(at("run"), 0700), 0);
	assert_int_equal(safety_check_dirs(&c, errs, sizeof(errs)), 0);
	assert_string_equal(errs, "");

	assert_int_equal(symlink("real", at("data")), 0);
	assert_int_equal(symlink("real", at("out")), 0);
	assert_int_equal(safety_check_dirs(&c, errs, sizeof(errs)), -1);
	snprintf(
	    want, sizeof(want),
	    "%s:3: [ringmaster] data_dir %s is a symbolic link: give the directory itself, "
	    "" HOW_TO_RELAX "\n"
	    "%s:7: [output] dir %s is a symbolic link: give the directory itself, " HOW_TO_RELAX
	    "\n",
	    at("demo.ini"), at("data"), at("demo.ini"), at("out"));
	assert_string_equal(errs, want);

	/* no file output: its dir is not used */
	errs[0] = '\0';
	assert_int_equal(unlink(at("data")), 0);
	c.output_type = CFG_OUTPUT_NONE;
	assert_int_equal(safety_check_dirs(&c, errs, sizeof(errs)), 0);
	assert_string_equal(errs, "");
	c.output_type = CFG_OUTPUT_FILE;
	c.strict_modes = 0;
	assert_int_equal(safety_check_dirs(&c, errs, sizeof(errs)), 0);
	assert_string_equal(errs, "");
	cfg_free(&c);
}

/* The run directory: missing passes; open to others is closed to 0700; a
 * link, or something that is not a directory, is refused. */
static void test_check_run_dir(void **unused)
{
	char err[1024] = "", want[1024];
	struct stat st;
	struct cfg c;

	(void)unused;
	load_cfg(&c);
	assert_int_equal(safety_check_run_dir(&c, err, sizeof(err)), 0);

	assert_int_equal(mkdir(at("run"), 0700), 0);
	assert_int_equal(chmod(at("run"), 0775), 0);
	assert_int_equal(safety_check_run_dir(&c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(stat(at("run"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	assert_int_equal(rename(at("run"), at("run.real")), 0);
	assert_int_equal(symlink("run.real", at("run")), 0);
	assert_int_equal(safety_check_run_dir(&c, err, sizeof(err)), -1);
	snprintf(want, sizeof(want),
		 "%s:2: [ringmaster] run_dir %s is a symbolic link: give the directory itself, "
		 "" HOW_TO_RELAX,
		 at("demo.ini"), at("run"));
	assert_string_equal(err, want);
	c.strict_modes = 0;
	assert_int_equal(safety_check_run_dir(&c, err, sizeof(err)), 0);
	c.strict_modes = 1;

	assert_int_equal(unlink(at("run")), 0);
	put(at("run"), "not a directory");
	assert_int_equal(safety_check_run_dir(&c, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot open: Not a directory", at("run"));
	assert_string_equal(err, want);
	assert_int_equal(unlink(at("run")), 0);

	/* someone else's (root can make one here) */
	if (geteuid() == 0) {
		assert_int_equal(chown(at("run.real"), 65534, 65534), 0);
		assert_int_equal(rename(at("run.real"), at("run")), 0);
		assert_int_equal(safety_check_run_dir(&c, err, sizeof(err)), -1);
		snprintf(want, sizeof(want),
			 "%s belongs to uid 65534, not to the user ringmaster runs as (0): use a "
			 "run_dir of its own, " HOW_TO_RELAX,
			 at("run"));
		assert_string_equal(err, want);
	}
	cfg_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_safe_file),
	    cmocka_unit_test(test_link_resolved),
	    cmocka_unit_test(test_unsafe_file),
	    cmocka_unit_test(test_directory_above),
	    cmocka_unit_test(test_not_regular),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_small_buffer),
	    cmocka_unit_test_setup_teardown(test_check_files, setup_own, teardown_own),
	    cmocka_unit_test_setup_teardown(test_check_files_owner, setup_own, teardown_own),
	    cmocka_unit_test_setup_teardown(test_check_dirs, setup_own, teardown_own),
	    cmocka_unit_test_setup_teardown(test_check_run_dir, setup_own, teardown_own),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
