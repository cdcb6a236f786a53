/* cfg.c - loads ringmaster's INI file (and -o overrides) into a struct cfg.
 *
 * One table row per setting (section, key, parser, offset into struct cfg,
 * range, default, live or not) drives the defaults, the parsing, the error
 * messages and what a reload does with it (cfg_take_live, cfg_restart_notes,
 * cfg_live_pack), so a new setting is one line here.
 *
 * inih does the tokenising; we hand it lines through our own reader because
 * inih's handler is not told the line number, because inih holds at most 198
 * characters of a line (Debian's build has a fixed 200-byte buffer) and
 * would parse the rest of a longer one as lines of their own, because inih
 * would stop at a NUL byte without a word, and because inih truncates
 * section names to 49 bytes ([table.NAME] allows 63-byte names). The reader
 * therefore follows inih's rules for comments, section headers, continuation
 * lines and key = value lines itself: a line too long for inih is split here
 * the way inih would split it, its key and value are kept aside, and inih is
 * handed a short line of the same kind, so lines of any length work and the
 * line numbers stay right. A NUL byte is an error.
 *
 * Everything is built in a private struct load and copied to the caller's
 * struct cfg only when the whole load succeeded, so a bad reload changes
 * nothing (the nginx habit).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cfg.h"
#include "log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define NAME_MAX_LEN 63
#define TABLE_PREFIX "table."
/* run_dir + "/control.sock" must fit in sockaddr_un.sun_path (108 bytes). */
#define RUN_DIR_MAX (108 - sizeof("/control.sock"))

_Static_assert(sizeof(enum cfg_source_type) == sizeof(int), "enum as int");
_Static_assert(sizeof(enum cfg_output_type) == sizeof(int), "enum as int");
_Static_assert(sizeof(enum cfg_source_format) == sizeof(int), "enum as int");
_Static_assert(sizeof(enum cfg_sync) == sizeof(int), "enum as int");
_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "unsigned is 32 bits");

/* Where a value came from: a file line, an -o override, or neither (a
 * default, or a message about the whole file). */
struct origin {
	unsigned line;
	const char *override;
};

/* A free-form key = value ([handler], [kafka]) or a table (key = NAME,
 * value = path). */
struct entry {
	char *key;
	char *value;
	struct origin set; /* where value was last set */
	unsigned header;   /* tables: line of the [table.NAME] header */
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

struct msg {
	uint64_t order; /* file line; overrides after every line */
	size_t seq;
	char *text;
};

struct load;
struct setting;
typedef int setter(struct load *st, const struct setting *s, const char *v, const char *base);

/* Setting flags. */
#define F_U32 0x01	/* field is 32 bits wide (else 64) */
#define F_POW2 0x02	/* must be a power of two */
#define F_OPTIONAL 0x04 /* an empty value means unset (NULL) */
#define F_STDIN 0x08	/* "-" is kept as is: standard input */
#define F_NAME 0x10	/* 1..63 of A-Z a-z 0-9 . _ - */
#define F_ENDPOINT 0x20 /* a ZeroMQ endpoint: transport://address */
/* What a reload does with it (cfg_take_live, cfg_restart_notes): */
#define F_LIVE 0x40	  /* applied to the running instance and its workers */
#define F_BY_SECTION 0x80 /* else needs a restart, reported as "[section]" */

struct setting {
	const char *section, *key;
	setter *set;
	size_t offset;
	unsigned flags;
	uint64_t min, max;
	const char *def;	  /* parsed like a file value; NULL: zero / unset */
	const char *const *names; /* set_enum: index = enum value */
};

static setter set_num, set_size, set_dur, set_bool, set_double, set_enum, set_level, set_delim,
    set_str, set_path, set_handler;

static const char *const source_types[] = {"file", "generate", "zmq", "kafka", "spool", NULL};
static const char *const log_formats[] = {"logfmt", "json", NULL};
static const char *const spool_afters[] = {"keep", "move", "delete", NULL};
static const char *const source_formats[] = {"tsv", "jsonl", NULL};
static const char *const output_types[] = {"file", "zmq", "none", "kafka", NULL};
static const char *const sync_modes[] = {"none", "periodic", "batch", NULL};
static const char *const data_loss_modes[] = {"stop", "continue", NULL};

#define OFF(field) offsetof(struct cfg, field)
#define KB (1ULL << 10)
#define MB (1ULL << 20)
#define GB (1ULL << 30)
#define TB (1ULL << 40)
#define SEC 1000ULL
#define HOUR (3600 * SEC)

/* clang-format off */
static const struct setting settings[] = {
	/* section, key, parser, field, flags, min, max, default, names. A setting
	 * without F_LIVE needs a restart, and is reported by name in table order:
	 * "[ringmaster] partitions: needs restart, not applied". */
	{ "ringmaster", "partitions", set_num, OFF(partitions), F_U32, 1, CFG_PARTITIONS_MAX, "4", NULL },
	{ "ringmaster", "data_dir", set_path, OFF(data_dir), 0, 0, 0, "var/data", NULL },
	{ "ringmaster", "run_dir", set_path, OFF(run_dir), 0, 0, 0, "var/run", NULL },
	{ "ringmaster", "name", set_str, OFF(name), F_NAME, 0, 0, "ringmaster", NULL },
	{ "ringmaster", "log_level", set_level, OFF(log_level), F_LIVE, 0, 0, "info", NULL },
	{ "ringmaster", "log_file", set_path, OFF(log_file), F_OPTIONAL | F_LIVE, 0, 0, NULL, NULL },
	{ "ringmaster", "log_format", set_enum, OFF(log_format), 0, 0, 0, "logfmt", log_formats },
	{ "ringmaster", "stop_timeout", set_dur, OFF(stop_timeout_ms), F_LIVE, 100, HOUR, "10s", NULL },
	/* live: a reload checks the files it reads with the new value */
	{ "ringmaster", "strict_modes", set_bool, OFF(strict_modes), F_LIVE, 0, 0, "yes", NULL },
	{ "worker", "batch_max", set_num, OFF(batch_max), F_U32 | F_LIVE, 1, CFG_BATCH_MAX_MAX, "4096", NULL },
	{ "worker", "ring_size", set_size, OFF(ring_size), F_POW2, 64 * KB, GB, "8M", NULL },
	{ "worker", "handler", set_handler, OFF(handler), 0, 0, 0, "ledger", NULL },
	{ "worker", "watchdog", set_dur, OFF(watchdog_ms), F_LIVE, 0, HOUR, "30s", NULL },
	{ "source", "type", set_enum, OFF(source_type), F_BY_SECTION, 0, 0, "file", source_types },
	{ "source", "path", set_path, OFF(source_path), F_OPTIONAL | F_STDIN | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "source", "delimiter", set_delim, OFF(delimiter), F_BY_SECTION, 0, 0, "tab", NULL },
	{ "source", "format", set_enum, OFF(source_format), F_BY_SECTION, 0, 0, "tsv", source_formats },
	{ "source", "key", set_str, OFF(source_key), F_OPTIONAL | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "source", "follow", set_bool, OFF(follow), F_BY_SECTION, 0, 0, "no", NULL },
	{ "source", "dir", set_path, OFF(spool_dir), F_OPTIONAL | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "source", "pattern", set_str, OFF(spool_pattern), F_BY_SECTION, 0, 0, "*", NULL },
	{ "source", "after", set_enum, OFF(spool_after), F_BY_SECTION, 0, 0, "keep", spool_afters },
	{ "source", "done_dir", set_path, OFF(spool_done_dir), F_OPTIONAL | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "source", "max_event_size", set_size, OFF(max_event_size), F_BY_SECTION, 16, 16 * MB, "64K", NULL },
	{ "source", "events", set_num, OFF(gen_events), F_BY_SECTION, 1, 1000000000000ULL, "1000000", NULL },
	{ "source", "keys", set_num, OFF(gen_keys), F_BY_SECTION, 1, 1000000000ULL, "10000", NULL },
	{ "source", "seed", set_num, OFF(gen_seed), F_BY_SECTION, 0, UINT64_MAX, "42", NULL },
	{ "source", "skew", set_double, OFF(gen_skew), F_BY_SECTION, 0, 10, "0", NULL },
	{ "source", "bind", set_str, OFF(zmq_bind), F_OPTIONAL | F_ENDPOINT | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "source", "brokers", set_str, OFF(kafka_brokers), F_OPTIONAL | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "source", "topic", set_str, OFF(kafka_topic), F_OPTIONAL | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "source", "group", set_str, OFF(kafka_group), F_OPTIONAL | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "source", "on_data_loss", set_enum, OFF(on_data_loss), F_LIVE, 0, 0, "stop", data_loss_modes },
	{ "output", "type", set_enum, OFF(output_type), F_BY_SECTION, 0, 0, "file", output_types },
	{ "output", "dir", set_path, OFF(output_dir), F_BY_SECTION, 0, 0, "var/out", NULL },
	{ "output", "dead_letter", set_path, OFF(dead_letter), F_BY_SECTION, 0, 0, "var/dead_letter.tsv", NULL },
	{ "output", "connect", set_str, OFF(output_connect), F_OPTIONAL | F_ENDPOINT | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "output", "topic", set_str, OFF(output_topic), F_OPTIONAL | F_BY_SECTION, 0, 0, NULL, NULL },
	{ "store", "map_size", set_size, OFF(map_size), F_BY_SECTION, MB, 16 * TB, "1G", NULL },
	{ "store", "sync", set_enum, OFF(sync), F_BY_SECTION, 0, 0, "periodic", sync_modes },
	{ "store", "sync_interval", set_dur, OFF(sync_interval_ms), F_BY_SECTION, 1, HOUR, "1s", NULL },
	{ "control", "http", set_str, OFF(http), F_OPTIONAL, 0, 0, NULL, NULL },
	{ "restart", "backoff_initial", set_dur, OFF(backoff_initial_ms), F_LIVE, 1, HOUR, "100ms", NULL },
	{ "restart", "backoff_max", set_dur, OFF(backoff_max_ms), F_LIVE, 1, HOUR, "30s", NULL },
	{ "restart", "backoff_reset", set_dur, OFF(backoff_reset_ms), F_LIVE, 1, HOUR, "10s", NULL },
	{ "restart", "poison_after", set_num, OFF(poison_after), F_U32 | F_LIVE, 1, 100, "3", NULL },
	{ "restart", "fail_after", set_num, OFF(fail_after), F_U32 | F_LIVE, 1, 1000000, "100", NULL },
};
/* clang-format on */

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

/* For shell completion (ringmaster --list-settings): every setting as
 * "section.key", then a tab and its values when they are a closed set. */
void cfg_list_settings(FILE *f)
{
	static const char *const bools[] = {"yes", "no", NULL};
	static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *st = &settings[i];
		const char *const *names = st->set == set_bool	  ? bools
					   : st->set == set_level ? levels
								  : st->names;
		fprintf(f, "%s.%s", st->section, st->key);
		for (size_t k = 0; names && names[k]; k++)
			fprintf(f, "%c%s", k ? ' ' : '\t', names[k]);
		fputc('\n', f);
	}
}

