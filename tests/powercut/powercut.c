/* powercut.c - libpowercut.so, the LD_PRELOAD half of the power-cut
 * harness: it watches the process's fsync()s and O_DSYNC writes on files
 * under POWERCUT_ROOT and records, in POWERCUT_SHADOW, what a power cut
 * would keep: each file's content as of its last fsync (plus the bytes of
 * its O_DSYNC writes), each directory's entries as of its last fsync.
 * pctool restore later rebuilds ROOT from that record (see pctool.c, and
 * pc_shadow.h for the layout).
 *
 *   POWERCUT_ROOT    the tree under test, absolute; unset: the library
 *                    does nothing but pass the calls on
 *   POWERCUT_SHADOW  the shadow directory, absolute, outside ROOT, made
 *                    by `pctool init ROOT SHADOW`
 *
 * A test runs it as:
 *
 *   pctool init ROOT SHADOW
 *   env LD_PRELOAD=$B/tests/libpowercut.so POWERCUT_ROOT=ROOT \
 *       POWERCUT_SHADOW=SHADOW setsid PROGRAM... &   (children inherit it)
 *   kill -KILL -- -PGID; wait                          (the power cut)
 *   pctool restore ROOT SHADOW                         (ROOT: what survived)
 *
 * For a program built with ASan add verify_asan_link_order=0 to
 * ASAN_OPTIONS: ASan aborts when its runtime is not the first library
 * loaded, and a preloaded library always comes first.
 *
 * A process started with POWERCUT_ROOT set but a shadow that does not
 * belong to that ROOT exits at once with status 125 and a message: a
 * harness that records nothing would make every test meaningless.
 *
 * Interposed: fsync, fdatasync, write, pwrite, pwrite64, writev, pwritev,
 * pwritev64, pwritev2, pwritev64v2. An fsync on an fd under ROOT takes the
 * shadow lock, calls the real fsync and, if it succeeded, records the file
 * (or directory). A write first asks F_GETFL whether the fd is O_DSYNC or
 * O_SYNC (pwritev2: or RWF_DSYNC/RWF_SYNC); only then does it resolve the
 * path, and for a file under ROOT it takes the lock, writes, and applies
 * the same bytes to the shadow copy. Everything else goes straight to the
 * real call, and errno is as the real call left it.
 *
 * Not modelled: reordered and torn writes (what was not made durable
 * simply vanishes: the worst case, not every case); writes through mmap
 * (msync is not interposed, so LMDB's MDB_WRITEMAP is not covered; an
 * fsync after mmap writes is); sync(2), syncfs(2), sync_file_range(2);
 * writes that bypass these symbols (stdio's own writes to an O_DSYNC
 * stream, io_uring, AIO, raw syscall(), copy_file_range, sendfile or
 * splice into a file, static programs); ftruncate/fallocate on an O_DSYNC
 * fd; O_DIRECT, treated as a plain write; owners, times and xattrs. A
 * directory fsync makes that directory's entries durable and no others:
 * POSIX's promise, less than ext4's, whose journal commits every pending
 * metadata change at any fsync.
 *
 * The state below is global because an interposer has nowhere else to keep
 * it: the real functions and the two paths, set once, before main() by the
 * constructor (or by the first call, whichever comes first), and only read
 * afterwards, so forked children inherit it ready to use.
 */
#include "pc_shadow.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXIT_MISCONFIGURED 125

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef ssize_t (*pwritev64_fn)(int, const struct iovec *, int, off64_t);
typedef ssize_t (*pwritev2_fn)(int, const struct iovec *, int, off_t, int);
typedef ssize_t (*pwritev64v2_fn)(int, const struct iovec *, int, off64_t, int);
typedef int (*sync_fn)(int);

static struct {
	int ready;  /* pc_setup has run */
	int active; /* POWERCUT_ROOT is set */
	char root[PATH_MAX];
	size_t root_len;
	char shadow_dir[PATH_MAX];
	struct pc_shadow sh;
	sync_fn fsync, fdatasync;
	write_fn write;
	pwrite_fn pwrite;
	pwrite64_fn pwrite64;
	writev_fn writev;
	pwritev_fn pwritev;
	pwritev64_fn pwritev64;
	pwritev2_fn pwritev2;
	pwritev64v2_fn pwritev64v2;
} pc;

