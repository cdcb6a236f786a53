/* durable.c - directory fsyncs, lock files, owner marks and the boot id
 * (see durable.h). */
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, DUR_ERR_LEN, fmt, ap);
	va_end(ap);
	return rc;
}

int dur_fsync_dir(const char *dir, char err[DUR_ERR_LEN])
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(err, -errno, "%s: cannot open the directory to sync it: %s", dir,
			    strerror(errno));
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	if (rc)
		return fail(err, rc, "%s: cannot fsync the directory: %s", dir, strerror(-rc));
	return 0;
}

int dur_fsync_parent(const char *path, char err[DUR_ERR_LEN])
{
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return fail(err, -ENAMETOOLONG, "%s: path too long", path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return dur_fsync_dir(".", err);
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return dur_fsync_dir(dir, err);
}

int dur_mkdir_p(const char *path, mode_t mode, char err[DUR_ERR_LEN])
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(buf))
		return fail(err, -ENAMETOOLONG, "%s: bad path", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; p <= buf + len; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, mode) == 0) {
			int rc = dur_fsync_parent(buf, err);
			if (rc)
				return rc;
		} else if (errno != EEXIST) {
			return fail(err, -errno, "%s: cannot create directory: %s", buf,
				    strerror(errno));
		}
		*p = saved;
	}
	return 0;
}

static pid_t holder_of(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_GETLK, &fl) != 0)
		return -errno;
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

int dur_lock(const char *path, int *fd_out, pid_t *holder, char err[DUR_ERR_LEN])
{
	*holder = 0;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(err, -errno, "%s: cannot open the lock file: %s", path,
			    strerror(errno));
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		int e = errno;
		if (e == EAGAIN || e == EACCES) {
			pid_t h = holder_of(fd);
			*holder = h > 0 ? h : 0;
			close(fd);
			return fail(err, -EWOULDBLOCK, "%s is locked by pid %ld", path,
				    (long)*holder);
		}
		close(fd);
		return fail(err, -e, "%s: cannot lock: %s", path, strerror(e));
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int e = errno;
		close(fd);
		return fail(err, -e, "%s: cannot write the lock file: %s", path, strerror(e));
	}
	*fd_out = fd;
	return 0;
}

pid_t dur_lock_holder(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	pid_t h = holder_of(fd);
	close(fd);
	return h;
}

static int mark_path(const char *path, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');
	int n = slash ? snprintf(out, size, "%.*s/.%s.owner", (int)(slash - path), path, slash + 1)
		      : snprintf(out, size, ".%s.owner", path);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The id a mark names: 0 and *id, -ENOENT without a mark, -EINVAL when it
 * says something else; `who` gets the data_dir path it names. */
static int read_mark(const char *mark, uint64_t *id, char *who, size_t who_len)
{
	char buf[PATH_MAX + 96];
	int fd = open(mark, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	unsigned long long v;
	int used = 0;
	if (sscanf(buf, "ringmaster data_dir id=%16llx path=%n", &v, &used) != 1 || !used)
		return -EINVAL;
	snprintf(who, who_len, "%.*s", (int)strcspn(buf + used, "\n"), buf + used);
	*id = v;
	return 0;
}

static int write_mark(const char *mark, uint64_t id, const char *data_dir, char *err)
{
	char tmp[PATH_MAX + 32], buf[PATH_MAX + 96];
	snprintf(tmp, sizeof(tmp), "%s.%ld", mark, (long)getpid());
	int n = snprintf(buf, sizeof(buf), "ringmaster data_dir id=%016" PRIx64 " path=%s\n", id,
			 data_dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(err, -errno, "%s: cannot create the owner mark: %s", tmp,
			    strerror(errno));
	int rc = write(fd, buf, (size_t)n) == n && fsync(fd) == 0 ? 0 : -(errno ? errno : EIO);
	close(fd);
	if (rc == 0 && rename(tmp, mark) != 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return fail(err, rc, "%s: cannot write the owner mark: %s", mark, strerror(-rc));
	}
	return 0;
}

int dur_own_file(const char *path, mode_t mode, uint64_t id, const char *data_dir,
		 char err[DUR_ERR_LEN])
{
	char mark[PATH_MAX], who[PATH_MAX];
	uint64_t owner = 0;
	struct stat st;
	if (mark_path(path, mark, sizeof(mark)) != 0)
		return fail(err, -ENAMETOOLONG, "%s: path too long", path);
	int rc = read_mark(mark, &owner, who, sizeof(who));
	if (rc == 0 && owner != id)
		return fail(err, -EEXIST,
			    "%s belongs to data_dir %s (id %016" PRIx64 ", says %s), not to this "
			    "instance's data_dir %s: ringmaster will neither truncate nor append "
			    "to it; give this instance another file or directory, or run it with "
			    "that data_dir",
			    path, who, owner, mark, data_dir);
	if (rc == -EINVAL)
		return fail(err, -EEXIST,
			    "%s: %s is not an owner mark written by ringmaster: "
			    "move it away",
			    path, mark);
	if (rc != 0 && rc != -ENOENT)
		return fail(err, rc, "%s: cannot read the owner mark %s: %s", path, mark,
			    strerror(-rc));
	int created = 0;
	if (rc == -ENOENT) {
		if (stat(path, &st) == 0 && st.st_size > 0)
			return fail(err, -EEXIST,
				    "%s exists and was not written by data_dir %s (it has no owner "
				    "mark %s): ringmaster will neither truncate nor append to it; "
				    "move it away, or give this instance another file or directory",
				    path, data_dir, mark);
		if ((rc = write_mark(mark, id, data_dir, err)) != 0)
			return rc;
		created = 1;
	}
	if (stat(path, &st) != 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode);
		if (fd < 0)
			return fail(err, -errno, "%s: cannot create: %s", path, strerror(errno));
		close(fd);
		created = 1;
	}
	return created ? dur_fsync_parent(path, err) : 0;
}

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

uint64_t dur_boot_id(void)
{
	char buf[128];
	const char *fake = getenv("RINGMASTER_BOOT_ID");
	size_t n = 0;
	if (fake && *fake) {
		n = strlen(fake);
		memcpy(buf, fake, n < sizeof(buf) ? n : sizeof(buf));
		n = n < sizeof(buf) ? n : sizeof(buf);
	} else {
		int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return 1;
		ssize_t got = read(fd, buf, sizeof(buf));
		close(fd);
		if (got <= 0)
			return 1;
		n = (size_t)got;
	}
	uint64_t h = fnv1a(buf, n);
	return h ? h : 1;
}
