/* log.c - the per-process logger behind log.h. Each record is formatted into
 * one buffer and written with a single write(2), so lines from the supervisor
 * and its workers, which share stderr, never interleave mid-line. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static struct {
	char role[32];
	int level;
	int fd;			      /* -1: stderr */
	_Atomic uint64_t *generation; /* log_follow */
	uint64_t seen;
	const char *path;
} logger = {"ringmaster", LOG_LEVEL_INFO, -1, NULL, 0, NULL};

void log_follow(_Atomic uint64_t *generation, const char *path)
{
	logger.generation = path ? generation : NULL;
	logger.path = path;
	if (generation)
		logger.seen = atomic_load_explicit(generation, memory_order_relaxed);
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *role, int level)
{
	snprintf(logger.role, sizeof(logger.role), "%s", role);
	log_set_level(level);
}

void log_set_level(int level)
{
	if (level >= LOG_LEVEL_ERROR && level <= LOG_LEVEL_DEBUG)
		logger.level = level;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i <= LOG_LEVEL_DEBUG; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return LOG_LEVEL_WARN;
	return -1;
}

static const char *log_level_name(int level)
{
	if (level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
		return "?";
	return level_names[level];
}

int log_open(const char *path)
{
	if (!path) {
		if (logger.fd >= 0)
			close(logger.fd);
		logger.fd = -1;
		return 0;
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (logger.fd >= 0)
		close(logger.fd);
	logger.fd = fd;
	return 0;
}

int log_fd(void)
{
	return logger.fd >= 0 ? logger.fd : STDERR_FILENO;
}

void log_use_fd(int fd)
{
	if (logger.fd >= 0 && logger.fd != fd)
		close(logger.fd);
	logger.fd = fd;
}

void log_vwrite(int level, const char *fmt, va_list ap)
{
	if (level > logger.level)
		return;
	int saved_errno = errno;
	if (logger.generation) {
		uint64_t g = atomic_load_explicit(logger.generation, memory_order_acquire);
		if (g != logger.seen) {
			logger.seen = g;
			log_open(logger.path); /* on failure the old file stays */
		}
	}
	char buf[4096];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ldZ %s %s pid=%ld ",
		      ts.tv_nsec / 1000000, log_level_name(level), logger.role, (long)getpid());
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2; /* truncated, still one line */
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n++] = '\n';
	int fd = logger.fd >= 0 ? logger.fd : STDERR_FILENO;
	ssize_t off = 0;
	while (off < n) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += w;
	}
	errno = saved_errno;
}

void log_write(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, fmt, ap);
	va_end(ap);
}

void log_lines(int level, const char *prefix, const char *text)
{
	while (text && *text) {
		const char *end = strchr(text, '\n');
		int n = end ? (int)(end - text) : (int)strlen(text);
		if (n)
			log_write(level, "%s%.*s", prefix, n, text);
		text += n + (end != NULL);
	}
}