enum line_kind { LINE_NONE, LINE_CONT, LINE_SECTION, LINE_BAD_SECTION, LINE_PAIR };

struct load {
	struct cfg cfg; /* being built; handed over only when complete */
	struct origin set[N_SETTINGS];
	struct entries params, kafka, tables;
	struct origin at; /* origin of the value being applied, for bad() */

	const char *path; /* as the user gave it, for messages */
	char *cwd, *dir;  /* absolute; dir is the file's directory */

	/* the reader, and its copy of inih's view of the current line */
	FILE *fp;
	char *buf;
	size_t buf_cap;
	unsigned line;
	int read_errno;
	char *section;	    /* current section, untruncated; NULL before any */
	bool section_ok;    /* known (errors were reported at its header) */
	bool prev_name_set; /* inih will treat an indented line as continuation */
	bool cont;	    /* the current line is a continuation */
	struct {	    /* a line too long for inih: its key and value */
		char *name, *value;
		bool set;
	} aside;

	/* A key = value line is applied only when the next line shows it has
	 * no continuation lines. */
	struct {
		char *key, *value;
		unsigned line;
	} pending;

	struct msg *msgs;
	size_t n_msgs, cap_msgs;
	bool oom;
};

/* ---- messages ---- */

static void push_msg(struct load *st, uint64_t order, char *text)
{
	if (st->n_msgs == st->cap_msgs) {
		size_t cap = st->cap_msgs ? 2 * st->cap_msgs : 8;
		struct msg *m = realloc(st->msgs, cap * sizeof(*m));
		if (!m) {
			free(text);
			st->oom = true;
			return;
		}
		st->msgs = m;
		st->cap_msgs = cap;
	}
	st->msgs[st->n_msgs] = (struct msg){order, st->n_msgs, text};
	st->n_msgs++;
}

/* "FILE:LINE", "-o SECTION.KEY=VALUE" or "FILE": what a message about a
 * value from `o` starts with; a default is "FILE (default)" in what is
 * kept for cfg_origin(), where it starts a message made later. NULL when
 * out of memory. */
static char *origin_text(const struct load *st, struct origin o, bool kept)
{
	char *text;
	int rc;

	if (o.override)
		rc = asprintf(&text, "-o %s", o.override);
	else if (o.line)
		rc = asprintf(&text, "%s:%u", st->path, o.line);
	else
		rc = asprintf(&text, kept ? "%s (default)" : "%s", st->path);
	return rc < 0 ? NULL : text;
}

static char *origin_kept(const struct load *st, struct origin o)
{
	return origin_text(st, o, true);
}

static void vreport(struct load *st, struct origin o, const char *fmt, va_list ap)
{
	char *msg, *where, *text;
	int rc = -1;

	if (vasprintf(&msg, fmt, ap) < 0) {
		st->oom = true;
		return;
	}
	where = origin_text(st, o, false);
	if (where)
		rc = asprintf(&text, "%s: %s", where, msg);
	free(where);
	free(msg);
	if (rc < 0) {
		st->oom = true;
		return;
	}
	push_msg(st, o.override ? 1ULL << 32 : o.line, text);
}

static void report(struct load *st, struct origin o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(struct load *st, struct origin o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(st, o, fmt, ap);
	va_end(ap);
}

/* "[section] key " + what was wrong, at the value being applied. Returns -1
 * so a setter can `return bad(...)`. */
static int bad(struct load *st, const struct setting *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct load *st, const struct setting *s, const char *fmt, ...)
{
	char *detail;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&detail, fmt, ap);
	va_end(ap);
	if (rc < 0) {
		st->oom = true;
		return -1;
	}
	report(st, st->at, "[%s] %s %s", s->section, s->key, detail);
	free(detail);
	return -1;
}

