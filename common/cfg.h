/* cfg.h - ringmaster's configuration: one INI file (parsed with inih) into
 * one typed struct with defaults.
 *
 * cfg_load builds a complete new struct cfg or fails; it never changes the
 * struct it was given on failure, so a reload can keep the old one (the nginx
 * habit). Every error names the file and line (or the -o override) and says
 * what was expected:
 *
 *   demo.ini:7: [worker] batch_max must be 1..1048576, got 0
 *
 * Sizes take units (K, M, G, T; powers of 1024, optional trailing B/iB),
 * durations take units (ms, s, m, h; a bare number is seconds), booleans are
 * yes/no/true/false/on/off/1/0.
 *
 * Relative paths in the file are resolved against the directory of the file;
 * relative paths given with -o against the current directory. Every path in a
 * loaded struct cfg is absolute.
 */
#ifndef RM_CFG_H
#define RM_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CFG_PARTITIONS_MAX 1024
#define CFG_BATCH_MAX_MAX 1048576

enum cfg_source_type {
	CFG_SOURCE_FILE,
	CFG_SOURCE_GENERATE,
	CFG_SOURCE_ZMQ,
	CFG_SOURCE_KAFKA,
	CFG_SOURCE_SPOOL
};
enum cfg_spool_after { CFG_AFTER_KEEP, CFG_AFTER_MOVE, CFG_AFTER_DELETE };
enum cfg_source_format { CFG_FORMAT_TSV, CFG_FORMAT_JSONL };
enum cfg_output_type { CFG_OUTPUT_FILE, CFG_OUTPUT_ZMQ, CFG_OUTPUT_NONE, CFG_OUTPUT_KAFKA };
enum cfg_sync { CFG_SYNC_NONE, CFG_SYNC_PERIODIC, CFG_SYNC_BATCH };
enum cfg_data_loss { CFG_DATA_LOSS_STOP, CFG_DATA_LOSS_CONTINUE };

/* A free-form name = value pair: [handler] params, [kafka] properties. */
struct cfg_kv {
	char *key;
	char *value;
	char *origin; /* where it was set, as cfg_origin() says; NULL if unknown */
};

/* [table.NAME] path = FILE */
struct cfg_table {
	char *name;
	char *path;
	char *origin; /* where path was set, as cfg_origin() says; NULL if unknown */
};

struct cfg {
	char *file; /* the INI file, absolute */

	/* [ringmaster] */
	char *name;		  /* instance name, default "ringmaster" */
	unsigned partitions;	  /* 1..1024, default 4 */
	char *data_dir;		  /* default "var/data" */
	char *run_dir;		  /* default "var/run" */
	int log_level;		  /* enum log_level; "error|warn|info|debug" */
	int log_format;		  /* enum log_format: logfmt | json */
	char *log_file;		  /* NULL = stderr */
	uint64_t stop_timeout_ms; /* default 10s */
	int strict_modes;	  /* refuse group/other-writable files, default yes */

	/* [worker] */
	uint32_t batch_max;   /* 1..1048576, default 4096 */
	uint64_t ring_size;   /* power of two, 64K..1G, default 8M */
	char *handler;	      /* "ledger" (built-in) or a path ending in .so */
	uint64_t watchdog_ms; /* default 30s */

	/* [source] */
	enum cfg_source_type source_type;     /* file | generate | zmq | kafka | spool */
	char *source_path;		      /* file: path or "-" for stdin */
	char delimiter;			      /* one byte, default '\t'; "tab", "comma", ... */
	enum cfg_source_format source_format; /* text lines: tsv | jsonl */
	char *source_key;		      /* jsonl: the field that holds the key */
	int follow;	     /* file: keep reading as it grows; spool: wait for files */
	char *spool_dir;     /* spool: the directory of files */
	char *spool_pattern; /* spool: the glob its files match, default "*" */
	enum cfg_spool_after spool_after; /* spool: keep | move | delete a file done */
	char *spool_done_dir;		  /* spool, after = move: where to */
	uint64_t max_event_size;	  /* default 64K, 16..16M */
	uint64_t gen_events;		  /* generate: default 1000000 */
	uint64_t gen_keys;		  /* generate: default 10000 */
	uint64_t gen_seed;		  /* generate: default 42 */
	double gen_skew;		  /* generate: 0 = uniform, else Zipf exponent */
	char *http;	/* [control] http: ADDRESS:PORT to serve metrics, or NULL */
	char *zmq_bind; /* zmq: endpoint to bind */
	char *kafka_brokers, *kafka_topic, *kafka_group;
	enum cfg_data_loss on_data_loss; /* Kafka events deleted unread: stop | continue */

	/* [output] */
	enum cfg_output_type output_type; /* file | zmq | none | kafka */
	char *output_dir;		  /* file: default "var/out" */
	unsigned output_layout;		  /* file: the names' generation (rescale.h) */
	char *dead_letter;		  /* default "var/dead_letter.tsv" */
	char *output_connect;		  /* zmq */
	char *output_topic;		  /* kafka */

	/* [store] */
	uint64_t map_size;	   /* default 1G */
	enum cfg_sync sync;	   /* none | periodic | batch, default periodic */
	uint64_t sync_interval_ms; /* default 1s */

	/* [restart] */
	uint64_t backoff_initial_ms; /* default 100ms */
	uint64_t backoff_max_ms;     /* default 30s */
	uint64_t backoff_reset_ms;   /* default 10s */
	unsigned poison_after;	     /* default 3 */
	unsigned fail_after;	     /* poison events in a row that fail a partition; default 100 */

