/* failsync.c - an LD_PRELOAD library that makes fsync and fdatasync fail
 * with EIO, the way a dying disk does, for the tests of what ringmaster does
 * then (tests/integration/test_sync_fail.sh).
 *
 *   FAILSYNC_MATCH=TEXT   only files whose path contains TEXT
 *   FAILSYNC_ARM=FILE     only while FILE exists (the test creates it when
 *                         the run is under way)
 *
 * The real call is not made on a failure: the data stays in the page cache,
 * unwritten, as after a failed writeback. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

static int should_fail(int fd)
{
	const char *match = getenv("FAILSYNC_MATCH");
	const char *arm = getenv("FAILSYNC_ARM");
	char link[64], path[PATH_MAX];
	if (!match || !arm || access(arm, F_OK) != 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	return strstr(path, match) != NULL;
}

static int call(const char *name, int fd)
{
	if (should_fail(fd)) {
		errno = EIO;
		return -1;
	}
	sync_fn real = (sync_fn)dlsym(RTLD_NEXT, name);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return real(fd);
}

int fsync(int fd)
{
	return call("fsync", fd);
}

int fdatasync(int fd)
{
	return call("fdatasync", fd);
}