static int msg_cmp(const void *a, const void *b)
{
	const struct msg *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void errors_append(struct cfg_errors *errs, const char *text)
{
	size_t n = strlen(text);
	char *t = realloc(errs->text, errs->len + n + 2);

	errs->count++;
	if (!t)
		return; /* counted, so the caller still sees a failure */
	memcpy(t + errs->len, text, n);
	t[errs->len + n] = '\n';
	t[errs->len + n + 1] = '\0';
	errs->text = t;
	errs->len += n + 1;
}

/* Hand the messages over in file order: some are found late (inih reports
 * the first syntax error only when it is done). */
static void emit_errors(struct load *st, struct cfg_errors *errs)
{
	if (st->oom)
		report(st, (struct origin){0, NULL}, "out of memory");
	if (!errs)
		return;
	qsort(st->msgs, st->n_msgs, sizeof(st->msgs[0]), msg_cmp);
	for (size_t i = 0; i < st->n_msgs; i++)
		errors_append(errs, st->msgs[i].text);
	if (st->oom && !st->n_msgs)
		errs->count++; /* not even "out of memory" could be kept */
}

/* ---- value parsers ---- */

/* Leading decimal digits of *s into *out; advances *s. 0, -1 (no digit) or
 * -2 (does not fit in 64 bits). */
static int parse_digits(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -2;
		v = v * 10 + d;
	}
	*s = p;
	*out = v;
	return 0;
}

/* The parsers below return 0, -1 (malformed, reason in *why) or -2 (too
 * large), so a setter can report a range rather than a format. */
static int whole_number(const char *s, uint64_t *out, const char **why)
{
	int rc = parse_digits(&s, out);

	if (rc == -2)
		*why = "too large";
	else if (rc == -1 || *s)
		*why = "digits only";
	return rc ? rc : *s ? -1 : 0;
}

static int scaled(uint64_t n, uint64_t unit, uint64_t *out, const char **why)
{
	if (unit && n > UINT64_MAX / unit) {
		*why = "too large";
		return -2;
	}
	*out = n * unit;
	return 0;
}

static int size_value(const char *s, uint64_t *out, const char **why)
{
	static const char units[] = "KMGT";
	uint64_t n, unit = 1;
	const char *u;
	int rc = parse_digits(&s, &n);

	if (rc) {
		*why = rc == -1 ? "not a number" : "too large";
		return rc;
	}
	while (*s == ' ')
		s++;
	u = *s ? strchr(units, toupper((unsigned char)*s)) : NULL;
	if (u) {
		unit = 1ULL << (10 * (u - units + 1));
		s++;
		if (s[0] == 'i' && s[1] == 'B')
			s++;
	}
	if (*s == 'B')
		s++;
	if (*s) {
		*why = *s == '.' ? "not a whole number" : "bad unit; use K, M, G or T";
		return -1;
	}
	return scaled(n, unit, out, why);
}

static int duration_value(const char *s, uint64_t *out, const char **why)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {{"", SEC}, {"ms", 1}, {"s", SEC}, {"m", 60 * SEC}, {"h", HOUR}};
	uint64_t n;
	int rc = parse_digits(&s, &n);

	if (rc) {
		*why = rc == -1 ? "not a number" : "too large";
		return rc;
	}
	while (*s == ' ')
		s++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s, units[i].name) == 0)
			return scaled(n, units[i].ms, out, why);
	*why = *s == '.' ? "not a whole number" : "bad unit; use ms, s, m or h";
	return -1;
}

int cfg_parse_size(const char *s, uint64_t *out, const char **why)
{
	return size_value(s, out, why) ? -1 : 0;
}

int cfg_parse_duration_ms(const char *s, uint64_t *out, const char **why)
{
	return duration_value(s, out, why) ? -1 : 0;
}

int cfg_parse_bool(const char *s, int *out, const char **why)
{
	static const char *const words[] = {"no", "yes", "false", "true", "off", "on", "0", "1"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcasecmp(s, words[i]) == 0) {
			*out = (int)(i % 2);
			return 0;
		}
	}
	*why = "not a boolean";
	return -1;
}

/* ---- formatting bounds for messages ---- */

static void fmt_plain(uint64_t v, char *buf, size_t n)
{
	snprintf(buf, n, "%llu", (unsigned long long)v);
}

static void fmt_size(uint64_t v, char *buf, size_t n)
{
	int i = 0;

	while (i < 4 && v && v % 1024 == 0) {
		v /= 1024;
		i++;
	}
	if (i)
		snprintf(buf, n, "%llu%c", (unsigned long long)v, "KMGT"[i - 1]);
	else
		fmt_plain(v, buf, n);
}

static void fmt_duration(uint64_t ms, char *buf, size_t n)
{
	const char *unit = "ms";
	uint64_t v = ms;

	if (ms && ms % HOUR == 0)
		v = ms / HOUR, unit = "h";
	else if (ms && ms % (60 * SEC) == 0)
		v = ms / (60 * SEC), unit = "m";
	else if (ms && ms % SEC == 0)
		v = ms / SEC, unit = "s";
	snprintf(buf, n, "%llu%s", (unsigned long long)v, ms ? unit : "");
}

/* ---- paths ---- */

/* Remove empty, "." and ".." components from an absolute path, in place,
 * without asking the file system (the path need not exist yet). */
static void normalise(char *s)
{
	const char *in = s;
	size_t o = 0; /* s[0..o) is the result so far; 0 is the root */

	while (*in) {
		const char *c;
		size_t n;

		while (*in == '/')
			in++;
		for (c = in; *in && *in != '/'; in++)
			;
		n = (size_t)(in - c);
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			while (o > 0 && s[--o] != '/')
				;
			continue;
		}
		s[o++] = '/';
		memmove(s + o, c, n);
		o += n;
	}
	if (o == 0)
		s[o++] = '/';
	s[o] = '\0';
}

static char *absolute(const char *base, const char *p)
{
	char *s;
	int rc = p[0] == '/' ? asprintf(&s, "%s", p) : asprintf(&s, "%s/%s", base, p);

	if (rc < 0)
		return NULL;
	normalise(s);
	return s;
}

/* ---- setters: parse v into the setting's field, or report ---- */

static void *field_of(struct load *st, const struct setting *s)
{
	return (char *)&st->cfg + s->offset;
}

/* Replace *dst by fresh, which is NULL only if allocating it failed. */
static void replace(struct load *st, char **dst, char *fresh)
{
	if (!fresh) {
		st->oom = true;
		return;
	}
	free(*dst);
	*dst = fresh;
}

struct number_kind {
	int (*parse)(const char *s, uint64_t *out, const char **why);
	void (*format)(uint64_t v, char *buf, size_t n);
	const char *noun;
};

static int set_number(struct load *st, const struct setting *s, const char *v,
		      const struct number_kind *k)
{
	char lo[32], hi[32];
	const char *why = "";
	uint64_t x = 0;
	void *field = field_of(st, s);
	int rc = k->parse(v, &x, &why);

	if (rc == -1)
		return bad(st, s, "must be %s, got '%s' (%s)", k->noun, v, why);
	if (rc == -2 || x < s->min || x > s->max) {
		k->format(s->min, lo, sizeof(lo));
		k->format(s->max, hi, sizeof(hi));
		return bad(st, s, "must be %s..%s, got %s", lo, hi, v);
	}
	if ((s->flags & F_POW2) && (x & (x - 1)))
		return bad(st, s, "must be a power of two, got %s", v);
	if (s->flags & F_U32)
		*(uint32_t *)field = (uint32_t)x;
	else
		*(uint64_t *)field = x;
	return 0;
}

static int set_num(struct load *st, const struct setting *s, const char *v, const char *base)
{
	static const struct number_kind k = {whole_number, fmt_plain, "a whole number"};
	(void)base;
	return set_number(st, s, v, &k);
}

