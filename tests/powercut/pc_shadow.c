/* pc_shadow.c - writes the power-cut harness's shadow directory: durable
 * file contents, durable directory entry lists, the lock that serialises
 * them across processes. The layout is described in pc_shadow.h.
 *
 * Only system calls and stack buffers here (no malloc, no stdio, no
 * snprintf): this code runs inside the write() and fsync() of whatever
 * process has libpowercut.so preloaded, including forked children.
 */
#include "pc_shadow.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small string helpers (async-signal-safe) ------------------------------ */

/* Appends s to buf (size bytes, NUL-terminated) at *len; -ENAMETOOLONG
 * when it does not fit. */
static int cat(char *buf, size_t size, size_t *len, const char *s)
{
	size_t n = strlen(s);
	if (*len + n >= size)
		return -ENAMETOOLONG;
	memcpy(buf + *len, s, n + 1);
	*len += n;
	return 0;
}

/* Writes v in the given base (8 or 10) into buf (24 bytes at least). */
static void format_u64(char *buf, unsigned long long v, unsigned base)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % base);
		v /= base;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
}

void pc_key_name(char *buf, const struct pc_key *key)
{
	size_t len = 0;
	char num[24];
	buf[0] = '\0';
	format_u64(num, key->dev, 10);
	cat(buf, PC_KEY_MAX, &len, num);
	cat(buf, PC_KEY_MAX, &len, "-");
	format_u64(num, key->ino, 10);
	cat(buf, PC_KEY_MAX, &len, num);
	cat(buf, PC_KEY_MAX, &len, "-");
	format_u64(num, key->gen, 10);
	cat(buf, PC_KEY_MAX, &len, num);
}

int pc_path(char *buf, size_t size, const struct pc_shadow *sh, const char *sub,
	    const struct pc_key *key)
{
	size_t len = 0;
	char name[PC_KEY_MAX];
	int rc;
	if (size == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	if ((rc = cat(buf, size, &len, sh->dir)) || (rc = cat(buf, size, &len, "/")) ||
	    (rc = cat(buf, size, &len, sub)))
		return rc;
	if (!key)
		return 0;
	pc_key_name(name, key);
	if ((rc = cat(buf, size, &len, "/")) || (rc = cat(buf, size, &len, name)))
		return rc;
	return 0;
}

/* ---- identity, lock -------------------------------------------------------- */

int pc_key_of_fd(int fd, struct pc_key *key)
{
	struct stat st;
	struct statx sx;
	long gen = 0;

	if (fstat(fd, &st))
		return -errno;
	key->dev = st.st_dev;
	key->ino = st.st_ino;
	key->gen = 0;
	if (ioctl(fd, FS_IOC_GETVERSION, &gen) == 0 && gen != 0) {
		key->gen = (unsigned long)gen;
		return 0;
	}
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &sx) == 0 && (sx.stx_mask & STATX_BTIME))
		key->gen =
		    (unsigned long long)sx.stx_btime.tv_sec * 1000000000ULL + sx.stx_btime.tv_nsec;
	return 0;
}

int pc_lock(const struct pc_shadow *sh)
{
	char path[PATH_MAX];
	int rc = pc_path(path, sizeof path, sh, "lock", NULL);
	if (rc)
		return rc;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX)) {
		if (errno != EINTR) {
			rc = -errno;
			close(fd);
			return rc;
		}
	}
	return fd;
}

void pc_unlock(int lock_fd)
{
	/* Explicitly: a forked child may hold a copy of this descriptor. */
	flock(lock_fd, LOCK_UN);
	close(lock_fd);
}

/* ---- file contents --------------------------------------------------------- */

