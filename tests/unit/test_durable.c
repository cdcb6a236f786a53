/* test_durable.c - common/durable.c: directories made whole, locks that
 * name their holder (and die with it), owner marks that refuse another data
 * directory's files and unmarked non-empty ones, and the boot id. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "durable.h"

static char dir[64];

static int setup(void **unused)
{
	(void)unused;
	snprintf(dir, sizeof(dir), "/tmp/test_durable.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **unused)
{
	(void)unused;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_mkdir_p(void **unused)
{
	(void)unused;
	char p[256], err[DUR_ERR_LEN];
	struct stat st;
	path_of(p, sizeof(p), "a/b/c");
	assert_int_equal(dur_mkdir_p(p, 0750, err), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0750);
	assert_int_equal(dur_mkdir_p(p, 0750, err), 0); /* already there */
	assert_int_equal(dur_fsync_dir(p, err), 0);
	assert_int_equal(dur_fsync_parent(p, err), 0);
	path_of(p, sizeof(p), "missing/x");
	assert_true(dur_fsync_dir(p, err) < 0);
	assert_non_null(strstr(err, "missing/x"));
}

static void test_lock_names_holder(void **unused)
{
	(void)unused;
	char p[256], err[DUR_ERR_LEN];
	int fd = -1, pipefd[2];
	pid_t holder;
	path_of(p, sizeof(p), "lock");
	assert_int_equal(dur_lock_holder(p), 0); /* no file yet */
	assert_int_equal(pipe(pipefd), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) { /* hold the lock until killed */
		close(pipefd[0]);
		if (dur_lock(p, &fd, &holder, err) != 0 || write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char c;
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_int_equal(dur_lock_holder(p), child);
	assert_int_equal(dur_lock(p, &fd, &holder, err), -EWOULDBLOCK);
	assert_int_equal(holder, child);
	kill(child, SIGKILL); /* a lock dies with its holder */
	waitpid(child, NULL, 0);
	close(pipefd[0]);
	assert_int_equal(dur_lock_holder(p), 0);
	assert_int_equal(dur_lock(p, &fd, &holder, err), 0);
	close(fd);
}

static void test_owner_marks(void **unused)
{
	(void)unused;
	char f[256], mark[256], err[DUR_ERR_LEN];
	struct stat st;
	path_of(f, sizeof(f), "p0.tsv");
	path_of(mark, sizeof(mark), ".p0.tsv.owner");
	/* a new file: created empty, and marked */
	assert_int_equal(dur_own_file(f, 0644, 0x1234, "/d/one", err), 0);
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(stat(mark, &st), 0);
	/* ours: fine, with content too */
	write_file(f, "line\n");
	assert_int_equal(dur_own_file(f, 0644, 0x1234, "/d/one", err), 0);
	/* another data_dir's: refused, naming it */
	assert_int_equal(dur_own_file(f, 0644, 0x9999, "/d/two", err), -EEXIST);
	assert_non_null(strstr(err, "belongs to data_dir /d/one"));
	assert_non_null(strstr(err, "/d/two"));
	/* a mark that is not ours to read: refused */
	write_file(mark, "something else\n");
	assert_int_equal(dur_own_file(f, 0644, 0x1234, "/d/one", err), -EEXIST);
	assert_non_null(strstr(err, "not an owner mark"));
	/* no mark, non-empty: refused, left alone */
	assert_int_equal(unlink(mark), 0);
	assert_int_equal(dur_own_file(f, 0644, 0x1234, "/d/one", err), -EEXIST);
	assert_non_null(strstr(err, "was not written by data_dir /d/one"));
	assert_int_equal(stat(f, &st), 0);
	assert_int_equal(st.st_size, 5);
	/* no mark, empty: taken */
	write_file(f, "");
	assert_int_equal(dur_own_file(f, 0644, 0x1234, "/d/one", err), 0);
	assert_int_equal(stat(mark, &st), 0);
}

static void test_boot_id(void **unused)
{
	(void)unused;
	unsetenv("RINGMASTER_BOOT_ID");
	uint64_t real = dur_boot_id();
	assert_true(real != 0);
	assert_int_equal(dur_boot_id(), real);
	setenv("RINGMASTER_BOOT_ID", "another boot", 1);
	uint64_t fake = dur_boot_id();
	assert_true(fake != 0 && fake != real);
	unsetenv("RINGMASTER_BOOT_ID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_names_holder, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_owner_marks, setup, teardown),
	    cmocka_unit_test(test_boot_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