static int set_size(struct load *st, const struct setting *s, const char *v, const char *base)
{
	static const struct number_kind k = {size_value, fmt_size, "a size like 64K, 8M or 1G"};
	(void)base;
	return set_number(st, s, v, &k);
}

static int set_dur(struct load *st, const struct setting *s, const char *v, const char *base)
{
	static const struct number_kind k = {duration_value, fmt_duration,
					     "a duration like 250ms, 5s, 1m or 1h"};
	(void)base;
	return set_number(st, s, v, &k);
}

static int set_bool(struct load *st, const struct setting *s, const char *v, const char *base)
{
	const char *why;

	(void)base;
	if (cfg_parse_bool(v, field_of(st, s), &why) < 0)
		return bad(st, s, "must be yes/no, true/false, on/off or 1/0, got '%s'", v);
	return 0;
}

static int set_double(struct load *st, const struct setting *s, const char *v, const char *base)
{
	char *end;
	double x;

	(void)base;
	errno = 0;
	x = strtod(v, &end);
	if (!*v || *end || errno || !isfinite(x))
		return bad(st, s, "must be a number like 0.99, got '%s'", v);
	if (x < (double)s->min || x > (double)s->max)
		return bad(st, s, "must be %llu..%llu, got %s", (unsigned long long)s->min,
			   (unsigned long long)s->max, v);
	*(double *)field_of(st, s) = x;
	return 0;
}

static int set_enum(struct load *st, const struct setting *s, const char *v, const char *base)
{
	char list[128] = "";

	(void)base;
	for (int i = 0; s->names[i]; i++) {
		if (strcasecmp(v, s->names[i]) == 0) {
			*(int *)field_of(st, s) = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 s->names[i]);
	}
	return bad(st, s, "must be one of %s, got '%s'", list, v);
}

static int set_level(struct load *st, const struct setting *s, const char *v, const char *base)
{
	int level = log_level_parse(v);

	(void)base;
	if (level < 0)
		return bad(st, s, "must be one of error, warn, info, debug, got '%s'", v);
	*(int *)field_of(st, s) = level;
	return 0;
}

static int set_delim(struct load *st, const struct setting *s, const char *v, const char *base)
{
	static const struct {
		const char *word;
		char c;
	} words[] = {
	    {"tab", '\t'}, {"comma", ','}, {"space", ' '}, {"pipe", '|'}, {"semicolon", ';'}};
	char *field = field_of(st, s);

	(void)base;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcasecmp(v, words[i].word) == 0) {
			*field = words[i].c;
			return 0;
		}
	}
	if (strlen(v) != 1)
		return bad(st, s,
			   "must be one character or tab, comma, space, pipe, semicolon, got '%s'",
			   v);
	*field = v[0];
	return 0;
}

/* 1..max bytes, each a letter, a digit or one of `extra`. */
static bool valid_name(const char *v, const char *extra, size_t max)
{
	size_t n = strlen(v);

	if (n == 0 || n > max)
		return false;
	for (; *v; v++)
		if (!isalnum((unsigned char)*v) && !strchr(extra, *v))
			return false;
	return true;
}

/* Shared by the string and path setters: an empty value is "unset" for an
 * optional setting and an error for the others. Returns 1 when handled. */
static int empty_value(struct load *st, const struct setting *s, const char *v, char **field,
		       int *rc)
{
	if (*v)
		return 0;
	*rc = 0;
	if (s->flags & F_OPTIONAL) {
		free(*field);
		*field = NULL;
	} else {
		*rc = bad(st, s, "must not be empty");
	}
	return 1;
}

static int set_str(struct load *st, const struct setting *s, const char *v, const char *base)
{
	char **field = field_of(st, s);
	int rc;

	(void)base;
	if (empty_value(st, s, v, field, &rc))
		return rc;
	if ((s->flags & F_NAME) && !valid_name(v, "._-", NAME_MAX_LEN))
		return bad(st, s, "must be 1..%d characters of A-Z a-z 0-9 . _ -, got '%s'",
			   NAME_MAX_LEN, v);
	if ((s->flags & F_ENDPOINT) && !strstr(v, "://"))
		return bad(st, s, "must be a ZeroMQ endpoint like tcp://*:5555, got '%s'", v);
	replace(st, field, strdup(v));
	return 0;
}

static int set_path(struct load *st, const struct setting *s, const char *v, const char *base)
{
	char **field = field_of(st, s);
	int rc;

	if (empty_value(st, s, v, field, &rc))
		return rc;
	if ((s->flags & F_STDIN) && strcmp(v, "-") == 0)
		replace(st, field, strdup(v));
	else
		replace(st, field, absolute(base, v));
	return 0;
}

/* A built-in handler's name is kept as is; anything that looks like a file
 * (a '/', a .so or a .lua suffix) must be a shared object or a Lua script
 * and becomes a path. */
static int set_handler(struct load *st, const struct setting *s, const char *v, const char *base)
{
	size_t n = strlen(v);
	bool so = n > 3 && strcmp(v + n - 3, ".so") == 0;
	bool lua = n > 4 && strcmp(v + n - 4, ".lua") == 0;

	if (!*v)
		return bad(st, s, "must not be empty");
	if (so || lua)
		return set_path(st, s, v, base);
	if (strchr(v, '/') || !valid_name(v, "_-", NAME_MAX_LEN))
		return bad(st, s,
			   "must be a built-in handler like ledger or a path ending in .so or "
			   ".lua, got '%s'",
			   v);
	replace(st, field_of(st, s), strdup(v));
	return 0;
}

/* ---- free-form sections and tables ---- */

static struct entry *entry_find(struct entries *e, const char *key)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->v[i].key, key) == 0)
			return &e->v[i];
	return NULL;
}

static struct entry *entry_add(struct load *st, struct entries *e, const char *key)
{
	char *k = strdup(key);

	if (k && e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 8;
		struct entry *v = realloc(e->v, cap * sizeof(*v));
		if (!v) {
			free(k);
			k = NULL;
		} else {
			e->v = v;
			e->cap = cap;
		}
	}
	if (!k) {
		st->oom = true;
		return NULL;
	}
	e->v[e->n] = (struct entry){.key = k};
	return &e->v[e->n++];
}

/* Two settings of one key in the file are a mistake; -o replaces. */
static bool duplicate(struct load *st, struct origin *prev, struct origin o, const char *section,
		      const char *key)
{
	if (!prev->line || !o.line) {
		*prev = o;
		return false;
	}
	report(st, o, "duplicate key '%s' in [%s] (first set on line %u)", key, section,
	       prev->line);
	return true;
}

static void put_entry(struct load *st, struct entries *e, const char *section, const char *key,
		      const char *value, struct origin o)
{
	struct entry *x = entry_find(e, key);

	if (!x)
		x = entry_add(st, e, key);
	if (!x || duplicate(st, &x->set, o, section, key))
		return;
	replace(st, &x->value, strdup(value));
}

static void set_table_path(struct load *st, const char *section, const char *key, const char *value,
			   struct origin o, const char *base)
{
	struct entry *t = entry_find(&st->tables, section + strlen(TABLE_PREFIX));

	if (strcmp(key, "path") != 0) {
		report(st, o, "unknown key '%s' in [%s]", key, section);
		return;
	}
	if (!t || duplicate(st, &t->set, o, section, key))
		return;
	if (!*value)
		report(st, o, "[%s] path must not be empty", section);
	else
		replace(st, &t->value, absolute(base, value));
}

/* ---- sections and keys ---- */