/* The next definition of name after ours (libc's, or a sanitizer's). */
static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void die(const char *what, const char *value, const char *hint)
{
	const char *parts[] = {"powercut: ", what, value, "\n", hint};
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		(void)!pc.write(STDERR_FILENO, parts[i], strlen(parts[i]));
	_exit(EXIT_MISCONFIGURED);
}

static const char setup_hint[] = "powercut: set POWERCUT_ROOT and POWERCUT_SHADOW to absolute "
				 "paths, after `pctool init ROOT SHADOW`\n";

/* The shadow must have been made by pctool init for this very ROOT. */
static void check_marker(void)
{
	char path[PATH_MAX], text[PATH_MAX + 128], want[PATH_MAX + 8];
	ssize_t n = -1;
	if (pc_path(path, sizeof path, &pc.sh, PC_MARKER, NULL) == 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			n = read(fd, text, sizeof text - 1);
			close(fd);
		}
	}
	if (n < 0)
		die("no shadow made by pctool init at POWERCUT_SHADOW=", pc.shadow_dir, setup_hint);
	text[n] = '\0';
	if (strlen(pc.root) + 7 >= sizeof want)
		die("POWERCUT_ROOT is too long: ", pc.root, setup_hint);
	strcpy(want, "\nroot ");
	strcat(want, pc.root);
	strcat(want, "\n");
	if (!strstr(text, want))
		die("the shadow was not made for this ROOT (pctool init ROOT SHADOW): ",
		    pc.shadow_dir, setup_hint);
}

static void pc_setup(void)
{
	const char *root, *shadow;

	if (pc.ready)
		return;
	pc.fsync = (sync_fn)next("fsync");
	pc.fdatasync = (sync_fn)next("fdatasync");
	pc.write = (write_fn)next("write");
	pc.pwrite = (pwrite_fn)next("pwrite");
	pc.pwrite64 = (pwrite64_fn)next("pwrite64");
	pc.writev = (writev_fn)next("writev");
	pc.pwritev = (pwritev_fn)next("pwritev");
	pc.pwritev64 = (pwritev64_fn)next("pwritev64");
	pc.pwritev2 = (pwritev2_fn)next("pwritev2");
	pc.pwritev64v2 = (pwritev64v2_fn)next("pwritev64v2");
	pc.sh.dir = pc.shadow_dir;
	pc.sh.write = pc.write;
	pc.sh.pwrite = pc.pwrite;
	pc.ready = 1;
	if (!pc.write)
		_exit(EXIT_MISCONFIGURED);
	if (!pc.fsync || !pc.fdatasync || !pc.pwrite || !pc.pwrite64 || !pc.writev || !pc.pwritev ||
	    !pc.pwritev64 || !pc.pwritev2 || !pc.pwritev64v2)
		die("the C library lacks one of fsync, fdatasync, pwrite, pwrite64, writev, "
		    "pwritev, pwritev64, pwritev2, pwritev64v2",
		    "", "");

	root = getenv("POWERCUT_ROOT");
	if (!root || !*root)
		return;
	shadow = getenv("POWERCUT_SHADOW");
	if (root[0] != '/')
		die("POWERCUT_ROOT is not absolute: ", root, setup_hint);
	if (!shadow || shadow[0] != '/')
		die("POWERCUT_SHADOW is not set or not absolute: ", shadow ? shadow : "",
		    setup_hint);
	if (!realpath(root, pc.root))
		die("POWERCUT_ROOT does not resolve: ", root, setup_hint);
	if (strlen(shadow) >= sizeof pc.shadow_dir)
		die("POWERCUT_SHADOW is too long: ", shadow, setup_hint);
	strcpy(pc.shadow_dir, shadow);
	pc.root_len = strlen(pc.root);
	check_marker();
	pc.active = 1;
}

__attribute__((constructor)) static void pc_constructor(void)
{
	int saved = errno;
	pc_setup();
	errno = saved;
}

/* "/proc/self/fd/<fd>" into buf (32 bytes), without snprintf. */
static void proc_fd_path(char *buf, int fd)
{
	static const char prefix[] = "/proc/self/fd/";
	char digits[16];
	size_t n = 0, len = sizeof prefix - 1;
	unsigned v = (unsigned)fd;

	memcpy(buf, prefix, len);
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		buf[len++] = digits[--n];
	buf[len] = '\0';
}

