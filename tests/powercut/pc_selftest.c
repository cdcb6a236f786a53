/* pc_selftest.c - the process under test in test_powercut_harness.sh: each
 * subcommand does a few writes, fsyncs and renames under POWERCUT_ROOT,
 * with libpowercut.so preloaded, and then SIGKILLs itself: the power cut.
 * The script then runs pctool restore and checks what survived.
 *
 *   pc_selftest noop
 *   pc_selftest write-unsynced FILE      appends "unsynced\n"
 *   pc_selftest write-synced FILE        appends "synced\n", fsync, "later\n"
 *   pc_selftest dsync FILE               FILE holds "0123456789\n": "zz" at 6
 *                                        through a plain fd, "AB" at 2 (pwrite)
 *                                        and "C" at 8 (lseek, writev) through
 *                                        an O_DSYNC one
 *   pc_selftest create FILE dirsync|nodirsync
 *                                        FILE made with "new\n", fsynced; then
 *                                        its directory fsynced, or not
 *   pc_selftest nested DIR               DIR/sub made, DIR fsynced; DIR/sub/f
 *                                        made and fsynced, DIR/sub never
 *   pc_selftest replace-unsynced DIR     DIR/old unlinked; DIR/fresh made with
 *                                        "fresh\n" (likely on old's inode
 *                                        number), not fsynced; DIR fsynced
 *   pc_selftest rename FILE dirsync|nodirsync
 *                                        FILE.tmp made with "new\n", fsynced,
 *                                        renamed over FILE; the directory
 *                                        fsynced, or not
 *   pc_selftest fork-sync FILE           a forked child appends "child\n" and
 *                                        fsyncs; then the parent appends
 *                                        "parent\n" without
 *   pc_selftest lmdb-put ENVDIR KEY VALUE sync|nosync|nosync-envsync
 *                                        puts KEY=VALUE in the LMDB environment
 *                                        ENVDIR (made if missing); sync: opened
 *                                        without MDB_NOSYNC; nosync: with it;
 *                                        nosync-envsync: with it, then
 *                                        mdb_env_sync(env, 1)
 *
 * and two that return instead of cutting:
 *
 *   pc_selftest lmdb-get ENVDIR KEY      prints the value; exit 1 if none
 *   pc_selftest fsync-time FILE MB       writes MB MiB to FILE, prints the
 *                                        time its fsync took
 *
 * Exit status: killed by SIGKILL when the steps were all done; 1 (with a
 * message) when one failed; 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <lmdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("pc_selftest: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* The power cut: nothing after this runs, no buffer is flushed. */
__attribute__((noreturn)) static void cut(void)
{
	raise(SIGKILL);
	die("still alive after SIGKILL");
}

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	return fd;
}

static void write_or_die(int fd, const char *text, const char *path)
{
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	if (n != (ssize_t)len)
		die("write %s: %s", path, n < 0 ? strerror(errno) : "short write");
}

static void pwrite_or_die(int fd, const char *text, off_t off, const char *path)
{
	size_t len = strlen(text);
	ssize_t n = pwrite(fd, text, len, off);
	if (n != (ssize_t)len)
		die("pwrite %s: %s", path, n < 0 ? strerror(errno) : "short write");
}

static void fsync_or_die(int fd, const char *path)
{
	if (fsync(fd))
		die("fsync %s: %s", path, strerror(errno));
}

static void close_or_die(int fd, const char *path)
{
	if (close(fd))
		die("close %s: %s", path, strerror(errno));
}

/* Makes path's own entry list durable. */
static void fsync_dir(const char *path)
{
	int fd = open_or_die(path, O_RDONLY | O_DIRECTORY);
	fsync_or_die(fd, path);
	close_or_die(fd, path);
}

/* The directory that holds path. */
static void fsync_parent(const char *path)
{
	char copy[4096];
	if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy)
		die("%s: path too long", path);
	fsync_dir(dirname(copy));
}