enum section_kind { SEC_UNKNOWN, SEC_FIXED, SEC_HANDLER, SEC_KAFKA, SEC_TABLE, SEC_BAD_TABLE };

static enum section_kind section_kind(const char *name)
{
	size_t plen = strlen(TABLE_PREFIX);

	if (strcmp(name, "handler") == 0)
		return SEC_HANDLER;
	if (strcmp(name, "kafka") == 0)
		return SEC_KAFKA;
	if (strncmp(name, TABLE_PREFIX, plen) == 0)
		return valid_name(name + plen, "_", NAME_MAX_LEN) ? SEC_TABLE : SEC_BAD_TABLE;
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].section, name) == 0)
			return SEC_FIXED;
	return SEC_UNKNOWN;
}

/* Report a section we do not know; create a table's entry at its header so
 * a table without a path can be reported there. */
static bool check_section(struct load *st, const char *name, struct origin o)
{
	const char *table = name + strlen(TABLE_PREFIX);
	struct entry *t;

	switch (section_kind(name)) {
	case SEC_UNKNOWN:
		report(st, o, "unknown section [%s]", name);
		return false;
	case SEC_BAD_TABLE:
		report(st, o, "bad table name '%s' in [%s] (use 1..%d of A-Z a-z 0-9 _)", table,
		       name, NAME_MAX_LEN);
		return false;
	case SEC_TABLE:
		t = entry_find(&st->tables, table);
		if (!t)
			t = entry_add(st, &st->tables, table);
		if (t && !t->header)
			t->header = o.line;
		return t != NULL;
	default:
		return true;
	}
}