/* Is fd open on something under ROOT? Its path in path if so. */
static int under_root(int fd, char *path, size_t size)
{
	char link[32];

	if (fd < 0)
		return 0;
	proc_fd_path(link, fd);
	ssize_t got = readlink(link, path, size - 1);
	if (got <= 0 || (size_t)got >= size - 1)
		return 0;
	path[got] = '\0';
	if (pc.root_len == 1) /* ROOT is "/" */
		return path[0] == '/';
	return strncmp(path, pc.root, pc.root_len) == 0 &&
	       (path[pc.root_len] == '/' || path[pc.root_len] == '\0');
}

/* ---- fsync, fdatasync ------------------------------------------------------ */

/* Copies the regular file open on fd into the shadow; an fd opened write-only
 * is reopened for reading through /proc (which works even once unlinked). */
static int record_file(int fd, const struct pc_key *key)
{
	int flags = fcntl(fd, F_GETFL);
	int src = fd, rc;

	if (flags < 0)
		return -errno;
	if ((flags & O_ACCMODE) == O_WRONLY) {
		char link[32];
		proc_fd_path(link, fd);
		src = open(link, O_RDONLY | O_CLOEXEC);
		if (src < 0)
			return -errno;
	}
	rc = pc_save_file(&pc.sh, src, key);
	if (src != fd)
		close(src);
	return rc;
}