/* FILE made with text, fsynced and closed. */
static void make_synced(const char *path, const char *text)
{
	int fd = open_or_die(path, O_WRONLY | O_CREAT | O_TRUNC);
	write_or_die(fd, text, path);
	fsync_or_die(fd, path);
	close_or_die(fd, path);
}

static void append(const char *path, const char *text, int sync)
{
	int fd = open_or_die(path, O_WRONLY | O_APPEND);
	write_or_die(fd, text, path);
	if (sync)
		fsync_or_die(fd, path);
	close_or_die(fd, path);
}

static int want_dirsync(const char *arg)
{
	if (strcmp(arg, "dirsync") && strcmp(arg, "nodirsync"))
		die("'%s': dirsync or nodirsync", arg);
	return !strcmp(arg, "dirsync");
}

static void cmd_dsync(const char *path)
{
	int plain = open_or_die(path, O_WRONLY);
	pwrite_or_die(plain, "zz", 6, path);
	int dsync = open_or_die(path, O_WRONLY | O_DSYNC);
	pwrite_or_die(dsync, "AB", 2, path);
	if (lseek(dsync, 8, SEEK_SET) != 8)
		die("lseek %s: %s", path, strerror(errno));
	struct iovec iov = {.iov_base = "C", .iov_len = 1};
	if (writev(dsync, &iov, 1) != 1)
		die("writev %s: %s", path, strerror(errno));
	cut();
}

static void cmd_nested(const char *dir)
{
	char sub[4096], file[4200];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	snprintf(file, sizeof file, "%s/f", sub);
	if (mkdir(sub, 0755))
		die("mkdir %s: %s", sub, strerror(errno));
	fsync_dir(dir);
	make_synced(file, "in sub\n");
	cut();
}

static void cmd_replace_unsynced(const char *dir)
{
	char old[4096], fresh[4096];
	struct stat st;
	snprintf(old, sizeof old, "%s/old", dir);
	snprintf(fresh, sizeof fresh, "%s/fresh", dir);
	if (stat(old, &st) || unlink(old))
		die("%s: %s", old, strerror(errno));
	int fd = open_or_die(fresh, O_WRONLY | O_CREAT | O_EXCL);
	write_or_die(fd, "fresh\n", fresh);
	struct stat fst;
	if (fstat(fd, &fst))
		die("fstat %s: %s", fresh, strerror(errno));
	printf("fresh %s old's inode number\n",
	       fst.st_ino == st.st_ino ? "reuses" : "does not reuse");
	fflush(stdout);
	close_or_die(fd, fresh);
	fsync_dir(dir);
	cut();
}

static void cmd_rename(const char *path, int dirsync)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		die("%s: path too long", path);
	make_synced(tmp, "new\n");
	if (rename(tmp, path))
		die("rename %s: %s", tmp, strerror(errno));
	if (dirsync)
		fsync_parent(path);
	cut();
}

static void cmd_fork_sync(const char *path)
{
	int status;
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		append(path, "child\n", 1);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		die("the forked child failed");
	append(path, "parent\n", 0);
	cut();
}

/* ---- LMDB ---------------------------------------------------------------------- */

static void mdb_or_die(int rc, const char *what, const char *dir)
{
	if (rc)
		die("%s %s: %s", what, dir, mdb_strerror(rc));
}

static MDB_env *env_open(const char *dir, unsigned flags)
{
	MDB_env *env;
	mdb_or_die(mdb_env_create(&env), "mdb_env_create", dir);
	mdb_or_die(mdb_env_open(env, dir, flags, 0644), "mdb_env_open", dir);
	return env;
}