static const struct setting *find_setting(const char *section, const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

/* Apply one value from a line of the file or an override. The section has
 * been checked; relative paths are taken against `base`. */
static void apply(struct load *st, const char *section, const char *key, const char *value,
		  struct origin o, const char *base)
{
	const struct setting *s;

	switch (section_kind(section)) {
	case SEC_HANDLER:
		put_entry(st, &st->params, section, key, value, o);
		return;
	case SEC_KAFKA:
		put_entry(st, &st->kafka, section, key, value, o);
		return;
	case SEC_TABLE:
		set_table_path(st, section, key, value, o, base);
		return;
	default:
		break;
	}
	s = find_setting(section, key);
	if (!s) {
		report(st, o, "unknown key '%s' in [%s]", key, section);
		return;
	}
	if (duplicate(st, &st->set[s - settings], o, section, key))
		return;
	st->at = o;
	s->set(st, s, value, base);
}

static void apply_defaults(struct load *st)
{
	st->at = (struct origin){0, NULL};
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (settings[i].def)
			settings[i].set(st, &settings[i], settings[i].def, st->dir);
}

/* ---- reading the file ---- */

static void flush_pending(struct load *st)
{
	struct origin o = {st->pending.line, NULL};

	if (st->pending.key && st->pending.value) {
		if (!st->section)
			report(st, o, "key '%s' is outside any section", st->pending.key);
		else if (st->section_ok)
			apply(st, st->section, st->pending.key, st->pending.value, o, st->dir);
	}
	free(st->pending.key);
	free(st->pending.value);
	st->pending.key = st->pending.value = NULL;
}

static void section_begin(struct load *st, const char *name, size_t len)
{
	flush_pending(st); /* it belongs to the section we are leaving */
	free(st->section);
	st->section = strndup(name, len);
	st->prev_name_set = false;
	st->section_ok = false;
	if (!st->section)
		st->oom = true;
	else
		st->section_ok = check_section(st, st->section, (struct origin){st->line, NULL});
}

/* inih's find_chars_or_comment (r55, with inline comments): the first of
 * `chars` in s, or a ';' that follows whitespace, or the end. */
static char *ini_find(char *s, const char *chars)
{
	bool was_space = false;

	while (*s && (!chars || !strchr(chars, *s)) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

static void ini_rstrip(char *s)
{
	char *p = s + strlen(s);

	while (p > s && isspace((unsigned char)p[-1]))
		*--p = '\0';
}

static char *ini_lskip(char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

/* Classify the line (already stripped of trailing blanks, as inih strips
 * it) the way inih r55's ini_parse_stream will: a comment or blank line, a
 * continuation of the previous value (indented, after a key), a section
 * header (good or without its ']'), or a key = value line. Sections are
 * tracked here, untruncated. *startp is where the line's text starts. */
static enum line_kind track_line(struct load *st, char *line, char **startp)
{
	char *start = line, *end;

	if (st->line == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
		start += 3;
	start = ini_lskip(start);
	*startp = start;
	if (!*start || *start == ';' || *start == '#')
		return LINE_NONE;
	if (st->prev_name_set && start > line)
		return LINE_CONT;
	if (*start != '[')
		return LINE_PAIR;
	end = ini_find(start + 1, "]");
	if (*end != ']')
		return LINE_BAD_SECTION;
	section_begin(st, start + 1, (size_t)(end - start - 1));
	return LINE_SECTION;
}

static bool keep_aside(struct load *st, const char *name, const char *value)
{
	st->aside.name = name ? strdup(name) : NULL;
	st->aside.value = strdup(value);
	st->aside.set = st->aside.value && (!name || st->aside.name);
	if (!st->aside.set)
		st->oom = true;
	return st->aside.set;
}

/* A line longer than inih's buffer: split it here exactly as inih would,
 * keep its key and value aside for on_pair, and give inih a short line of
 * the same kind ("k=v", an indented "v", "[s]", ...) in str. `start` is
 * inside st->buf, which this may cut up. */
static void shorten(struct load *st, enum line_kind kind, char *start, char *str)
{
	char *end, *name, *value;
	const char *brief = "";

	switch (kind) {
	case LINE_NONE:
		break;
	case LINE_SECTION:
		brief = "[s]";
		break;
	case LINE_BAD_SECTION:
		brief = "[";
		break;
	case LINE_CONT:
		*ini_find(start, NULL) = '\0';
		ini_rstrip(start);
		brief = keep_aside(st, NULL, start) ? " v" : "";
		break;
	case LINE_PAIR:
		end = ini_find(start, "=:");
		if (*end != '=' && *end != ':') {
			brief = "x"; /* inih: a syntax error at this line */
			break;
		}
		*end = '\0';
		name = start;
		ini_rstrip(name);
		value = end + 1;
		*ini_find(value, NULL) = '\0';
		value = ini_lskip(value);
		ini_rstrip(value);
		if (keep_aside(st, name, value))
			brief = *name ? "k=v" : "=v";
		break;
	}
	strcpy(str, brief);
	strcat(str, "\n");
}

/* inih's reader: one whole line per call, so our line count is the real
 * one. inih holds at most num - 2 characters of a line; a longer one is
 * handed over shortened, its key and value kept aside (any length is
 * accepted). A NUL byte is reported, never silently cut at. */
static char *read_line(char *str, int num, void *stream)
{
	struct load *st = stream;
	enum line_kind kind;
	char *start;
	ssize_t n;

	free(st->aside.name);
	free(st->aside.value);
	st->aside.name = st->aside.value = NULL;
	st->aside.set = false;
	errno = 0;
	n = getline(&st->buf, &st->buf_cap, st->fp);
	if (n < 0) {
		if (!feof(st->fp))
			st->read_errno = errno ? errno : EIO;
		return NULL;
	}
	st->line++;
	st->cont = false;
	if (memchr(st->buf, '\0', (size_t)n)) {
		report(st, (struct origin){st->line, NULL}, "NUL byte in line");
		strcpy(str, "\n");
		return str;
	}
	/* inih strips trailing blanks (the newline among them) first too */
	while (n > 0 && isspace((unsigned char)st->buf[n - 1]))
		n--;
	st->buf[n] = '\0';
	kind = track_line(st, st->buf, &start);
	st->cont = kind == LINE_CONT;
	if (n > num - 2) {
		shorten(st, kind, start, str);
		return str;
	}
	memcpy(str, st->buf, (size_t)n);
	str[n] = '\n';
	str[n + 1] = '\0';
	return str;
}

/* inih's handler. `section` may be truncated and `name` is inih's copy of
 * the previous key on a continuation line, so we use our own; a long line's
 * key and value were kept aside by read_line. */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct load *st = user;
	char *joined;

	(void)section;
	if (st->aside.set) {
		value = st->aside.value;
		if (st->aside.name)
			name = st->aside.name;
	}
	if (st->cont) {
		if (!st->pending.key)
			return 1;
		if (asprintf(&joined, "%s%s%s", st->pending.value, *st->pending.value ? " " : "",
			     value) < 0)
			joined = NULL;
		replace(st, &st->pending.value, joined);
		return 1;
	}
	flush_pending(st);
	st->prev_name_set = *name != '\0';
	if (!*name) {
		report(st, (struct origin){st->line, NULL}, "syntax error: no key before '='");
		return 1;
	}
	st->pending.key = strdup(name);
	st->pending.value = strdup(value);
	st->pending.line = st->line;
	if (!st->pending.key || !st->pending.value)
		st->oom = true;
	return 1; /* our own errors are reported; inih's rc is syntax only */
}

static void parse_file(struct load *st)
{
	struct origin whole = {0, NULL};
	int rc;

	st->fp = fopen(st->path, "re");
	if (!st->fp) {
		report(st, whole, "cannot open: %s", strerror(errno));
		return;
	}
	rc = ini_parse_stream(read_line, st, on_pair, st);
	flush_pending(st);
	if (rc > 0)
		report(st, (struct origin){(unsigned)rc, NULL}, "syntax error");
	else if (rc < 0)
		st->oom = true; /* inih could not allocate its line buffer */
	if (st->read_errno)
		report(st, whole, "cannot read: %s", strerror(st->read_errno));
	fclose(st->fp);
	st->fp = NULL;
}

/* ---- overrides ---- */

static char *trim(char *s)
{
	char *end = s + strlen(s);

	while (isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Where "section.key" splits: at the last '.', so that table.rules.path
 * names [table.rules], except in the free-form sections, whose keys have
 * dots of their own (kafka.client.id, a librdkafka property). */
static char *section_dot(char *lhs)
{
	char *dot = strchr(lhs, '.');
	size_t n = dot ? (size_t)(dot - lhs) : 0;

	if (dot && !(n == 5 && strncmp(lhs, "kafka", n) == 0) &&
	    !(n == 7 && strncmp(lhs, "handler", n) == 0))
		dot = strrchr(lhs, '.');
	return dot;
}

static void apply_override(struct load *st, const char *text)
{
	struct origin o = {0, text};
	char *copy = strdup(text), *eq, *dot = NULL, *section, *key;

	if (!copy) {
		st->oom = true;
		return;
	}
	section = copy;
	eq = strchr(copy, '=');
	if (eq) {
		*eq = '\0';
		section = trim(copy);
		dot = section_dot(section);
	}
	if (dot)
		*dot = '\0';
	section = trim(section);
	key = dot ? trim(dot + 1) : NULL;
	if (!key || !*section || !*key)
		report(st, o, "expected section.key=value");
	else if (check_section(st, section, o))
		apply(st, section, key, trim(eq + 1), o, st->cwd);
	free(copy);
}

/* ---- checks across settings ---- */

static struct origin origin_of(struct load *st, const char *section, const char *key)
{
	return st->set[find_setting(section, key) - settings];
}

/* The first that was set explicitly, for a message about two settings. */
static struct origin either(struct origin a, struct origin b)
{
	return a.line || a.override ? a : b;
}

static void need(struct load *st, const char *section, const void *value, const char *type,
		 const char *what)
{
	if (!value)
		report(st, origin_of(st, section, "type"), "[%s] type %s needs %s", section, type,
		       what);
}

static void validate_sources(struct load *st)
{
	const struct cfg *c = &st->cfg;

	if (c->source_type == CFG_SOURCE_FILE)
		need(st, "source", c->source_path, "file",
		     "a path (a file, or - for standard input)");
	if (c->source_type == CFG_SOURCE_SPOOL) {
		need(st, "source", c->spool_dir, "spool", "dir, the directory of files to read");
		if (c->spool_after == CFG_AFTER_MOVE && !c->spool_done_dir)
			report(st, origin_of(st, "source", "after"),
			       "[source] after = move needs done_dir, the directory to move "
			       "each file to once its events are durable");
	}
	if (c->spool_pattern && strchr(c->spool_pattern, '/'))
		report(st, origin_of(st, "source", "pattern"),
		       "[source] pattern matches names in dir: it cannot hold '/', got '%s'",
		       c->spool_pattern);
	if (c->spool_done_dir &&
	    (c->source_type != CFG_SOURCE_SPOOL || c->spool_after != CFG_AFTER_MOVE))
		report(st, origin_of(st, "source", "done_dir"),
		       "[source] done_dir is where a spool's files go with after = move: it "
		       "needs type = spool and after = move");
	if (c->source_type == CFG_SOURCE_ZMQ)
		need(st, "source", c->zmq_bind, "zmq", "bind");
	if (c->source_type == CFG_SOURCE_KAFKA) {
		need(st, "source", c->kafka_brokers, "kafka", "brokers");
		need(st, "source", c->kafka_topic, "kafka", "topic");
		need(st, "source", c->kafka_group, "kafka", "group");
	}
	if (c->source_format == CFG_FORMAT_JSONL && !c->source_key)
		report(st, origin_of(st, "source", "format"),
		       "[source] format jsonl needs key, the top-level field that holds each "
		       "event's key (key = account)");
	if (c->source_format == CFG_FORMAT_TSV && c->source_key)
		report(st, origin_of(st, "source", "key"),
		       "[source] key names a JSON field: it needs format = jsonl");
	if (c->output_type == CFG_OUTPUT_ZMQ)
		need(st, "output", c->output_connect, "zmq", "connect");
	if (c->output_type == CFG_OUTPUT_KAFKA) {
		const void *brokers = c->kafka_brokers;

		if (!brokers)
			brokers = entry_find(&st->kafka, "bootstrap.servers");
		need(st, "output", c->output_topic, "kafka", "topic");
		need(st, "output", brokers, "kafka",
		     "brokers ([source] brokers or [kafka] bootstrap.servers)");
	}
}

int cfg_http_addr(const char *v, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(v, ':');
	if (!colon || colon == v || (size_t)(colon - v) >= sizeof(host))
		return -1;
	memcpy(host, v, (size_t)(colon - v));
	host[colon - v] = '\0';
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port == 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	size_t hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		return -1;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*len = sizeof(*a4);
	return 0;
}

static void validate(struct load *st)
{
	const struct cfg *c = &st->cfg;
	char a[32], b[32];
	struct sockaddr_storage http_ss;
	socklen_t http_len;

	validate_sources(st);
	if (c->http && cfg_http_addr(c->http, &http_ss, &http_len) != 0)
		report(st, origin_of(st, "control", "http"),
		       "[control] http must be ADDRESS:PORT with a numeric address "
		       "(127.0.0.1:9464, [::1]:9464), got '%s'",
		       c->http);
	if (c->backoff_initial_ms > c->backoff_max_ms) {
		fmt_duration(c->backoff_initial_ms, a, sizeof(a));
		fmt_duration(c->backoff_max_ms, b, sizeof(b));
		report(st,
		       either(origin_of(st, "restart", "backoff_initial"),
			      origin_of(st, "restart", "backoff_max")),
		       "[restart] backoff_initial (%s) must not exceed backoff_max (%s)", a, b);
	}
	/* A record must fit in a ring with room to spare, or one event could
	 * stall the ring. */
	if (c->max_event_size > c->ring_size / 4) {
		fmt_size(c->max_event_size, a, sizeof(a));
		fmt_size(c->ring_size, b, sizeof(b));
		report(st,
		       either(origin_of(st, "source", "max_event_size"),
			      origin_of(st, "worker", "ring_size")),
		       "[source] max_event_size (%s) must be at most a quarter of [worker] "
		       "ring_size (%s)",
		       a, b);
	}
	if (strlen(c->run_dir) > RUN_DIR_MAX)
		report(st, origin_of(st, "ringmaster", "run_dir"),
		       "[ringmaster] run_dir must be at most %zu characters (it holds the control "
		       "socket), got %zu",
		       RUN_DIR_MAX, strlen(c->run_dir));
	for (size_t i = 0; i < st->tables.n; i++)
		if (!st->tables.v[i].value)
			report(st, (struct origin){st->tables.v[i].header, NULL},
			       "[table.%s] needs a path", st->tables.v[i].key);
}

/* ---- building the result ---- */

/* Move the entries' strings into a new array of structs holding three
 * strings (struct cfg_kv, struct cfg_table): key, value and origin. */
static int move_entries(struct load *st, struct entries *e, size_t size, size_t key_off,
			size_t value_off, size_t origin_off, void **out, size_t *n)
{
	char *arr;

	if (!e->n)
		return 0;
	arr = calloc(e->n, size);
	if (!arr)
		return -1;
	*out = arr;
	*n = e->n;
	for (size_t i = 0; i < e->n; i++) {
		*(char **)(arr + i * size + key_off) = e->v[i].key;
		*(char **)(arr + i * size + value_off) = e->v[i].value;
		e->v[i].key = e->v[i].value = NULL;
	}
	e->n = 0;
	for (size_t i = 0; i < *n; i++)
		if (!(*(char **)(arr + i * size + origin_off) = origin_kept(st, e->v[i].set)))
			return -1;
	return 0;
}

static void finish(struct load *st)
{
	struct cfg *c = &st->cfg;

	if (move_entries(st, &st->params, sizeof(struct cfg_kv), offsetof(struct cfg_kv, key),
			 offsetof(struct cfg_kv, value), offsetof(struct cfg_kv, origin),
			 (void **)&c->params, &c->n_params) < 0 ||
	    move_entries(st, &st->kafka, sizeof(struct cfg_kv), offsetof(struct cfg_kv, key),
			 offsetof(struct cfg_kv, value), offsetof(struct cfg_kv, origin),
			 (void **)&c->kafka, &c->n_kafka) < 0 ||
	    move_entries(st, &st->tables, sizeof(struct cfg_table),
			 offsetof(struct cfg_table, name), offsetof(struct cfg_table, path),
			 offsetof(struct cfg_table, origin), (void **)&c->tables,
			 &c->n_tables) < 0) {
		st->oom = true;
		return;
	}
	c->origins = calloc(N_SETTINGS, sizeof(*c->origins));
	if (!c->origins) {
		st->oom = true;
		return;
	}
	c->n_origins = N_SETTINGS;
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (!(c->origins[i] = origin_kept(st, st->set[i])))
			st->oom = true;
}

static int setup_paths(struct load *st)
{
	char *slash;

	st->cwd = getcwd(NULL, 0);
	if (!st->cwd) {
		report(st, (struct origin){0, NULL}, "cannot find the current directory: %s",
		       strerror(errno));
		return -1;
	}
	st->cfg.file = absolute(st->cwd, st->path);
	st->dir = st->cfg.file ? strdup(st->cfg.file) : NULL;
	if (!st->dir) {
		st->oom = true;
		return -1;
	}
	slash = strrchr(st->dir, '/');
	slash[slash == st->dir] = '\0'; /* keep "/" for a file in the root */
	return 0;
}

static void entries_free(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].key);
		free(e->v[i].value);
	}
	free(e->v);
}

static void load_free(struct load *st)
{
	cfg_free(&st->cfg);
	entries_free(&st->params);
	entries_free(&st->kafka);
	entries_free(&st->tables);
	for (size_t i = 0; i < st->n_msgs; i++)
		free(st->msgs[i].text);
	free(st->msgs);
	free(st->cwd);
	free(st->dir);
	free(st->buf);
	free(st->section);
	free(st->pending.key);
	free(st->pending.value);
	free(st->aside.name);
	free(st->aside.value);
}

int cfg_load(const char *path, char *const *overrides, size_t n_overrides, struct cfg *out,
	     struct cfg_errors *errs)
{
	struct load st = {.path = path};
	int rc = -1;

	if (setup_paths(&st) < 0)
		goto out;
	apply_defaults(&st);
	parse_file(&st);
	for (size_t i = 0; i < n_overrides; i++)
		apply_override(&st, overrides[i]);
	/* Checks across settings only make sense once each one is valid. */
	if (!st.n_msgs && !st.oom)
		validate(&st);
	if (!st.n_msgs && !st.oom)
		finish(&st);
	if (!st.n_msgs && !st.oom) {
		*out = st.cfg;
		memset(&st.cfg, 0, sizeof(st.cfg));
		rc = 0;
	}
out:
	if (rc < 0)
		emit_errors(&st, errs);
	load_free(&st);
	return rc;
}

static void kv_free(struct cfg_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
		free(kv[i].origin);
	}
	free(kv);
}

/* ---- a setting's field, whatever its type ---- */

enum kind { K_STR, K_U32, K_U64, K_INT, K_CHAR, K_DOUBLE };

/* The type of the setting's field, from its parser (a new parser says its
 * type here). */
static enum kind kind_of(const struct setting *s)
{
	if (s->set == set_str || s->set == set_path || s->set == set_handler)
		return K_STR;
	if (s->set == set_bool || s->set == set_enum || s->set == set_level)
		return K_INT;
	if (s->set == set_delim)
		return K_CHAR;
	if (s->set == set_double)
		return K_DOUBLE;
	return s->flags & F_U32 ? K_U32 : K_U64;
}

static void *field_in(const struct cfg *c, const struct setting *s)
{
	return (char *)c + s->offset;
}

/* A number field as 64 bits (an int or a char sign-extended: it comes back
 * the same through number_put). Not for strings or doubles. */
static uint64_t number_get(const struct cfg *c, const struct setting *s)
{
	const void *f = field_in(c, s);
	int64_t signed_value;

	switch (kind_of(s)) {
	case K_U32:
		return *(const uint32_t *)f;
	case K_INT:
		signed_value = *(const int *)f;
		return (uint64_t)signed_value;
	case K_CHAR:
		signed_value = *(const char *)f;
		return (uint64_t)signed_value;
	default:
		return *(const uint64_t *)f;
	}
}

static void number_put(struct cfg *c, const struct setting *s, uint64_t v)
{
	void *f = field_in(c, s);

	switch (kind_of(s)) {
	case K_U32:
		*(uint32_t *)f = (uint32_t)v;
		break;
	case K_INT:
		*(int *)f = (int)(int64_t)v;
		break;
	case K_CHAR:
		*(char *)f = (char)(int64_t)v;
		break;
	default:
		*(uint64_t *)f = v;
		break;
	}
}

static bool field_differs(const struct cfg *a, const struct cfg *b, const struct setting *s)
{
	const char *x, *y;

	switch (kind_of(s)) {
	case K_STR:
		x = *(char **)field_in(a, s);
		y = *(char **)field_in(b, s);
		return (x || y) && (!x || !y || strcmp(x, y) != 0);
	case K_DOUBLE:
		return *(double *)field_in(a, s) != *(double *)field_in(b, s);
	default:
		return number_get(a, s) != number_get(b, s);
	}
}

void cfg_free(struct cfg *c)
{
	free(c->file);
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (kind_of(&settings[i]) == K_STR)
			free(*(char **)field_in(c, &settings[i]));
	kv_free(c->params, c->n_params);
	kv_free(c->kafka, c->n_kafka);
	for (size_t i = 0; i < c->n_tables; i++) {
		free(c->tables[i].name);
		free(c->tables[i].path);
		free(c->tables[i].origin);
	}
	free(c->tables);
	for (size_t i = 0; i < c->n_origins; i++)
		free(c->origins[i]);
	free(c->origins);
	memset(c, 0, sizeof(*c));
}

void cfg_errors_free(struct cfg_errors *errs)
{
	free(errs->text);
	memset(errs, 0, sizeof(*errs));
}

/* ---- reloads: live settings, and those that need a restart ---- */

void cfg_restart_notes(const struct cfg *running, const struct cfg *fresh, char *msg, size_t len)
{
	size_t used = strnlen(msg, len);
	const char *noted = NULL; /* the section reported as a whole last */
	char name[128];

	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		if ((s->flags & F_LIVE) || !field_differs(running, fresh, s))
			continue;
		if (!(s->flags & F_BY_SECTION))
			snprintf(name, sizeof(name), "[%s] %s", s->section, s->key);
		else if (noted && strcmp(noted, s->section) == 0)
			continue;
		else
			snprintf(name, sizeof(name), "[%s]", noted = s->section);
		if (used < len)
			used += (size_t)snprintf(msg + used, len - used,
						 "%s: needs restart, not applied\n", name);
	}
}

#define SWAP(a, b)                                                                                 \
	do {                                                                                       \
		__typeof__(a) tmp_ = (a);                                                          \
		(a) = (b);                                                                         \
		(b) = tmp_;                                                                        \
	} while (0)

void cfg_take_live(struct cfg *running, struct cfg *fresh)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];

		if (!(s->flags & F_LIVE))
			continue;
		if (kind_of(s) == K_STR)
			SWAP(*(char **)field_in(running, s), *(char **)field_in(fresh, s));
		else if (kind_of(s) == K_DOUBLE)
			*(double *)field_in(running, s) = *(double *)field_in(fresh, s);
		else
			number_put(running, s, number_get(fresh, s));
	}
	/* the free-form sections and the tables are live as a whole */
	SWAP(running->params, fresh->params);
	SWAP(running->n_params, fresh->n_params);
	SWAP(running->kafka, fresh->kafka);
	SWAP(running->n_kafka, fresh->n_kafka);
	SWAP(running->tables, fresh->tables);
	SWAP(running->n_tables, fresh->n_tables);
	SWAP(running->origins, fresh->origins); /* the file's line numbers as it is now */
	SWAP(running->n_origins, fresh->n_origins);
}

