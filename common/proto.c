/* proto.c - the control protocol: the command table, the request parser,
 * and the renderers for reply bodies (see proto.h).
 *
 * The parser trusts nothing: the frame may be any bytes of any length, so
 * it checks the bytes first (printable ASCII, space, tab), and only then
 * splits and looks things up. Messages quote at most a short prefix of what
 * they got, so an error reply stays one short line whatever was sent. */
#include "proto.h"
#include "utf8.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

#define FMT_JSON ((1u << PROTO_FMT_TEXT) | (1u << PROTO_FMT_JSON))
#define FMT_ALL ((1u << PROTO_FMT_TEXT) | (1u << PROTO_FMT_JSON) | (1u << PROTO_FMT_TSV))
#define QUOTE_MAX 32 /* bytes of a bad token quoted in a message */
#define CELL_MAX 160 /* bytes of one table cell shown to people */
#define MAX_COLUMNS 32

static const struct proto_command commands[] = {
    {"status", PROTO_CMD_STATUS, 0, 0, PROTO_ARG_NONE, FMT_ALL, "status",
     "instance, state, config, source position and lag, totals"},
    {"workers", PROTO_CMD_WORKERS, 0, 0, PROTO_ARG_NONE, FMT_ALL, "workers",
     "per partition: pid, state, ring, events/s, lag, latency"},
    {"stages", PROTO_CMD_STAGES, 0, 0, PROTO_ARG_NONE, FMT_ALL, "stages",
     "where the time goes: stage shares, latency, hot keys, verdict"},
    {"metrics", PROTO_CMD_METRICS, 0, 0, PROTO_ARG_NONE, FMT_JSON, "metrics",
     "all of it in Prometheus text format"},
    {"reload", PROTO_CMD_RELOAD, 0, 0, PROTO_ARG_NONE, FMT_JSON, "reload",
     "re-read config and tables (SIGHUP); fails if bad"},
    {"stop", PROTO_CMD_STOP, 0, 0, PROTO_ARG_NONE, FMT_JSON, "stop", "stop gracefully (SIGTERM)"},
    {"restart-worker", PROTO_CMD_RESTART_WORKER, 1, 1, PROTO_ARG_PARTITION, FMT_JSON,
     "restart-worker N", "restart worker N gracefully"},
    {"replay", PROTO_CMD_REPLAY, 1, 1, PROTO_ARG_PATH, FMT_JSON, "replay FILE",
     "send a dead-letter file's events through again"},
    {"savepoint", PROTO_CMD_SAVEPOINT, 1, 1, PROTO_ARG_PATH, FMT_JSON, "savepoint DIR",
     "begin a savepoint into DIR (ringctl waits for it)"},
    {"savepoint-status", PROTO_CMD_SAVEPOINT_STATUS, 0, 0, PROTO_ARG_NONE, FMT_JSON,
     "savepoint-status", "the last savepoint: running, done or failed"},
    {"rescale", PROTO_CMD_RESCALE, 1, 1, PROTO_ARG_COUNT, FMT_JSON, "rescale N",
     "drain, re-split the state for N partitions, go on with N workers"},
    {"ping", PROTO_CMD_PING, 0, 0, PROTO_ARG_NONE, FMT_JSON, "ping",
     "check that the supervisor answers"},
    {"help", PROTO_CMD_HELP, 0, 0, PROTO_ARG_NONE, FMT_JSON, "help", "list the commands"},
};

static const char *const format_names[] = {"text", "--json", "--tsv"};

const struct proto_command *proto_commands(size_t *n)
{
	*n = sizeof(commands) / sizeof(commands[0]);
	return commands;
}

const struct proto_command *proto_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i].name) == len && memcmp(commands[i].name, name, len) == 0)
			return &commands[i];
	return NULL;
}

/* ---- parsing ---- */

struct token {
	const char *p;
	size_t len;
};

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* A request is printable ASCII, spaces and tabs: anything else is binary. */
static int check_bytes(const unsigned char *p, size_t len, char *err, size_t err_len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		if (c == ' ' || c == '\t' || (c > ' ' && c < 0x7f))
			continue;
		if (c == 0)
			return fail(err, err_len, "binary data in request: NUL byte at offset %zu",
				    i);
		return fail(err, err_len,
			    "binary data in request: byte 0x%02x at offset %zu "
			    "(a request is printable ASCII text)",
			    c, i);
	}
	return 0;
}

