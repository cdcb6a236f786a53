/* ringmaster.h - the handler ABI: how business logic plugs into ringmaster.
 *
 * A handler is a struct rm_handler: a built-in one (the "ledger" demo) or one
 * exported as `rm_handler_entry` by a shared object that `[worker] handler =
 * /path/to/handler.so` names. Each worker process runs its own instance, for
 * its own partition, one event at a time in the order the events arrived.
 *
 * A handler sees events, reference tables, per-key state and its output. It
 * never sees LMDB, rings or transactions: the worker runs a batch of events
 * through `process` and commits their state changes, output and progress
 * together, so a crash at any point neither loses nor repeats an effect.
 *
 * Everything a handler gets from these calls (events, table values, state
 * values) is read-only and stays valid until `process` returns, unless said
 * otherwise. No call here is thread-safe; a handler runs on one thread.
 *
 * Build a plugin with:
 *
 *   cc -shared -fPIC -o my_handler.so my_handler.c
 *
 * and see worker/handlers/example_counter.c for a complete one.
 */
#ifndef RINGMASTER_H
#define RINGMASTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever struct rm_handler or a call below changes incompatibly.
 * A plugin built against another version is refused at load. */
#define RM_ABI_VERSION 1

/* What `process` returns. */
enum rm_result {
	RM_OK = 0,     /* the event is done (whatever its business outcome) */
	RM_REJECT = 1, /* the event is bad: it goes to the dead-letter file with
			* the reason given to rm_reject(); processing goes on */
	RM_ERROR = 2,  /* something is wrong with the handler or its data: the
			* batch is abandoned (nothing of it is committed) and the
			* worker exits; it is restarted and the batch redone */
};

/* Log levels for rm_log. */
enum rm_log_level { RM_LOG_ERROR = 0, RM_LOG_WARN, RM_LOG_INFO, RM_LOG_DEBUG };

/* Return codes of the calls below. */
#define RM_FOUND 0
#define RM_NOTFOUND 1
/* Anything negative is an error (a negative errno value): return RM_ERROR. */

typedef struct rm_ctx rm_ctx; /* the worker's side; opaque */

/* One event. `key` and `payload` are not NUL-terminated. */
struct rm_event {
	uint64_t seq;	 /* position in the source: unique, increasing; a
			  * replayed dead letter has its original seq again */
	const char *key; /* 1..255 bytes */
	size_t key_len;
	const char *payload; /* 0..max_event_size bytes */
	size_t payload_len;
};

/* A value: a table row, a state value. Not NUL-terminated. */
struct rm_value {
	const char *data;
	size_t len;
};

struct rm_handler {
	int abi_version;  /* RM_ABI_VERSION */
	const char *name; /* shown in logs and `ps` */

	/* Called once per worker process before any event, after the worker has
	 * opened its stores. Returns 0, or non-zero to stop the worker (say why
	 * with rm_log). `*state` is the handler's private pointer, passed to the
	 * other callbacks. May be NULL. */
	int (*init)(rm_ctx *ctx, void **state);

	/* Handle one event. Returns an enum rm_result. Required. */
	int (*process)(rm_ctx *ctx, void *state, const struct rm_event *ev);

	/* Called once when the worker stops cleanly. May be NULL. */
	void (*fini)(rm_ctx *ctx, void *state);

	/* Called before the first event that runs under a new generation of the
	 * configuration (after a reload). May be NULL. */
	void (*on_reload)(rm_ctx *ctx, void *state, uint64_t generation);
};

/* A plugin exports its handler under this name:
 *   const struct rm_handler rm_handler_entry = { RM_ABI_VERSION, "x", ... };
 */
#define RM_HANDLER_SYMBOL "rm_handler_entry"

/* A plugin may also say which [handler] settings it reads (rm_param), so
 * that one it never reads (a typo: limt = 3) is warned about by
 * `ringmaster -t`, at start and at a reload that loads it:
 *   const char *const rm_handler_params[] = {"limit", "tag", NULL};
 * Without it, [handler] settings are not checked. */
#define RM_PARAMS_SYMBOL "rm_handler_params"

/* Look `key` up in reference table `table` (a [table.NAME] of the config).
 * Returns RM_FOUND and fills *val, RM_NOTFOUND (unknown key or unknown
 * table), or a negative error. */
int rm_table_get(rm_ctx *ctx, const char *table, const char *key, size_t key_len,
		 struct rm_value *val);

/* This partition's state for `key`. Returns RM_FOUND and fills *val,
 * RM_NOTFOUND, or a negative error. *val stays valid until the next
 * rm_state_put or rm_state_del of the same key, or the end of `process`. */
int rm_state_get(rm_ctx *ctx, const char *key, size_t key_len, struct rm_value *val);

/* Set or delete `key`'s state. The change is seen by later rm_state_get
 * calls at once and is committed with the rest of the batch. Returns 0 or a
 * negative error (-EINVAL for an empty key or one over 255 bytes, -ENOMEM). */
int rm_state_put(rm_ctx *ctx, const char *key, size_t key_len, const void *val, size_t val_len);
int rm_state_del(rm_ctx *ctx, const char *key, size_t key_len);

/* Append one line of output for this event (a newline is added; `line` must
 * not contain one). Committed with the batch. Returns 0 or a negative error. */
int rm_emit(rm_ctx *ctx, const char *line, size_t len);

/* Say why the event is rejected; use with `return RM_REJECT`. `reason` is a
 * short word (e.g. "malformed") and is copied. */
void rm_reject(rm_ctx *ctx, const char *reason);

/* Count a business outcome ("accepted", "insufficient_funds", ...) for the
 * end-of-run summary (stderr and ringmaster --summary) and, live, the
 * metrics (ringmaster_worker_outcomes_total{outcome}). At most 32 distinct
 * names per worker; further names are counted as "other". The count is
 * committed with the batch. */
void rm_count(rm_ctx *ctx, const char *outcome);

/* A [handler] setting of the config, or NULL. Valid until the next reload. */
const char *rm_param(rm_ctx *ctx, const char *name);

/* This worker's partition number and the number of partitions. */
unsigned rm_partition(rm_ctx *ctx);
unsigned rm_partitions(rm_ctx *ctx);

/* Write a record to the ringmaster log (role "worker/N"). */
void rm_log(rm_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
