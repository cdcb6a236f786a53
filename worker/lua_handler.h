/* lua_handler.h - handlers written in Lua and run by LuaJIT: `[worker]
 * handler = path.lua`. The script defines process(event) and, if it wants,
 * init() and fini(); it reaches the worker through the `rm` table, the same
 * calls as the C ABI (ringmaster.h). See ringmaster-lua(7).
 *
 * A script runs sandboxed (no io, os.execute, require, bytecode, ffi) unless
 * `[handler] lua_unsafe = yes`. An error in process dead-letters the event
 * as `lua_error` (the message and traceback go to the log); a call that
 * outlasts `[handler] lua_timeout` is stopped and its event dead-lettered as
 * `lua_timeout`; a state that would grow past `[handler] lua_memory` fails
 * the call as `lua_memory`. A dead-lettered event leaves no effect: its
 * state changes, output lines and counts are undone. */
#ifndef RM_LUA_HANDLER_H
#define RM_LUA_HANDLER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ringmaster.h"

struct cfg_kv;

/* One version of a script: its text and its content hash. */
struct lua_script {
	char *name; /* the path, for messages and chunk names */
	char *text;
	size_t len;
	uint64_t hash; /* FNV-1a of the text: the version `ringctl workers` shows */
};

/* Defaults of the [handler] settings the Lua runtime reads. */
#define LUA_DEFAULT_MEMORY (256ull << 20)
#define LUA_DEFAULT_TIMEOUT_MS 1000u

/* Read the script open on `fd` (from its start, with pread: the descriptor
 * is shared with other processes) into a new lua_script named `name`.
 * Returns it, or NULL with err filled. */
struct lua_script *lua_script_read(const char *name, int fd, char *err, size_t errlen);

/* A lua_script of `len` bytes at `text` (copied). NULL on ENOMEM. */
struct lua_script *lua_script_new(const char *name, const char *text, size_t len);
void lua_script_free(struct lua_script *s);

/* The version as text: 16 hex digits. */
void lua_script_version(const struct lua_script *s, char buf[17]);

/* The callbacks of every Lua handler (init is NULL: see lua_handler_start). */
extern const struct rm_handler lua_handler;

/* Make a Lua state for `s` in this worker, run the script's top level and
 * its init(), with the [handler] settings ctx serves (rm_param). Returns 0
 * and the state for lua_handler's callbacks in *state, or -1 with err
 * filled ("etc/x.lua:12: ..."). */
int lua_handler_start(const struct lua_script *s, rm_ctx *ctx, void **state, char *err,
		      size_t errlen);

/* One event of lua_handler_batch: the seq the script sees (a replayed
 * event's original one), and the ring's, for the worker's current_seq. */
struct lua_batch_ev {
	uint64_t seq, ring_seq;
	const char *key, *payload;
	uint32_t key_len, payload_len;
};

/* Run process over evs[0..n) in one call into Lua, storing each event's
 * ring_seq in *current_seq as it starts. Stops at the first event that does
 * not end RM_OK: *done is its index and the return is what lua_process
 * would have returned for it (RM_REJECT with the reason in ctx, as for a
 * lua_error, or RM_ERROR), its effects undone as there. When all end
 * RM_OK, *done is n and the return RM_OK. Each event is set up, timed,
 * capped and undone on its own, as with lua_handler.process. */
int lua_handler_batch(rm_ctx *ctx, void *state, const struct lua_batch_ev *evs, size_t n,
		      _Atomic uint64_t *current_seq, size_t *done);

/* What a call that outlasts its budget by as much again (JIT-compiled code
 * does not run the hook that stops it) does: fn(arg, seq of the event) from
 * the guard thread, which then ends the process. The worker points it at
 * its shared memory, so that the next worker dead-letters the event. */
void lua_handler_on_hard_timeout(void *state, void (*fn)(void *arg, uint64_t seq), void *arg);

/* Check that `s` compiles and runs its top level in a sandbox with the
 * given [handler] settings, and defines process: ringmaster -t, and the
 * supervisor before a reload tells any worker. With a ctx (the reload's
 * check child: it reads the config environment's tables), also run its
 * init(), as a worker would. Returns 0, or -1 with err filled with
 * file:line and the message. */
int lua_handler_check(const struct lua_script *s, const struct cfg_kv *params, size_t n_params,
		      rm_ctx *ctx, char *err, size_t errlen);

/* The [handler] settings the script says it reads: its top-level table
 * `params = {"tag", "limit"}`, as names one space apart in `out` (plus
 * the runtime's own: lua_unsafe, lua_timeout, lua_memory). Returns 1 when
 * it says, 0 when it has no such table (nothing can be checked), or -1
 * with err filled when the script does not load. */
int lua_handler_params(const struct lua_script *s, const struct cfg_kv *params, size_t n_params,
		       char *out, size_t out_len, char *err, size_t errlen);

/* For the trusted prelude only (lua_handler.c), which calls them through
 * LuaJIT's FFI, declared there with ffi.cdef: the rm.* calls a script makes
 * per event. They take the instance (lua_handler_start's state) and return
 * as the rm_* function of the same name does; state_put and state_del also
 * record the value they replace, so that a failed event is undone; emit
 * returns 1 for a line with a newline. */
struct lua_inst;
int rm_lua_state_get(struct lua_inst *h, const char *key, size_t n, struct rm_value *v);
int rm_lua_state_put(struct lua_inst *h, const char *key, size_t n, const char *val, size_t vn);
/* rm.state_getf: the key's value read by `fmt`, whose %d match integers
 * (`-?[0-9]+`, exact: within 2^53), %% a '%' and anything else itself, to
 * the value's end. Fills out[] with up to max_out numbers and returns how
 * many, or LUA_GETF_ABSENT (no such key), LUA_GETF_NO_MATCH, or a negative
 * errno. An unknown conversion is checked by the prelude. */
#define LUA_GETF_ABSENT (-1000)
#define LUA_GETF_NO_MATCH (-1001)
int rm_lua_state_getf(struct lua_inst *h, const char *key, size_t n, const char *fmt, double *out,
		      int max_out);
int rm_lua_state_del(struct lua_inst *h, const char *key, size_t n);
int rm_lua_table_get(struct lua_inst *h, const char *table, const char *key, size_t n,
		     struct rm_value *v);
int rm_lua_emit(struct lua_inst *h, const char *line, size_t n);
void rm_lua_reject(struct lua_inst *h, const char *reason);
void rm_lua_count(struct lua_inst *h, const char *name);
const char *rm_lua_param(struct lua_inst *h, const char *name);
/* The current event's key and payload as the prelude reads them, in place
 * (max_event_size is at most 16M: the lengths fit). ev.key and ev.payload
 * become Lua strings only when the script reads them; rm.payload_* read
 * the payload without one. Outside process both are "". */
struct rm_lua_event {
	const unsigned char *key, *payload;
	int32_t key_len, payload_len;
	double seq; /* ev.seq */
};
/* rm_lua_begin: the prelude's batch loop starts event i of the batch
 * lua_handler_batch runs (the per-event setup lua_process does). Returns 0,
 * or 1 when a call of the event before failed (ctx->failed): stop. */
int rm_lua_begin(struct lua_inst *h, int32_t i);
/* rm.payload_find: where the n bytes of s first occur in the payload at or
 * after byte from (0-based), 1-based; 0 when they do not. */
int32_t rm_lua_payload_find(const struct rm_lua_event *e, const char *s, size_t n, int32_t from);

#endif