static size_t next_token(const char *p, size_t len, size_t at, struct token *t)
{
	while (at < len && (p[at] == ' ' || p[at] == '\t'))
		at++;
	t->p = p + at;
	while (at < len && p[at] != ' ' && p[at] != '\t')
		at++;
	t->len = (size_t)(p + at - t->p);
	return at;
}

static const char *ellipsis(const struct token *t)
{
	return t->len > QUOTE_MAX ? "..." : "";
}

static int parse_option(const struct proto_command *cmd, const struct token *t, int *have_format,
			struct proto_request *req, char *err, size_t err_len)
{
	enum proto_format f;
	if (t->len == 6 && memcmp(t->p, "--json", 6) == 0)
		f = PROTO_FMT_JSON;
	else if (t->len == 5 && memcmp(t->p, "--tsv", 5) == 0)
		f = PROTO_FMT_TSV;
	else
		return fail(err, err_len, "unknown option '%.*s%s' (options: --json, --tsv)",
			    (int)(t->len > QUOTE_MAX ? QUOTE_MAX : t->len), t->p, ellipsis(t));
	if (*have_format && req->format != f)
		return fail(err, err_len, "give one of --json and --tsv, not both");
	if (!(cmd->formats & (1u << f)))
		return fail(err, err_len, "'%s' has no %s form", cmd->name, format_names[f]);
	*have_format = 1;
	req->format = f;
	return 0;
}

static int parse_partition(const struct proto_command *cmd, unsigned i, unsigned partitions,
			   struct proto_request *req, char *err, size_t err_len)
{
	const char *a = req->argv[i];
	size_t len = strlen(a);
	uint64_t v = 0;
	if (len == 0 || len > 10 || strspn(a, "0123456789") != len)
		return fail(err, err_len, "'%s': N must be a partition number, got '%s'", cmd->name,
			    a);
	for (size_t k = 0; k < len; k++)
		v = v * 10 + (uint64_t)(a[k] - '0');
	if (partitions && v >= partitions)
		return fail(err, err_len, "'%s': no partition %llu (partitions are 0..%u)",
			    cmd->name, (unsigned long long)v, partitions - 1);
	if (v >= CFG_PARTITIONS_MAX)
		return fail(err, err_len, "'%s': no partition %llu (there are at most %u)",
			    cmd->name, (unsigned long long)v, CFG_PARTITIONS_MAX);
	req->value[i] = v;
	return 0;
}

static int parse_count(const struct proto_command *cmd, unsigned i, struct proto_request *req,
		       char *err, size_t err_len)
{
	const char *a = req->argv[i];
	size_t len = strlen(a);
	uint64_t v = 0;
	if (len == 0 || len > 10 || strspn(a, "0123456789") != len)
		return fail(err, err_len, "'%s': N must be a partition count, got '%s'", cmd->name,
			    a);
	for (size_t k = 0; k < len; k++)
		v = v * 10 + (uint64_t)(a[k] - '0');
	if (v == 0 || v > CFG_PARTITIONS_MAX)
		return fail(err, err_len, "'%s': N must be 1..%u, got %llu", cmd->name,
			    CFG_PARTITIONS_MAX, (unsigned long long)v);
	req->value[i] = v;
	return 0;
}

static int check_arg_count(const struct proto_command *cmd, unsigned n, char *err, size_t err_len)
{
	if (n >= cmd->min_args && n <= cmd->max_args)
		return 0;
	if (cmd->max_args == 0)
		return fail(err, err_len, "'%s' takes no arguments, got %u", cmd->name, n);
	if (cmd->min_args == cmd->max_args)
		return fail(err, err_len, "'%s' takes %u argument%s (usage: %s), got %u", cmd->name,
			    cmd->min_args, cmd->min_args == 1 ? "" : "s", cmd->usage, n);
	return fail(err, err_len, "'%s' takes %u to %u arguments (usage: %s), got %u", cmd->name,
		    cmd->min_args, cmd->max_args, cmd->usage, n);
}

