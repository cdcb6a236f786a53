/* log.c - the per-process logger behind log.h. Each record is formatted into
 * one buffer and written with a single write(2), so lines from the supervisor
 * and its workers, which share stderr, never interleave mid-line. */
#include "log.h"
#include "utf8.h"

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
	int format;		      /* enum log_format */
	_Atomic uint64_t *generation; /* log_follow */
	uint64_t seen;
	const char *path;
} logger = {"ringmaster", LOG_LEVEL_INFO, -1, LOG_FORMAT_LOGFMT, NULL, 0, NULL};

void log_set_format(int format)
{
	if (format == LOG_FORMAT_LOGFMT || format == LOG_FORMAT_JSON)
		logger.format = format;
}

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

/* ---- records: logfmt or JSON ---- */

#define LOG_LINE_MAX 16384
#define MAX_FIELDS 24

/* A line being built; what does not fit is dropped, never half an escape. */
struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap)
		n = 0, o->len = o->cap; /* full: nothing more */
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts0(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A string's bytes, escaped as in JSON (which logfmt parsers read too):
 * " and \, control bytes, and invalid UTF-8 as U+FFFD. */
static void put_escaped(struct out *o, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		char e[8];
		size_t len = utf8_len(u + i, n - i);
		if (len == 0) {
			put(o, "\\ufffd", 6);
			i++;
		} else if (len > 1) {
			put(o, s + i, len);
			i += len;
		} else if (u[i] == '"' || u[i] == '\\') {
			e[0] = '\\', e[1] = (char)u[i];
			put(o, e, 2);
			i++;
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			put(o, e,
			    u[i] == '\n'   ? (memcpy(e, "\\n", 2), 2)
			    : u[i] == '\t' ? (memcpy(e, "\\t", 2), 2)
			    : u[i] == '\r' ? (memcpy(e, "\\r", 2), 2)
					   : (size_t)snprintf(e, sizeof(e), "\\u%04x", u[i]));
			i++;
		} else {
			put(o, s + i, 1);
			i++;
		}
	}
}

/* logfmt: bare when it can be, else quoted. */
static void put_value(struct out *o, const char *s, size_t n, int json)
{
	int bare = n > 0 && !json;
	for (size_t i = 0; i < n && bare; i++) {
		unsigned char c = (unsigned char)s[i];
		bare = c > ' ' && c != '=' && c != '"' && c != '\\' && c != 0x7f && c < 0x80;
	}
	if (bare) {
		put(o, s, n);
		return;
	}
	put(o, "\"", 1);
	put_escaped(o, s, n);
	put(o, "\"", 1);
}

struct field {
	const char *key, *val;
	size_t key_len, val_len;
};

static int reserved(const char *k, size_t n)
{
	static const char *const names[] = {"ts", "level", "proc", "pid", "msg"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && memcmp(names[i], k, n) == 0)
			return 1;
	return 0;
}

/* The values in a message, as fields: its leading path ("/srv/x: cannot
 * open ...": path=/srv/x) and its words key=value (the house style, "started
 * partitions=4"), trailing punctuation off; the first of a key counts. */
static size_t message_fields(const char *msg, size_t n, struct field *f)
{
	size_t nf = 0;
	const char *colon = memchr(msg, ':', n);
	if (n && msg[0] == '/' && colon && !memchr(msg, ' ', (size_t)(colon - msg)))
		f[nf++] = (struct field){"path", msg, 4, (size_t)(colon - msg)};
	for (size_t i = 0; i < n && nf < MAX_FIELDS;) {
		while (i < n && msg[i] == ' ')
			i++;
		size_t start = i, eq = 0;
		while (i < n && msg[i] != ' ') {
			if (!eq && msg[i] == '=')
				eq = i;
			i++;
		}
		if (!eq || eq == start || !(msg[start] >= 'a' && msg[start] <= 'z'))
			continue;
		int key_ok = 1;
		for (size_t k = start; k < eq && key_ok; k++)
			key_ok = (msg[k] >= 'a' && msg[k] <= 'z') ||
				 (msg[k] >= '0' && msg[k] <= '9') || msg[k] == '_';
		size_t end = i;
		while (end > eq + 1 && strchr(",;:).", msg[end - 1]))
			end--;
		if (!key_ok || end == eq + 1 || reserved(msg + start, eq - start))
			continue;
		int dup = 0;
		for (size_t k = 0; k < nf && !dup; k++)
			dup = f[k].key_len == eq - start &&
			      !memcmp(f[k].key, msg + start, eq - start);
		if (!dup)
			f[nf++] =
			    (struct field){msg + start, msg + eq + 1, eq - start, end - eq - 1};
	}
	return nf;
}

static void put_field(struct out *o, int json, const char *key, size_t key_len, const char *val,
		      size_t val_len, int first)
{
	if (json) {
		put(o, first ? "\"" : ",\"", first ? 1 : 2);
		put(o, key, key_len);
		put(o, "\":", 2);
	} else {
		if (!first)
			put(o, " ", 1);
		put(o, key, key_len);
		put(o, "=", 1);
	}
	put_value(o, val, val_len, json);
}

static void format_record(struct out *o, const char *when, int level, const char *msg, size_t mlen)
{
	int json = logger.format == LOG_FORMAT_JSON;
	char pid[24];
	int pn = snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	struct field f[MAX_FIELDS];
	size_t nf = message_fields(msg, mlen, f);
	if (json)
		puts0(o, "{");
	put_field(o, json, "ts", 2, when, strlen(when), 1);
	const char *lvl = log_level_name(level);
	put_field(o, json, "level", 5, lvl, strlen(lvl), 0);
	put_field(o, json, "proc", 4, logger.role, strlen(logger.role), 0);
	if (json) {
		puts0(o, ",\"pid\":");
		put(o, pid, (size_t)pn);
	} else {
		put_field(o, json, "pid", 3, pid, (size_t)pn, 0);
	}
	put_field(o, json, "msg", 3, msg, mlen, 0);
	for (size_t i = 0; i < nf; i++)
		put_field(o, json, f[i].key, f[i].key_len, f[i].val, f[i].val_len, 0);
	if (json)
		puts0(o, "}");
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
	char msg[4096], when[40];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
	while (mlen > 0 && msg[mlen - 1] == '\n')
		mlen--;
	char buf[LOG_LINE_MAX];
	struct out o = {buf, 0, sizeof(buf) - 1};
	format_record(&o, when, level, msg, mlen);
	size_t n = o.len;
	buf[n++] = '\n';
	int fd = logger.fd >= 0 ? logger.fd : STDERR_FILENO;
	size_t off = 0;
	while (off < n) {
		ssize_t wr = write(fd, buf + off, n - off);
		if (wr < 0 && errno == EINTR)
			continue;
		if (wr <= 0)
			break;
		off += (size_t)wr;
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