/* Writes all of buf at off. */
static int pwrite_all(const struct pc_shadow *sh, int fd, const char *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = sh->pwrite(fd, buf, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* The fallback when copy_file_range cannot (another file system, old
 * kernel): from offset off on, by hand. */
static int copy_by_hand(const struct pc_shadow *sh, int from, int out, off_t off)
{
	char buf[16384];
	for (;;) {
		ssize_t n = pread(from, buf, sizeof buf, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		int rc = pwrite_all(sh, out, buf, (size_t)n, off);
		if (rc)
			return rc;
		off += n;
	}
}

int pc_copy_fd(const struct pc_shadow *sh, int from, int out)
{
	loff_t in_off = 0, out_off = 0;
	for (;;) {
		ssize_t n = copy_file_range(from, &in_off, out, &out_off, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
			return copy_by_hand(sh, from, out, in_off);
		return -errno;
	}
}

/* Opens SHADOW/tmp empty, for a copy that is renamed into place. */
static int open_tmp(const struct pc_shadow *sh, char *path, size_t size)
{
	int rc = pc_path(path, size, sh, "tmp", NULL);
	if (rc)
		return rc;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* Closes the tmp file fd and, if rc is still 0, renames it to sub/<key>. */
static int publish_tmp(const struct pc_shadow *sh, int fd, const char *tmp, const char *sub,
		       const struct pc_key *key, int rc)
{
	char path[PATH_MAX];
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc)
		rc = pc_path(path, sizeof path, sh, sub, key);
	if (!rc && rename(tmp, path))
		rc = -errno;
	return rc;
}

int pc_save_file(const struct pc_shadow *sh, int fd, const struct pc_key *key)
{
	char tmp[PATH_MAX];
	int out = open_tmp(sh, tmp, sizeof tmp);
	if (out < 0)
		return out;
	return publish_tmp(sh, out, tmp, "ino", key, pc_copy_fd(sh, fd, out));
}

int pc_save_range(const struct pc_shadow *sh, const struct pc_key *key, const struct iovec *iov,
		  int iovcnt, size_t len, off_t off)
{
	char path[PATH_MAX];
	int rc = pc_path(path, sizeof path, sh, "ino", key);
	if (rc)
		return rc;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (int i = 0; i < iovcnt && len && !rc; i++) {
		size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;
		rc = pwrite_all(sh, fd, iov[i].iov_base, n, off);
		off += (off_t)n;
		len -= n;
	}
	if (close(fd) && !rc)
		rc = -errno;
	return rc;
}

/* ---- directory entry lists ------------------------------------------------- */

/* A buffered writer to the tmp file; the first error sticks in err. */
struct pc_out {
	const struct pc_shadow *sh;
	int fd;
	int err;
	off_t off;
	size_t len;
	char buf[4096];
};

static void out_flush(struct pc_out *o)
{
	if (!o->err && o->len)
		o->err = pwrite_all(o->sh, o->fd, o->buf, o->len, o->off);
	o->off += (off_t)o->len;
	o->len = 0;
}

static void out_byte(struct pc_out *o, char c)
{
	if (o->len == sizeof o->buf)
		out_flush(o);
	o->buf[o->len++] = c;
}

static void out_str(struct pc_out *o, const char *s)
{
	while (*s)
		out_byte(o, *s++);
}

static void out_escaped(struct pc_out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == '%' || c >= 0x7f) {
			out_byte(o, '%');
			out_byte(o, hex[c >> 4]);
			out_byte(o, hex[c & 15]);
		} else {
			out_byte(o, (char)c);
		}
	}
}

static char type_char(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return 'f';
	case S_IFDIR:
		return 'd';
	case S_IFLNK:
		return 'l';
	case S_IFIFO:
		return 'p';
	case S_IFSOCK:
		return 's';
	case S_IFCHR:
		return 'c';
	default:
		return 'b';
	}
}

/* One line for the entry name of the directory dfd. An entry that went away
 * meanwhile is left out: it was removed after the fsync began. */
static int list_entry(struct pc_out *o, int dfd, const char *name)
{
	struct stat st;
	struct pc_key key;
	char num[24], keyname[PC_KEY_MAX], target[PATH_MAX];
	int rc;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -errno;
	key.dev = st.st_dev;
	key.ino = st.st_ino;
	key.gen = 0;
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		int fd =
		    openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? 0 : -errno;
		rc = pc_key_of_fd(fd, &key);
		if (!rc && fstat(fd, &st))
			rc = -errno;
		close(fd);
		if (rc)
			return rc;
	}
	out_byte(o, type_char(st.st_mode));
	out_byte(o, ' ');
	format_u64(num, st.st_mode & 07777, 8);
	out_str(o, num);
	out_byte(o, ' ');
	pc_key_name(keyname, &key);
	out_str(o, keyname);
	out_byte(o, ' ');
	out_escaped(o, name, strlen(name));
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlinkat(dfd, name, target, sizeof target);
		if (n < 0)
			return errno == ENOENT ? 0 : -errno;
		out_byte(o, ' ');
		out_escaped(o, target, (size_t)n);
	}
	out_byte(o, '\n');
	return 0;
}

int pc_save_dir(const struct pc_shadow *sh, int fd, const struct pc_key *key)
{
	char tmp[PATH_MAX];
	char ents[4096];
	struct pc_out o = {.sh = sh};
	int rc = 0;

	/* An fd of our own: reading entries moves the directory offset. */
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	o.fd = open_tmp(sh, tmp, sizeof tmp);
	if (o.fd < 0) {
		close(dfd);
		return o.fd;
	}
	for (;;) {
		ssize_t n = getdents64(dfd, ents, sizeof ents);
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		for (ssize_t at = 0; at < n && !rc;) {
			struct dirent64 *d = (struct dirent64 *)(ents + at);
			at += d->d_reclen;
			if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
				rc = list_entry(&o, dfd, d->d_name);
		}
		if (rc)
			break;
	}
	close(dfd);
	out_flush(&o);
	if (!rc)
		rc = o.err;
	return publish_tmp(sh, o.fd, tmp, "dir", key, rc);
}

/* ---- errors ---------------------------------------------------------------- */

void pc_note_error(const struct pc_shadow *sh, const char *what, const char *path, int err)
{
	char msg[PATH_MAX + 256], file[PATH_MAX], num[24];
	const char *name = strerrorname_np(err);
	size_t len = 0;

	msg[0] = '\0';
	cat(msg, sizeof msg, &len, "powercut: ");
	cat(msg, sizeof msg, &len, what);
	cat(msg, sizeof msg, &len, " ");
	cat(msg, sizeof msg, &len, path);
	cat(msg, sizeof msg, &len, ": ");
	if (!name) {
		format_u64(num, (unsigned)err, 10);
		name = num;
	}
	cat(msg, sizeof msg, &len, name);
	cat(msg, sizeof msg, &len, "\n");
	(void)!sh->write(STDERR_FILENO, msg, len);
	if (pc_path(file, sizeof file, sh, "errors", NULL))
		return;
	int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	(void)!sh->write(fd, msg, len);
	close(fd);
}