/* Options and positional arguments after the command. */
static int parse_rest(const char *p, size_t len, size_t at, struct proto_request *req, char *err,
		      size_t err_len)
{
	const struct proto_command *cmd = req->cmd;
	int have_format = 0;
	unsigned n = 0;
	struct token t;
	while ((at = next_token(p, len, at, &t)), t.len > 0) {
		if (t.len >= 2 && t.p[0] == '-' && t.p[1] == '-') {
			if (parse_option(cmd, &t, &have_format, req, err, err_len) != 0)
				return -1;
			continue;
		}
		if (n < cmd->max_args && cmd->arg == PROTO_ARG_PATH) {
			if (t.len > PROTO_PATH_MAX || t.p[0] != '/')
				return fail(err, err_len,
					    "'%s': the path must be absolute and at most %u bytes",
					    cmd->name, PROTO_PATH_MAX);
			memcpy(req->path, t.p, t.len);
			req->path[t.len] = '\0';
		} else if (n < cmd->max_args && n < PROTO_MAX_ARGS) {
			if (t.len > PROTO_TOKEN_MAX)
				return fail(err, err_len,
					    "'%s': argument %u is too long (%zu bytes)", cmd->name,
					    n + 1, t.len);
			memcpy(req->argv[n], t.p, t.len);
			req->argv[n][t.len] = '\0';
		}
		n++;
	}
	if (check_arg_count(cmd, n, err, err_len) != 0)
		return -1;
	req->argc = n;
	return 0;
}

int proto_parse(const void *frame, size_t len, unsigned partitions, struct proto_request *req,
		char *err, size_t err_len)
{
	const char *p = frame;
	memset(req, 0, sizeof(*req));
	if (len == 0)
		return fail(err, err_len, "empty request (try 'help')");
	if (len > PROTO_MAX_REQUEST)
		return fail(err, err_len, "request too large: %zu bytes (at most %u)", len,
			    PROTO_MAX_REQUEST);
	if (check_bytes(frame, len, err, err_len) != 0)
		return -1;
	struct token t;
	size_t at = next_token(p, len, 0, &t);
	if (t.len == 0)
		return fail(err, err_len, "empty request: only blanks (try 'help')");
	req->cmd = proto_find(t.p, t.len);
	if (!req->cmd)
		return fail(err, err_len, "unknown command '%.*s%s' (try 'help')",
			    (int)(t.len > QUOTE_MAX ? QUOTE_MAX : t.len), t.p, ellipsis(&t));
	if (parse_rest(p, len, at, req, err, err_len) != 0)
		return -1;
	for (unsigned i = 0; i < req->argc; i++)
		if ((req->cmd->arg == PROTO_ARG_PARTITION &&
		     parse_partition(req->cmd, i, partitions, req, err, err_len) != 0) ||
		    (req->cmd->arg == PROTO_ARG_COUNT &&
		     parse_count(req->cmd, i, req, err, err_len) != 0))
			return -1;
	return 0;
}

/* ---- buffers ---- */