/* Records what the successful fsync of fd made durable. */
static void record_synced(int fd, const char *path)
{
	struct stat st;
	struct pc_key key;
	int rc = fstat(fd, &st) ? -errno : 0;

	if (!rc && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return;
	if (!rc)
		rc = pc_key_of_fd(fd, &key);
	if (!rc)
		rc = S_ISDIR(st.st_mode) ? pc_save_dir(&pc.sh, fd, &key) : record_file(fd, &key);
	if (rc)
		pc_note_error(&pc.sh, "cannot record the fsync of", path, -rc);
}

/* The lock is taken before the real fsync, so that two processes' records
 * of one file land in the order of their fsyncs. */
static int sync_fd(int fd, sync_fn real)
{
	char path[PATH_MAX];
	int saved = errno;

	if (!pc.active || !under_root(fd, path, sizeof path)) {
		errno = saved;
		return real(fd);
	}
	int lock = pc_lock(&pc.sh);
	if (lock < 0)
		pc_note_error(&pc.sh, "cannot lock the shadow for", path, -lock);
	errno = saved;
	int rc = real(fd);
	saved = errno;
	if (rc == 0)
		record_synced(fd, path);
	if (lock >= 0)
		pc_unlock(lock);
	errno = saved;
	return rc;
}

int fsync(int fd)
{
	pc_setup();
	return sync_fd(fd, pc.fsync);
}

int fdatasync(int fd)
{
	pc_setup();
	return sync_fd(fd, pc.fdatasync);
}

/* ---- writes ---------------------------------------------------------------- */

/* A write that is durable when it returns (an O_DSYNC or O_SYNC fd, or
 * RWF_DSYNC), to a file under ROOT. The lock is held across the real write
 * and its record, so concurrent writes to one range are recorded in the
 * order they were made. */
struct dsync {
	int fd;
	int lock;   /* the shadow lock's fd, or -1 if it could not be taken */
	int append; /* the bytes went to the end of the file */
	char path[PATH_MAX];
};

/* Whether the write about to be made on fd is such a write; if so, takes the
 * lock. forced: the call's own flags ask for a synchronous write. errno is
 * left as it was. */
static int dsync_begin(struct dsync *d, int fd, int forced, int append)
{
	int saved = errno, hit = 0;

	pc_setup();
	if (pc.active) {
		int flags = fcntl(fd, F_GETFL); /* O_SYNC includes the O_DSYNC bit */
		if (flags >= 0 && ((flags & O_DSYNC) || forced) &&
		    under_root(fd, d->path, sizeof d->path)) {
			d->fd = fd;
			d->append = append || (flags & O_APPEND);
			d->lock = pc_lock(&pc.sh);
			if (d->lock < 0)
				pc_note_error(&pc.sh, "cannot lock the shadow for", d->path,
					      -d->lock);
			hit = 1;
		}
	}
	errno = saved;
	return hit;
}

/* After the real write: its first done bytes of iov went at offset off, or
 * (off -1) at the fd's offset before the write, or at the end (append). */
static void dsync_end(struct dsync *d, ssize_t done, const struct iovec *iov, int iovcnt, off_t off)
{
	int saved = errno;
	struct pc_key key;
	struct stat st;

	if (done > 0) {
		int rc = pc_key_of_fd(d->fd, &key);
		if (!rc && d->append) {
			rc = fstat(d->fd, &st) ? -errno : 0;
			off = st.st_size - done;
		} else if (!rc && off < 0) {
			off_t pos = lseek(d->fd, 0, SEEK_CUR);
			rc = pos < 0 ? -errno : 0;
			off = pos - done;
		}
		if (!rc)
			rc = pc_save_range(&pc.sh, &key, iov, iovcnt, (size_t)done, off);
		if (rc)
			pc_note_error(&pc.sh, "cannot record an O_DSYNC write to", d->path, -rc);
	}
	if (d->lock >= 0)
		pc_unlock(d->lock);
	errno = saved;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	struct dsync d;
	struct iovec iov = {(void *)buf, len};
	if (!dsync_begin(&d, fd, 0, 0))
		return pc.write(fd, buf, len);
	ssize_t n = pc.write(fd, buf, len);
	dsync_end(&d, n, &iov, 1, -1);
	return n;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct dsync d;
	struct iovec iov = {(void *)buf, len};
	if (!dsync_begin(&d, fd, 0, 0))
		return pc.pwrite(fd, buf, len, off);
	ssize_t n = pc.pwrite(fd, buf, len, off);
	dsync_end(&d, n, &iov, 1, off);
	return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	struct dsync d;
	struct iovec iov = {(void *)buf, len};
	if (!dsync_begin(&d, fd, 0, 0))
		return pc.pwrite64(fd, buf, len, off);
	ssize_t n = pc.pwrite64(fd, buf, len, off);
	dsync_end(&d, n, &iov, 1, off);
	return n;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct dsync d;
	if (!dsync_begin(&d, fd, 0, 0))
		return pc.writev(fd, iov, iovcnt);
	ssize_t n = pc.writev(fd, iov, iovcnt);
	dsync_end(&d, n, iov, iovcnt, -1);
	return n;
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	struct dsync d;
	if (!dsync_begin(&d, fd, 0, 0))
		return pc.pwritev(fd, iov, iovcnt, off);
	ssize_t n = pc.pwritev(fd, iov, iovcnt, off);
	dsync_end(&d, n, iov, iovcnt, off);
	return n;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off64_t off)
{
	struct dsync d;
	if (!dsync_begin(&d, fd, 0, 0))
		return pc.pwritev64(fd, iov, iovcnt, off);
	ssize_t n = pc.pwritev64(fd, iov, iovcnt, off);
	dsync_end(&d, n, iov, iovcnt, off);
	return n;
}

/* pwritev2: offset -1 means the fd's offset; RWF_DSYNC and RWF_SYNC make
 * this one write synchronous, RWF_APPEND puts it at the end. */
ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off, int flags)
{
	struct dsync d;
	if (!dsync_begin(&d, fd, flags & (RWF_DSYNC | RWF_SYNC), flags & RWF_APPEND))
		return pc.pwritev2(fd, iov, iovcnt, off, flags);
	ssize_t n = pc.pwritev2(fd, iov, iovcnt, off, flags);
	dsync_end(&d, n, iov, iovcnt, off < 0 ? -1 : off);
	return n;
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off64_t off, int flags)
{
	struct dsync d;
	if (!dsync_begin(&d, fd, flags & (RWF_DSYNC | RWF_SYNC), flags & RWF_APPEND))
		return pc.pwritev64v2(fd, iov, iovcnt, off, flags);
	ssize_t n = pc.pwritev64v2(fd, iov, iovcnt, off, flags);
	dsync_end(&d, n, iov, iovcnt, off < 0 ? -1 : off);
	return n;
}
