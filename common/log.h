/* log.h - one line per record on stderr (or a log file), logfmt:
 *
 *   ts=2026-11-27T23:26:51.123Z level=info proc=supervisor pid=4242 msg="workers
 *   started partitions=4" partitions=4
 *
 * (one line), or one JSON object with the same names (log_set_format).
 * time (UTC, ISO 8601 with milliseconds), level, process ("supervisor",
 * "worker/3", "ringctl"), pid, the message as the caller formats it, then
 * the values in it as fields of their own: its words key=value, and a
 * leading path ("/srv/x: cannot open ..." gives path=/srv/x). A value is
 * quoted when it must be, with JSON's escapes (invalid UTF-8 as U+FFFD), so
 * any logfmt parser reads every line. The logger is per process (set once
 * after fork), which is the one piece of module state outside signal flags
 * that we allow. */
#ifndef RM_LOG_H
#define RM_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

/* Set the role shown on each line and the threshold. Call again after fork. */
void log_init(const char *role, int level);
void log_set_level(int level);
void log_set_format(int format); /* enum log_format */

/* Parse "error|warn|info|debug" into a level; -1 if none matches. */
int log_level_parse(const char *s);

/* Send records to `path` (appending) instead of stderr; NULL returns to
 * stderr. Calling it again with the same path reopens the file (for log
 * rotation on SIGUSR1). Returns 0 or -errno; on failure the old destination
 * stays. */
int log_open(const char *path);

/* The descriptor records go to now (the log file, or standard error), for
 * handing to a process that must log where this one does. */
int log_fd(void);

/* Send records to `fd` from now on (this process owns it; the previous log
 * file is closed). For a worker, which gets the supervisor's current
 * destination from the fork server (forksrv.h): a log_file reopened since
 * the server was forked is not in its memory. */
void log_use_fd(int fd);

/* Reopen `path` (log_open) before the next record whenever *generation
 * has moved since the last look: a worker follows its supervisor's reopen
 * for logrotate without a signal of its own. NULL path: never. The string
 * must outlive the process's logging. */
void log_follow(_Atomic uint64_t *generation, const char *path);

void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vwrite(int level, const char *fmt, va_list ap);

/* One record per line of `text` (a multi-line error list), each after
 * `prefix`. */
void log_lines(int level, const char *prefix, const char *text);

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