/* Whether `name` is "section.key" of the setting, as it is published. */
static bool published_as(const struct setting *s, const char *name)
{
	size_t n = strlen(s->section);

	return strncmp(name, s->section, n) == 0 && name[n] == '.' &&
	       strcmp(name + n + 1, s->key) == 0;
}

int cfg_live_pack(const struct cfg *c, char **buf, size_t *len)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	int failed;

	if (!f)
		return -1;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *s = &settings[i];
		const char *str;

		if (!(s->flags & F_LIVE))
			continue;
		switch (kind_of(s)) {
		case K_STR:
			str = *(char **)field_in(c, s);
			if (str)
				fprintf(f, "%s.%s%c%s%c", s->section, s->key, 0, str, 0);
			break;
		case K_DOUBLE:
			fprintf(f, "%s.%s%c%.17g%c", s->section, s->key, 0,
				*(double *)field_in(c, s), 0);
			break;
		default:
			fprintf(f, "%s.%s%c%llu%c", s->section, s->key, 0,
				(unsigned long long)number_get(c, s), 0);
			break;
		}
	}
	failed = ferror(f);
	if (fclose(f) != 0 || failed) {
		free(text);
		return -1;
	}
	*buf = text;
	*len = size;
	return 0;
}

/* The value of one published live setting into `c`. */
static int live_put(struct cfg *c, const struct setting *s, const char *value)
{
	char *end;
	unsigned long long v;
	double d;

	errno = 0;
	switch (kind_of(s)) {
	case K_STR:
		*(char **)field_in(c, s) = (char *)value; /* never written through */
		return 0;
	case K_DOUBLE:
		d = strtod(value, &end);
		if (!*value || *end || errno)
			return -1;
		*(double *)field_in(c, s) = d;
		return 0;
	default:
		v = strtoull(value, &end, 10);
		if (!*value || *end || errno)
			return -1;
		number_put(c, s, v);
		return 0;
	}
}