void proto_buf_init(struct proto_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void proto_buf_free(struct proto_buf *b)
{
	free(b->data);
	proto_buf_init(b);
}

static int reserve(struct proto_buf *b, size_t more)
{
	if (b->failed)
		return -1;
	if (b->len + more < b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap <= b->len + more)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d) {
		b->failed = 1;
		return -1;
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

void proto_buf_add(struct proto_buf *b, const char *s, size_t len)
{
	if (reserve(b, len) != 0)
		return;
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static void buf_vprintf(struct proto_buf *b, const char *fmt, va_list ap)
{
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	if (n >= 0 && reserve(b, (size_t)n) == 0) {
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, again);
		b->len += (size_t)n;
	}
	va_end(again);
}

void proto_buf_printf(struct proto_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

/* ---- JSON strings ---- */

void proto_json_string(struct proto_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	proto_buf_add(b, "\"", 1);
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			proto_buf_add(b, esc, 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			proto_buf_printf(b, "\\u%04x", c);
			i++;
		} else {
			size_t n = utf8_len(p + i, len - i);
			if (n == 0)
				proto_buf_add(b, "\\ufffd", 6);
			proto_buf_add(b, s + i, n);
			i += n ? n : 1;
		}
	}
	proto_buf_add(b, "\"", 1);
}

/* ---- values ---- */

void proto_human_secs(double secs, char *out, size_t size)
{
	if (!isfinite(secs) || secs < 0)
		snprintf(out, size, "-");
	else if (secs < 60)
		snprintf(out, size, "%.1fs", secs);
	else if (secs < 3600)
		snprintf(out, size, "%um%02us", (unsigned)(secs / 60), (unsigned)secs % 60);
	else if (secs < 86400)
		snprintf(out, size, "%uh%02um", (unsigned)(secs / 3600),
			 (unsigned)(secs / 60) % 60);
	else
		snprintf(out, size, "%llud%02uh", (unsigned long long)(secs / 86400),
			 (unsigned)(secs / 3600) % 24);
}

void proto_human_bytes(uint64_t v, char *out, size_t size)
{
	static const char units[] = "KMGTPE";
	if (v < 1024) {
		snprintf(out, size, "%llu", (unsigned long long)v);
		return;
	}
	double x = (double)v / 1024;
	unsigned u = 0;
	while (x >= 1024 && u < sizeof(units) - 2) {
		x /= 1024;
		u++;
	}
	snprintf(out, size, "%.1f%c", x, units[u]);
}

static int is_number(const struct proto_value *v)
{
	return v->type != PROTO_T_STR;
}

/* The text people see for a value (truncated to size). */
static void value_text(const struct proto_value *v, char *out, size_t size)
{
	switch (v->type) {
	case PROTO_T_STR:
		snprintf(out, size, "%s", v->s && v->s[0] ? v->s : "-");
		break;
	case PROTO_T_U64:
		snprintf(out, size, "%llu", (unsigned long long)v->u);
		break;
	case PROTO_T_F64:
		if (isfinite(v->f))
			snprintf(out, size, "%.1f", v->f);
		else
			snprintf(out, size, "-");
		break;
	case PROTO_T_SECS:
		proto_human_secs(v->f, out, size);
		break;
	case PROTO_T_BYTES:
		proto_human_bytes(v->u, out, size);
		break;
	}
}

static void value_json(struct proto_buf *b, const struct proto_value *v)
{
	switch (v->type) {
	case PROTO_T_STR:
		proto_json_string(b, v->s ? v->s : "", v->s ? strlen(v->s) : 0);
		break;
	case PROTO_T_U64:
	case PROTO_T_BYTES:
		proto_buf_printf(b, "%llu", (unsigned long long)v->u);
		break;
	case PROTO_T_F64:
	case PROTO_T_SECS:
		if (isfinite(v->f))
			proto_buf_printf(b, "%.3f", v->f);
		else
			proto_buf_add(b, "null", 4);
		break;
	}
}

/* TSV: raw numbers; text with tabs, newlines and control bytes blanked. */
static void value_tsv(struct proto_buf *b, const struct proto_value *v)
{
	if (v->type == PROTO_T_STR) {
		const char *s = v->s && v->s[0] ? v->s : "-";
		for (; *s; s++) {
			char c = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
			proto_buf_add(b, &c, 1);
		}
	} else if (v->type == PROTO_T_F64 || v->type == PROTO_T_SECS) {
		if (isfinite(v->f))
			proto_buf_printf(b, "%.3f", v->f);
		else
			proto_buf_add(b, "-", 1);
	} else {
		proto_buf_printf(b, "%llu", (unsigned long long)v->u);
	}
}

/* ---- records and tables ---- */

static void tsv_header(struct proto_buf *b, const struct proto_column *cols, size_t n)
{
	for (size_t i = 0; i < n; i++)
		proto_buf_printf(b, "%s%s", i ? "\t" : "", cols[i].name);
	proto_buf_add(b, "\n", 1);
}

static void tsv_row(struct proto_buf *b, const struct proto_value *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			proto_buf_add(b, "\t", 1);
		value_tsv(b, &vals[i]);
	}
	proto_buf_add(b, "\n", 1);
}

static void json_object(struct proto_buf *b, const struct proto_column *cols,
			const struct proto_value *vals, size_t n)
{
	proto_buf_add(b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			proto_buf_add(b, ",", 1);
		proto_json_string(b, cols[i].name, strlen(cols[i].name));
		proto_buf_add(b, ":", 1);
		value_json(b, &vals[i]);
	}
	proto_buf_add(b, "}", 1);
}

void proto_render_object(struct proto_buf *b, enum proto_format fmt,
			 const struct proto_column *cols, const struct proto_value *vals, size_t n)
{
	if (fmt == PROTO_FMT_JSON) {
		json_object(b, cols, vals, n);
		proto_buf_add(b, "\n", 1);
		return;
	}
	if (fmt == PROTO_FMT_TSV) {
		tsv_header(b, cols, n);
		tsv_row(b, vals, n);
		return;
	}
	int width = 0;
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(cols[i].title) > width)
			width = (int)strlen(cols[i].title);
	for (size_t i = 0; i < n; i++) {
		proto_buf_printf(b, "%s:%*s  ", cols[i].title, width - (int)strlen(cols[i].title),
				 "");
		if (vals[i].type == PROTO_T_STR) /* untruncated: paths can be long */
			proto_buf_printf(b, "%s\n", vals[i].s && vals[i].s[0] ? vals[i].s : "-");
		else {
			char text[CELL_MAX];
			value_text(&vals[i], text, sizeof(text));
			proto_buf_printf(b, "%s\n", text);
		}
	}
}