	/* [handler] any key = value, for rm_param() */
	struct cfg_kv *params;
	size_t n_params;

	/* [kafka] any key = value, passed to librdkafka */
	struct cfg_kv *kafka;
	size_t n_kafka;

	/* [table.NAME] path = FILE */
	struct cfg_table *tables;
	size_t n_tables;

	/* Where each setting of the table in cfg.c came from (cfg_origin). */
	char **origins;
	size_t n_origins;
};

/* Error messages collected while loading, one per line. */
struct cfg_errors {
	char *text; /* NUL-terminated, '\n' after each message; NULL if none */
	size_t len;
	unsigned count;
};

/* Parse `path`, then apply `overrides` ("section.key=value", in order; a
 * later one wins), validate, and fill *out. Returns 0 on success. On any
 * error returns -1, leaves *out untouched, and appends every message found
 * (not just the first) to *errs. Free *out with cfg_free and *errs with
 * cfg_errors_free. */
int cfg_load(const char *path, char *const *overrides, size_t n_overrides, struct cfg *out,
	     struct cfg_errors *errs);

void cfg_free(struct cfg *c);

/* The configuration to use without -c: ./etc/ringmaster.ini when it
 * exists (a source tree), else cfg_installed_path(), which is
 * $(sysconfdir)/ringmaster/ringmaster.ini as `make install` put it
 * (compiled in as RM_SYSCONFDIR). */
const char *cfg_default_path(void);
const char *cfg_installed_path(void);

/* Print every setting of the table, one a line, as "section.key", with a
 * tab and its values, space-separated, when they are a closed set (enums,
 * booleans, log levels): what the bash completion offers after -o. The
 * free-form [handler], [kafka] and [table.NAME] keys are not listed. */
void cfg_list_settings(FILE *f);
/* [control] http's ADDRESS:PORT ("127.0.0.1:9464", "[::1]:9464": numeric,
 * no names to resolve) as a socket address. Returns 0, or -1 when it is
 * not one. */
int cfg_http_addr(const char *v, struct sockaddr_storage *ss, socklen_t *len);
void cfg_errors_free(struct cfg_errors *errs);

/* Where a setting's value came from, for a message about it made after the
 * load (a file that cannot be opened, a table row, a bind that fails):
 *
 *   "demo.ini:16"                 the line of the file that set it
 *   "-o source.path=/x"           the override that set it
 *   "demo.ini (default)"          neither: the default
 *
 * The file is named as it was given to cfg_load. section and key are as in
 * the file: ("source", "path"), ("table.rules", "path"), ("kafka",
 * "client.id"), ("handler", NAME). Never NULL: a struct cfg not made by
 * cfg_load, or a key it does not know, gives "the configuration". Valid
 * until cfg_free. Messages put it first: "ORIGIN: [section] key = value:
 * what went wrong". */
const char *cfg_origin(const struct cfg *c, const char *section, const char *key);

/* ---- reloads ----
 *
 * The table in cfg.c says of each setting whether a reload (SIGHUP,
 * ringctl reload) applies it to the running instance, "live" (log_level,
 * log_file, stop_timeout, strict_modes, batch_max, watchdog, [source]
 * on_data_loss, [restart]), or reports it as needing a restart (the rest).
 * [handler], [kafka] and the [table.NAME] paths are live as a whole. */

/* Append to `msg` (a string in a buffer of `len` bytes) one line for each
 * setting that needs a restart and differs between `running` and `fresh`,
 * in table order, "[ringmaster] partitions: needs restart, not applied";
 * [source], [output] and [store] are named once as a whole:
 * "[source]: needs restart, not applied". What does not fit is cut. */
void cfg_restart_notes(const struct cfg *running, const struct cfg *fresh, char *msg, size_t len);

/* Move every live setting, the live sections and the origins of `fresh`
 * into `running`. `fresh` is left with what `running` had, so cfg_free of
 * `fresh` frees the old values; what needs a restart stays as it was. */
void cfg_take_live(struct cfg *running, struct cfg *fresh);

/* The live settings of `c` as "section.key\0value\0" pairs
 * ("worker.batch_max", "4096"; numbers in decimal, an unset string left
 * out), for the supervisor to hand to its workers through the config
 * environment (store_config.c). *buf is malloc'd, *len bytes. Returns 0, or
 * -1 when out of memory. */
int cfg_live_pack(const struct cfg *c, char **buf, size_t *len);

/* Set the live settings of `c` from `len` bytes made by cfg_live_pack; a
 * live string not among them becomes NULL, a name not known is skipped.
 * Strings point into `pairs`, which must outlive their use; nothing is
 * freed. Returns 0, or -1 (c unchanged) when the pairs are malformed. */
int cfg_live_unpack(struct cfg *c, const char *pairs, size_t len);

/* Look up a [handler] parameter; NULL when absent. */
const char *cfg_param(const struct cfg *c, const char *name);

/* Value parsers, exposed for tests and for other modules (ringctl's options).
 * Each returns 0, or -1 with a short reason in `why` ("bad unit 'X'",
 * "not a number", ...). */
int cfg_parse_size(const char *s, uint64_t *out, const char **why);
int cfg_parse_duration_ms(const char *s, uint64_t *out, const char **why);
int cfg_parse_bool(const char *s, int *out, const char **why);

#endif
