/* proto.h - the control protocol spoken between ringctl and the supervisor,
 * and the renderers that turn the supervisor's figures into reply bodies.
 *
 * A request is one frame of printable ASCII text: a command and its
 * arguments separated by spaces or tabs, with at most one format option
 * anywhere after the command:
 *
 *   status
 *   workers --json
 *   restart-worker 3
 *
 * A reply is two frames: the status ("ok" or "error") and a body. An error
 * body is one line for people that names the problem. A successful body is
 * rendered by the supervisor in the format the request asked for, so that
 * clients never parse JSON:
 *
 *   (default)  an aligned table (or "name  value" lines) for people;
 *   --json     one JSON value (an object, or an array of objects);
 *   --tsv      a header line of field names, then one line per row, raw
 *              numbers, tab-separated: what ringctl top reads.
 *
 * The command table (proto_commands) is the one list of commands: the
 * supervisor serves it, ringctl checks requests against it before sending
 * and prints its help from it.
 *
 * Nothing here allocates except struct proto_buf, and nothing depends on
 * anything but libc, so the parser can be fuzzed alone (tests/fuzz). */
#ifndef RM_PROTO_H
#define RM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX_REQUEST 65536u /* bytes in a request frame */
#define PROTO_MAX_ARGS 4u	 /* arguments after the command */
#define PROTO_TOKEN_MAX 64u	 /* bytes in one command name or argument */
#define PROTO_PATH_MAX 4096u	 /* bytes in a path argument (PROTO_ARG_PATH) */
#define PROTO_ERR_LEN 256u	 /* room for a parse error message */

#define PROTO_STATUS_OK "ok"
#define PROTO_STATUS_ERROR "error"

enum proto_cmd_id {
	PROTO_CMD_HELP,
	PROTO_CMD_PING,
	PROTO_CMD_STATUS,
	PROTO_CMD_WORKERS,
	PROTO_CMD_METRICS,
	PROTO_CMD_RELOAD,
	PROTO_CMD_STOP,
	PROTO_CMD_RESTART_WORKER,
	PROTO_CMD_STAGES,
	PROTO_CMD_REPLAY,
	PROTO_CMD_SAVEPOINT,
	PROTO_CMD_SAVEPOINT_STATUS,
	PROTO_CMD_RESCALE,
};

enum proto_format { PROTO_FMT_TEXT, PROTO_FMT_JSON, PROTO_FMT_TSV };

/* What an argument must be. */
enum proto_arg {
	PROTO_ARG_NONE,
	PROTO_ARG_PARTITION, /* a decimal partition number below `partitions` */
	PROTO_ARG_PATH,	     /* an absolute path, up to PROTO_PATH_MAX bytes, in
			      * `path` (argv[0] stays empty) */
	PROTO_ARG_COUNT,     /* a partition count, 1..CFG_PARTITIONS_MAX */
};

struct proto_command {
	const char *name;
	enum proto_cmd_id id;
	unsigned min_args, max_args;
	enum proto_arg arg; /* the kind of every argument */
	unsigned formats;   /* bit (1 << PROTO_FMT_x) for each format served */
	const char *usage;  /* "restart-worker N" */
	const char *help;   /* one line */
};

/* A parsed request. Arguments are copied, so it does not point into the
 * frame. */
struct proto_request {
	const struct proto_command *cmd;
	enum proto_format format;
	unsigned argc;
	char argv[PROTO_MAX_ARGS][PROTO_TOKEN_MAX + 1];
	uint64_t value[PROTO_MAX_ARGS]; /* numeric arguments, parsed */
	char path[PROTO_PATH_MAX + 1];	/* a PROTO_ARG_PATH argument */
};

/* The command table, in the order help lists it; *n gets its length. */
const struct proto_command *proto_commands(size_t *n);

/* The command called name[0..len), or NULL. */
const struct proto_command *proto_find(const char *name, size_t len);

/* Parse and validate one request frame of `len` bytes (it need not be
 * NUL-terminated). `partitions` bounds partition arguments; 0 means not
 * known here (ringctl), and then only the configuration's limit applies.
 * Returns 0 and fills *req, or -1 with a message in err (PROTO_ERR_LEN
 * bytes is enough) for: an empty frame, a frame over PROTO_MAX_REQUEST, a
 * NUL or other byte that is not printable ASCII, space or tab, an unknown
 * command or option, a format the command does not serve, a wrong number
 * of arguments, or a bad argument. */
int proto_parse(const void *frame, size_t len, unsigned partitions, struct proto_request *req,
		char *err, size_t err_len);

/* ---- reply bodies ---- */

/* A growing text buffer. A failed allocation sets `failed` and makes every
 * later append a no-op, so a renderer checks once at the end. */
struct proto_buf {
	char *data; /* NUL-terminated while not failed */
	size_t len, cap;
	int failed;
};

void proto_buf_init(struct proto_buf *b);
void proto_buf_free(struct proto_buf *b);
void proto_buf_add(struct proto_buf *b, const char *s, size_t len);
void proto_buf_printf(struct proto_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* `s` as a JSON string, quotes included. Control characters are escaped;
 * bytes that are not valid UTF-8 become U+FFFD, so the output is always
 * valid JSON whatever the input. */
void proto_json_string(struct proto_buf *b, const char *s, size_t len);

/* One value of a report. */
enum proto_type {
	PROTO_T_STR, /* text; "-" in a table when empty */
	PROTO_T_U64,
	PROTO_T_F64,   /* one decimal for people; NaN and infinities are null in JSON */
	PROTO_T_SECS,  /* a duration in seconds: "3h04m", "2m05s", "4.2s" for people */
	PROTO_T_BYTES, /* a size in bytes: "512", "64.0K", "8.0M" for people */
};

struct proto_value {
	enum proto_type type;
	const char *s;
	uint64_t u;
	double f; /* F64 and SECS */
};

/* A column of a table, or a field of an object: `name` for JSON and TSV,
 * `title` for people. */
struct proto_column {
	const char *name;
	const char *title;
};

/* Render one record. Text: "title  value" lines, titles padded to one
 * width; JSON: one object; TSV: a header line of names and one line of
 * values. */
void proto_render_object(struct proto_buf *b, enum proto_format fmt,
			 const struct proto_column *cols, const struct proto_value *vals, size_t n);

/* Render `rows` records of `ncols` values each (row-major in `cells`).
 * Text: an aligned table with a title line, numbers right-aligned; JSON: an
 * array of objects; TSV: a header line of names, then one line per row. */
void proto_render_table(struct proto_buf *b, enum proto_format fmt, const struct proto_column *cols,
			size_t ncols, const struct proto_value *cells, size_t rows);

/* For people: a duration ("3h04m", "2m05s", "4.2s"; "-" when negative or
 * not finite) and a size ("512", "64.0K", "8.0M"), as the text renderers
 * show them. */
void proto_human_secs(double secs, char *out, size_t size);
void proto_human_bytes(uint64_t bytes, char *out, size_t size);

/* The command table as help text, one command a line. */
void proto_render_help(struct proto_buf *b);

#endif