static void text_cell(struct proto_buf *b, const char *text, int width, int right, int last)
{
	int pad = width - (int)strlen(text);
	if (right)
		proto_buf_printf(b, "%*s%s", pad, "", text);
	else
		proto_buf_printf(b, "%s%*s", text, last ? 0 : pad, "");
	proto_buf_add(b, last ? "\n" : "  ", last ? 1 : 2);
}

static void text_table(struct proto_buf *b, const struct proto_column *cols, size_t ncols,
		       const struct proto_value *cells, size_t rows)
{
	int width[MAX_COLUMNS], right[MAX_COLUMNS];
	char text[CELL_MAX];
	for (size_t c = 0; c < ncols; c++) {
		width[c] = (int)strlen(cols[c].title);
		right[c] = rows > 0 && is_number(&cells[c]);
		for (size_t r = 0; r < rows; r++) {
			value_text(&cells[r * ncols + c], text, sizeof(text));
			if ((int)strlen(text) > width[c])
				width[c] = (int)strlen(text);
		}
	}
	for (size_t c = 0; c < ncols; c++)
		text_cell(b, cols[c].title, width[c], right[c], c + 1 == ncols);
	for (size_t r = 0; r < rows; r++) {
		for (size_t c = 0; c < ncols; c++) {
			value_text(&cells[r * ncols + c], text, sizeof(text));
			text_cell(b, text, width[c], right[c], c + 1 == ncols);
		}
	}
}

void proto_render_table(struct proto_buf *b, enum proto_format fmt, const struct proto_column *cols,
			size_t ncols, const struct proto_value *cells, size_t rows)
{
	if (ncols == 0 || ncols > MAX_COLUMNS) {
		b->failed = 1; /* a programming error: make it visible */
		return;
	}
	if (fmt == PROTO_FMT_TEXT) {
		text_table(b, cols, ncols, cells, rows);
	} else if (fmt == PROTO_FMT_TSV) {
		tsv_header(b, cols, ncols);
		for (size_t r = 0; r < rows; r++)
			tsv_row(b, &cells[r * ncols], ncols);
	} else {
		proto_buf_add(b, "[", 1);
		for (size_t r = 0; r < rows; r++) {
			if (r)
				proto_buf_add(b, ",", 1);
			json_object(b, cols, &cells[r * ncols], ncols);
		}
		proto_buf_add(b, "]\n", 2);
	}
}

void proto_render_help(struct proto_buf *b)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct proto_command *c = &commands[i];
		char usage[96];
		snprintf(usage, sizeof(usage), "%s%s", c->usage,
			 c->formats == FMT_ALL ? " [--json|--tsv]" : "");
		/* every command takes --json (ringctl --json): said once, in
		 * ringctl's usage, not on each line */
		proto_buf_printf(b, "  %-26s %s\n", usage, c->help);
	}
}