static void cmd_lmdb_put(const char *dir, const char *key, const char *value, const char *mode)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {strlen(key), (void *)key}, v = {strlen(value), (void *)value};

	if (strcmp(mode, "sync") && strcmp(mode, "nosync") && strcmp(mode, "nosync-envsync"))
		die("'%s': sync, nosync or nosync-envsync", mode);
	if (mkdir(dir, 0755) && errno != EEXIST)
		die("mkdir %s: %s", dir, strerror(errno));
	MDB_env *env = env_open(dir, strcmp(mode, "sync") ? MDB_NOSYNC : 0);
	/* LMDB never fsyncs its directory: without these the files it made
	 * (and the directory, made just now) would not be durable. */
	fsync_dir(dir);
	fsync_parent(dir);
	mdb_or_die(mdb_txn_begin(env, NULL, 0, &txn), "mdb_txn_begin", dir);
	mdb_or_die(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open", dir);
	mdb_or_die(mdb_put(txn, dbi, &k, &v, 0), "mdb_put", dir);
	mdb_or_die(mdb_txn_commit(txn), "mdb_txn_commit", dir);
	if (!strcmp(mode, "nosync-envsync"))
		mdb_or_die(mdb_env_sync(env, 1), "mdb_env_sync", dir);
	cut();
}

static int cmd_lmdb_get(const char *dir, const char *key)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {strlen(key), (void *)key}, v;

	MDB_env *env = env_open(dir, MDB_RDONLY);
	mdb_or_die(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin", dir);
	mdb_or_die(mdb_dbi_open(txn, NULL, 0, &dbi), "mdb_dbi_open", dir);
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		mdb_or_die(rc, "mdb_get", dir);
	if (!rc)
		printf("%.*s\n", (int)v.mv_size, (const char *)v.mv_data);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc ? 1 : 0;
}

/* ---- figures ------------------------------------------------------------------- */

static double now_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		die("clock_gettime: %s", strerror(errno));
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmd_fsync_time(const char *path, const char *mb_arg)
{
	static char block[1 << 20];
	long mb = strtol(mb_arg, NULL, 10);
	if (mb < 1 || mb > 1024)
		die("'%s': MiB, 1..1024", mb_arg);
	for (size_t i = 0; i < sizeof block; i++)
		block[i] = (char)(i * 131 + 7);
	int fd = open_or_die(path, O_WRONLY | O_CREAT | O_TRUNC);
	for (long i = 0; i < mb; i++) {
		if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
			die("write %s: %s", path, strerror(errno));
	}
	double start = now_ms();
	fsync_or_die(fd, path);
	double took = now_ms() - start;
	close_or_die(fd, path);
	printf("fsync of %ld MiB: %.1f ms\n", mb, took);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (!strcmp(cmd, "noop") && argc == 2)
		cut();
	if (!strcmp(cmd, "write-unsynced") && argc == 3) {
		append(argv[2], "unsynced\n", 0);
		cut();
	}
	if (!strcmp(cmd, "write-synced") && argc == 3) {
		append(argv[2], "synced\n", 1);
		append(argv[2], "later\n", 0);
		cut();
	}
	if (!strcmp(cmd, "dsync") && argc == 3)
		cmd_dsync(argv[2]);
	if (!strcmp(cmd, "create") && argc == 4) {
		int dirsync = want_dirsync(argv[3]);
		make_synced(argv[2], "new\n");
		if (dirsync)
			fsync_parent(argv[2]);
		cut();
	}
	if (!strcmp(cmd, "nested") && argc == 3)
		cmd_nested(argv[2]);
	if (!strcmp(cmd, "replace-unsynced") && argc == 3)
		cmd_replace_unsynced(argv[2]);
	if (!strcmp(cmd, "rename") && argc == 4)
		cmd_rename(argv[2], want_dirsync(argv[3]));
	if (!strcmp(cmd, "fork-sync") && argc == 3)
		cmd_fork_sync(argv[2]);
	if (!strcmp(cmd, "lmdb-put") && argc == 6)
		cmd_lmdb_put(argv[2], argv[3], argv[4], argv[5]);
	if (!strcmp(cmd, "lmdb-get") && argc == 4)
		return cmd_lmdb_get(argv[2], argv[3]);
	if (!strcmp(cmd, "fsync-time") && argc == 4)
		return cmd_fsync_time(argv[2], argv[3]);
	fprintf(stderr, "usage: pc_selftest SUBCOMMAND ARGS... (see the top of pc_selftest.c)\n");
	return 2;
}