int cfg_live_unpack(struct cfg *c, const char *pairs, size_t len)
{
	struct cfg next = *c;

	/* a string not published was unset */
	for (size_t i = 0; i < N_SETTINGS; i++)
		if ((settings[i].flags & F_LIVE) && kind_of(&settings[i]) == K_STR)
			*(char **)field_in(&next, &settings[i]) = NULL;
	for (size_t off = 0; off < len;) {
		const char *key = pairs + off, *value;
		size_t key_len = strnlen(key, len - off);

		if (off + key_len + 1 >= len)
			return -1;
		value = key + key_len + 1;
		off += key_len + 1 + strnlen(value, len - off - key_len - 1) + 1;
		if (off > len)
			return -1; /* the last value is not NUL-terminated */
		for (size_t i = 0; i < N_SETTINGS; i++) {
			const struct setting *s = &settings[i];

			if ((s->flags & F_LIVE) && published_as(s, key) &&
			    live_put(&next, s, value) != 0)
				return -1;
		}
	}
	*c = next;
	return 0;
}

const char *cfg_param(const struct cfg *c, const char *name)
{
	for (size_t i = 0; i < c->n_params; i++)
		if (strcmp(c->params[i].key, name) == 0)
			return c->params[i].value;
	return NULL;
}

static const char *kv_origin(const struct cfg_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].origin;
	return NULL;
}

const char *cfg_origin(const struct cfg *c, const char *section, const char *key)
{
	const char *o = NULL;
	const struct setting *s;
	size_t plen = strlen(TABLE_PREFIX);

	if (strcmp(section, "handler") == 0) {
		o = kv_origin(c->params, c->n_params, key);
	} else if (strcmp(section, "kafka") == 0) {
		o = kv_origin(c->kafka, c->n_kafka, key);
	} else if (strncmp(section, TABLE_PREFIX, plen) == 0) {
		for (size_t i = 0; i < c->n_tables; i++)
			if (strcmp(c->tables[i].name, section + plen) == 0 &&
			    strcmp(key, "path") == 0)
				o = c->tables[i].origin;
	} else if ((s = find_setting(section, key)) && (size_t)(s - settings) < c->n_origins) {
		o = c->origins[s - settings];
	}
	return o ? o : "the configuration";
}
