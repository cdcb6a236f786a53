/* lua_handler.c - Lua handlers (see lua_handler.h and ringmaster-lua(7)).
 *
 * Each worker runs its own LuaJIT state. The rm table is C closures over
 * the handler's instance, calling the same rm_* functions as a C handler,
 * so a Lua handler commits, dead-letters and recovers exactly like one.
 *
 * Three ways a script can go wrong without taking the worker down:
 *
 *   an error     process runs under lua_pcall with a traceback handler
 *                (the worker's call runs a batch's events in one: the
 *                error stops it, lua_handler_batch resumes after the event);
 *   memory       the state's allocator refuses to grow past lua_memory
 *                (where LuaJIT allows a custom allocator; where it does
 *                not, the state's size is checked after each call);
 *   time         a guard thread watches how long the current call has
 *                run (since it first saw it: a call only numbers itself,
 *                reading no clock). Past lua_timeout it sets a hook that
 *                raises an error at the next instruction the interpreter
 *                runs. A
 *                loop LuaJIT has compiled never runs the hook, so past
 *                twice the budget (and at least a second more) the guard
 *                ends the process, after telling the worker's shared
 *                memory which event to dead-letter next time.
 *
 * A failed or rejected event leaves no effect: every rm.state_put and
 * rm.state_del records the value it replaces, and the output and counts of
 * the batch are cut back to where the event began. */
#include "lua_handler.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

#include "cfg.h"
#include "ctx.h"
#include "json_arena.h"
#include "log.h"
#include "shm.h"

_Static_assert(CTX_EVREF_OK(struct lua_batch_ev), "ctx_ahead reads a Lua event's key and payload");

#define GRACE_NS 1000000000ull /* the hard stop comes at least this long after the budget */
#define REG_INST "ringmaster.inst"
/* rm.table_get keeps the rows it read in at most this share of lua_memory */
#define TABLE_CACHE_SHARE 16

/* The value one rm.state_put or rm.state_del replaced. */
struct undo {
	size_t key_off, key_len;
	int present;
	const char *val; /* in the LMDB map or ctx's arena: valid for the batch */
	size_t val_len;
};

struct lua_inst {
	lua_State *L;
	rm_ctx *ctx;
	char name[256];
	int ref_env, ref_process, ref_batch, ref_fini, ref_trace, ref_flush;
	struct rm_lua_event ev; /* the current event, read in place by the prelude */
	/* lua_handler_batch's events, and the one begun last (-1: none) */
	const struct lua_batch_ev *batch;
	size_t batch_n;
	struct ctx_ahead ahead; /* the batch's prefetching (ctx_ahead) */
	int32_t cur;
	_Atomic uint64_t *current_seq;
	uint64_t table_gen; /* the config generation rm.table_get's rows are of */

	/* memory */
	size_t mem, mem_cap;
	lua_Alloc alloc; /* LuaJIT's, which capped_alloc calls */
	void *alloc_ud;
	int mem_refused; /* the allocator refused: the error is lua_memory */

	/* time */
	uint64_t budget_ns;
	uint64_t calls;		  /* calls begun, counted by the worker's thread */
	_Atomic uint64_t in_call; /* the current call's number, 0 outside */
	_Atomic uint64_t in_seq;
	_Atomic uint64_t hooked_call; /* the call the hook was set for */
	_Atomic int hooked, timed_out, guard_stop;
	pthread_t guard;
	int guard_running;
	void (*hard_fn)(void *arg, uint64_t seq);
	void *hard_arg;

	/* undo of the current event */
	struct undo *undo;
	size_t n_undo, cap_undo;
	char *keys;
	size_t keys_len, keys_cap;
	size_t out_mark, lines_mark;
	/* The last rm.state_get of the event, which save_old need not repeat
	 * when the script then puts or deletes the same key, as it mostly does. */
	char got_key[255]; /* a state key is 1..255 bytes */
	size_t got_len;	   /* 0: none */
	struct rm_value got;
	int got_rc;
	int counted; /* counts saved in saved_counts */
	size_t saved_n_counts;
	uint64_t saved_counts[SHM_OUTCOMES];
	char last_error[512]; /* the first line of the last failed call's message */
};

struct settings {
	uint64_t memory, timeout_ms;
	int unsafe;
};

/* ---- scripts ---------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

struct lua_script *lua_script_new(const char *name, const char *text, size_t len)
{
	struct lua_script *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->name = strdup(name);
	s->text = malloc(len + 1);
	if (!s->name || !s->text) {
		lua_script_free(s);
		return NULL;
	}
	memcpy(s->text, text, len);
	s->text[len] = '\0';
	s->len = len;
	s->hash = fnv1a(text, len);
	return s;
}

void lua_script_free(struct lua_script *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->text);
	free(s);
}

void lua_script_version(const struct lua_script *s, char buf[17])
{
	snprintf(buf, 17, "%016llx", (unsigned long long)s->hash);
}

struct lua_script *lua_script_read(const char *name, int fd, char *err, size_t errlen)
{
	size_t len = 0, cap = 64 * 1024;
	char *buf = malloc(cap);
	struct lua_script *s = NULL;
	if (!buf)
		goto nomem;
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				goto nomem;
			buf = nb;
			cap *= 2;
		}
		ssize_t n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: cannot read: %s", name, strerror(errno));
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	s = lua_script_new(name, buf, len);
	free(buf);
	if (s)
		return s;
nomem:
	free(buf);
	snprintf(err, errlen, "%s: out of memory reading the script", name);
	return NULL;
}

/* ---- settings ----------------------------------------------------------------- */

typedef const char *(*param_fn)(void *arg, const char *name);

static const char *param_of_ctx(void *arg, const char *name)
{
	return rm_param(arg, name);
}

struct kv_list {
	const struct cfg_kv *kv;
	size_t n;
};

static const char *param_of_list(void *arg, const char *name)
{
	const struct kv_list *l = arg;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->kv[i].key, name) == 0)
			return l->kv[i].value;
	return NULL;
}

static int read_settings(param_fn get, void *arg, struct settings *st, char *err, size_t errlen)
{
	const char *v, *why;
	*st = (struct settings){LUA_DEFAULT_MEMORY, LUA_DEFAULT_TIMEOUT_MS, 0};
	if ((v = get(arg, "lua_memory")) &&
	    (cfg_parse_size(v, &st->memory, &why) != 0 || st->memory < (1u << 20))) {
		snprintf(err, errlen,
			 "[handler] lua_memory: must be a size of 1M or more, got '%s'", v);
		return -1;
	}
	if ((v = get(arg, "lua_timeout")) &&
	    (cfg_parse_duration_ms(v, &st->timeout_ms, &why) != 0 || st->timeout_ms < 1)) {
		snprintf(err, errlen,
			 "[handler] lua_timeout: must be a duration of 1ms or more, got '%s'", v);
		return -1;
	}
	if ((v = get(arg, "lua_unsafe")) && cfg_parse_bool(v, &st->unsafe, &why) != 0) {
		snprintf(err, errlen, "[handler] lua_unsafe: must be yes or no, got '%s'", v);
		return -1;
	}
	return 0;
}

/* ---- memory ------------------------------------------------------------------- */

/* LuaJIT's own allocator (lj_alloc) is much faster than malloc: keep it and
 * count around it. Lua assumes an allocator never fails to shrink; only
 * growth is refused. */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct lua_inst *h = ud;
	if (nsize > osize && h->mem + (nsize - osize) > h->mem_cap) {
		h->mem_refused = 1;
		return NULL;
	}
	void *p = h->alloc(h->alloc_ud, ptr, osize, nsize);
	if (p || nsize == 0)
		h->mem = h->mem - osize + nsize;
	return p;
}

/* ---- time --------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	return shm_now_ns();
}

static struct lua_inst *inst_of(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, REG_INST);
	struct lua_inst *h = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return h;
}

static void timeout_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	struct lua_inst *h = inst_of(L);
	uint64_t call = atomic_load(&h->in_call);
	lua_sethook(L, NULL, 0, 0);
	atomic_store(&h->hooked, 0);
	if (!call || call != atomic_load(&h->hooked_call))
		return; /* set late, for a call that has ended since */
	atomic_store(&h->timed_out, 1);
	luaL_error(L, "lua_timeout: the call ran for more than %llu ms (lua_timeout)",
		   (unsigned long long)(h->budget_ns / 1000000u));
}

static void *guard_main(void *arg)
{
	struct lua_inst *h = arg;
	uint64_t tick = h->budget_ns / 4;
	uint64_t hard =
	    2 * h->budget_ns > h->budget_ns + GRACE_NS ? 2 * h->budget_ns : h->budget_ns + GRACE_NS;
	if (tick < 1000000u)
		tick = 1000000u;
	if (tick > 100000000u)
		tick = 100000000u;
	struct timespec ts = {(time_t)(tick / 1000000000u), (long)(tick % 1000000000u)};
	uint64_t seen_call = 0, seen_at = 0;
	while (!atomic_load(&h->guard_stop)) {
		nanosleep(&ts, NULL);
		uint64_t call = atomic_load_explicit(&h->in_call, memory_order_acquire);
		if (!call)
			continue;
		/* ran counts from the first sight of the call: at most a tick
		 * short, so the budget is never cut, only overrun by a tick. */
		uint64_t now = now_ns();
		if (call != seen_call) {
			seen_call = call;
			seen_at = now;
			continue;
		}
		uint64_t ran = now - seen_at;
		if (ran > h->budget_ns && !atomic_exchange(&h->hooked, 1)) {
			atomic_store(&h->hooked_call, call);
			lua_sethook(h->L, timeout_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT,
				    100);
		}
		if (ran > hard) {
			uint64_t seq = atomic_load(&h->in_seq);
			log_error("%s: a call has run for %llu ms, past lua_timeout (%llu ms) "
				  "in code LuaJIT compiled, which cannot be interrupted: "
				  "ending the worker; the next one dead-letters seq=%llu as "
				  "lua_timeout",
				  h->name, (unsigned long long)(ran / 1000000u),
				  (unsigned long long)(h->budget_ns / 1000000u),
				  (unsigned long long)seq);
			if (h->hard_fn)
				h->hard_fn(h->hard_arg, seq);
			_exit(1);
		}
	}
	return NULL;
}

void lua_handler_on_hard_timeout(void *state, void (*fn)(void *arg, uint64_t seq), void *arg)
{
	struct lua_inst *h = state;
	h->hard_fn = fn;
	h->hard_arg = arg;
}

/* ---- the rm table ----------------------------------------------------------- */

static struct lua_inst *self(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

/* The calls below are made through LuaJIT's FFI by the trusted prelude
 * (lua_handler.h): the JIT compiler compiles an FFI call into the trace,
 * where a call through the Lua C API would end it. They must not raise Lua
 * errors; the prelude turns their return codes into errors. */

int rm_lua_state_get(struct lua_inst *h, const char *key, size_t n, struct rm_value *v)
{
	int rc = rm_state_get(h->ctx, key, n, v);
	h->got_len = 0;
	if (rc >= 0 && n > 0 && n <= sizeof(h->got_key)) {
		memcpy(h->got_key, key, n);
		h->got_len = n;
		h->got = *v;
		h->got_rc = rc;
	}
	return rc;
}

/* One %d of rm_lua_state_getf: `-?[0-9]+` at *p, at most 16 digits after
 * leading zeros and within 2^53, so that a double holds it exactly. Moves
 * *p past it. Returns 0, or -1 when there is none or it is too large. */
static int getf_int(const char **p, const char *end, double *out)
{
	const char *s = *p;
	int neg = s < end && *s == '-';
	s += neg;
	if (s == end || *s < '0' || *s > '9')
		return -1;
	uint64_t v = 0;
	int digits = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v || *s != '0')
			digits++;
		if (digits > 16)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > (1ull << 53))
		return -1;
	*out = neg ? -(double)v : (double)v;
	*p = s;
	return 0;
}

int rm_lua_state_getf(struct lua_inst *h, const char *key, size_t n, const char *fmt, double *out,
		      int max_out)
{
	struct rm_value v;
	int rc = rm_lua_state_get(h, key, n, &v);
	if (rc != RM_FOUND)
		return rc < 0 ? rc : LUA_GETF_ABSENT;
	const char *p = v.data, *end = v.data + v.len;
	int got = 0;
	for (const char *f = fmt; *f;) {
		if (f[0] == '%' && f[1] == 'd') {
			if (got == max_out || getf_int(&p, end, &out[got]) != 0)
				return LUA_GETF_NO_MATCH;
			got++;
			f += 2;
			continue;
		}
		/* a run of plain characters at once ("balance=" is one): %% is a '%' */
		size_t run = 1;
		if (f[0] == '%')
			f += f[1] == '%';
		else
			while (f[run] && f[run] != '%')
				run++;
		if ((size_t)(end - p) < run || memcmp(p, f, run) != 0)
			return LUA_GETF_NO_MATCH;
		p += run;
		f += run;
	}
	return p == end ? got : LUA_GETF_NO_MATCH;
}

/* Remember what `key` holds before this event changes it. */
static int save_old(struct lua_inst *h, const char *key, size_t n)
{
	struct rm_value v = {NULL, 0};
	int rc;
	if (h->got_len == n && memcmp(h->got_key, key, n) == 0) {
		v = h->got;
		rc = h->got_rc;
	} else if ((rc = rm_state_get(h->ctx, key, n, &v)) < 0) {
		return rc;
	}
	h->got_len = 0; /* the key changes now */
	if (h->n_undo == h->cap_undo) {
		size_t cap = h->cap_undo ? h->cap_undo * 2 : 16;
		struct undo *u = realloc(h->undo, cap * sizeof(*u));
		if (!u)
			return h->ctx->failed = -ENOMEM;
		h->undo = u;
		h->cap_undo = cap;
	}
	if (h->keys_cap - h->keys_len < n) {
		size_t cap = h->keys_cap ? h->keys_cap * 2 : 4096;
		while (cap - h->keys_len < n)
			cap *= 2;
		char *k = realloc(h->keys, cap);
		if (!k)
			return h->ctx->failed = -ENOMEM;
		h->keys = k;
		h->keys_cap = cap;
	}
	memcpy(h->keys + h->keys_len, key, n);
	h->undo[h->n_undo++] = (struct undo){h->keys_len, n, rc == RM_FOUND, v.data, v.len};
	h->keys_len += n;
	return 0;
}

int rm_lua_state_put(struct lua_inst *h, const char *key, size_t n, const char *val, size_t vn)
{
	int rc = save_old(h, key, n);
	return rc < 0 ? rc : rm_state_put(h->ctx, key, n, val, vn);
}

int rm_lua_state_del(struct lua_inst *h, const char *key, size_t n)
{
	int rc = save_old(h, key, n);
	return rc < 0 ? rc : rm_state_del(h->ctx, key, n);
}

int rm_lua_table_get(struct lua_inst *h, const char *table, const char *key, size_t n,
		     struct rm_value *v)
{
	return rm_table_get(h->ctx, table, key, n, v);
}

int rm_lua_emit(struct lua_inst *h, const char *line, size_t n)
{
	if (memchr(line, '\n', n))
		return 1;
	return rm_emit(h->ctx, line, n);
}

void rm_lua_reject(struct lua_inst *h, const char *reason)
{
	rm_reject(h->ctx, reason);
}

int32_t rm_lua_payload_find(const struct rm_lua_event *e, const char *s, size_t n, int32_t from)
{
	size_t len = (size_t)e->payload_len;
	if (from < 0 || (size_t)from > len)
		return 0;
	const unsigned char *p = e->payload, *at = memmem(p + from, len - (size_t)from, s, n);
	return at ? (int32_t)(at - p) + 1 : 0;
}

/* rm_count keeps the name's pointer until the counts are published: the
 * prelude keeps every name it has passed in a table, so it outlives the
 * event. */
void rm_lua_count(struct lua_inst *h, const char *name)
{
	if (!h->counted) {
		h->counted = 1;
		h->saved_n_counts = h->ctx->n_counts;
		for (size_t i = 0; i < h->ctx->n_counts; i++)
			h->saved_counts[i] = h->ctx->counts[i].n;
	}
	rm_count(h->ctx, name);
}

const char *rm_lua_param(struct lua_inst *h, const char *name)
{
	return rm_param(h->ctx, name);
}

static int l_log(lua_State *L)
{
	struct lua_inst *h = self(L);
	static const char *const levels[] = {"error", "warn", "info", "debug", NULL};
	int level = lua_type(L, 1) == LUA_TNUMBER ? (int)lua_tointeger(L, 1)
						  : luaL_checkoption(L, 1, NULL, levels);
	if (level < RM_LOG_ERROR || level > RM_LOG_DEBUG)
		return luaL_error(L, "rm.log: no level %d", level);
	rm_log(h->ctx, level, "%s", luaL_checkstring(L, 2));
	return 0;
}

static int l_partition(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)rm_partition(self(L)->ctx));
	return 1;
}

static int l_partitions(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)rm_partitions(self(L)->ctx));
	return 1;
}

/* rm.json_members(text): the members of a JSON object, in order, as a flat
 * list name, kind, value, name, kind, value...; nil when the text is not
 * exactly one valid JSON object. kind is "string", "number", "object",
 * "array", "boolean" or "null"; value is the string's text, the number as
 * written, or nil for the others. */
struct json_walk {
	lua_State *L;
	unsigned depth;
	int n; /* list entries so far */
};

static void json_put(struct json_walk *j, const char *kind, const char *s, size_t n)
{
	lua_State *L = j->L;
	lua_pushstring(L, kind);
	lua_rawseti(L, -2, ++j->n);
	if (s)
		lua_pushlstring(L, s, n);
	else
		lua_pushboolean(L, 0);
	lua_rawseti(L, -2, ++j->n);
}

static int json_scalar(struct json_walk *j, const char *kind, const char *s, size_t n)
{
	if (j->depth == 0)
		return 0; /* the top level must be an object */
	if (j->depth == 1)
		json_put(j, kind, s, n);
	return 1;
}

static int jw_null(void *c)
{
	return json_scalar(c, "null", NULL, 0);
}

static int jw_bool(void *c, int b)
{
	(void)b;
	return json_scalar(c, "boolean", NULL, 0);
}

static int jw_number(void *c, const char *s, size_t n)
{
	return json_scalar(c, "number", s, n);
}

static int jw_string(void *c, const unsigned char *s, size_t n)
{
	return json_scalar(c, "string", (const char *)s, n);
}

static int jw_start(struct json_walk *j, const char *kind)
{
	if (j->depth == 1)
		json_put(j, kind, NULL, 0);
	if (j->depth == 0 && kind[0] == 'a')
		return 0; /* the top level must be an object */
	j->depth++;
	return 1;
}

static int jw_start_map(void *c)
{
	return jw_start(c, "object");
}

static int jw_start_array(void *c)
{
	return jw_start(c, "array");
}

static int jw_end(void *c)
{
	((struct json_walk *)c)->depth--;
	return 1;
}

static int jw_key(void *c, const unsigned char *s, size_t n)
{
	struct json_walk *j = c;
	if (j->depth == 1) {
		lua_pushlstring(j->L, (const char *)s, n);
		lua_rawseti(j->L, -2, ++j->n);
	}
	return 1;
}

static const yajl_callbacks walk_callbacks = {
    .yajl_null = jw_null,
    .yajl_boolean = jw_bool,
    .yajl_number = jw_number,
    .yajl_string = jw_string,
    .yajl_start_map = jw_start_map,
    .yajl_map_key = jw_key,
    .yajl_end_map = jw_end,
    .yajl_start_array = jw_start_array,
    .yajl_end_array = jw_end,
};

static int l_json_members(lua_State *L)
{
	size_t len;
	const char *text = luaL_checklstring(L, 1, &len);
	struct json_arena arena;
	yajl_alloc_funcs af = json_arena_funcs(&arena);
	struct json_walk j = {.L = L};
	lua_newtable(L);
	yajl_handle y = yajl_alloc(&walk_callbacks, &af, &j);
	if (!y)
		return luaL_error(L, "rm.json_members: out of memory");
	int ok = yajl_parse(y, (const unsigned char *)text, len) == yajl_status_ok &&
		 yajl_complete_parse(y) == yajl_status_ok;
	yajl_free(y);
	if (!ok)
		lua_pushnil(L);
	return 1;
}

static const luaL_Reg rm_funcs[] = {
    {"log", l_log},
    {"partition", l_partition},
    {"partitions", l_partitions},
    {"json_members", l_json_members},
    {NULL, NULL},
};

/* The trusted prelude, run before the sandbox with the instance and the rm
 * table as arguments: it adds the per-event calls as Lua functions over FFI
 * calls (the rm_lua_* functions above), which LuaJIT compiles into the
 * script's traces. The script never sees ffi: only these closures. A
 * negative return is a call the worker could not do (ctx->failed is set):
 * the worker gives the batch up, as for a C handler; the error only unwinds
 * the script. It returns the maker of the functions the worker calls, for
 * one event or a batch's (a C-to-Lua call per event was about 300
 * instructions), which refill one event table rather than making a new one: every
 * object a script makes per event costs its allocation and its share of
 * the garbage collector, and that is most of what separates a Lua handler
 * from a C one. */
/* rm.state_getf in the prelude tests for these codes by value */
_Static_assert(LUA_GETF_ABSENT == -1000 && LUA_GETF_NO_MATCH == -1001, "rm.state_getf's codes");
static const char prelude_lua[] =
    "local h, rm, cache_bytes, E = ...\n"
    "local REJECT = rm.REJECT\n"
    "local ffi = require('ffi')\n"
    "ffi.cdef[[\n"
    "struct rm_value { const char *data; size_t len; };\n"
    "struct lua_inst;\n"
    "int rm_lua_state_get(struct lua_inst *, const char *, size_t, struct rm_value *);\n"
    "int rm_lua_state_put(struct lua_inst *, const char *, size_t, const char *, size_t);\n"
    "int rm_lua_state_del(struct lua_inst *, const char *, size_t);\n"
    "int rm_lua_state_getf(struct lua_inst *, const char *, size_t, const char *, double *,\n"
    "                      int);\n"
    "int rm_lua_table_get(struct lua_inst *, const char *, const char *, size_t,\n"
    "                     struct rm_value *);\n"
    "int rm_lua_emit(struct lua_inst *, const char *, size_t);\n"
    "void rm_lua_reject(struct lua_inst *, const char *);\n"
    "void rm_lua_count(struct lua_inst *, const char *);\n"
    "const char *rm_lua_param(struct lua_inst *, const char *);\n"
    "char *strerror(int);\n"
    "struct rm_lua_event { const unsigned char *key, *payload; int32_t key_len, payload_len;\n"
    "  double seq; };\n"
    "int rm_lua_begin(struct lua_inst *, int32_t);\n"
    "int32_t rm_lua_payload_find(const struct rm_lua_event *, const char *, size_t, int32_t);\n"
    "]]\n"
    "local C, str, type, tostring, error, select, pcall = ffi.C, ffi.string, type, tostring,\n"
    "  error, select, pcall\n"
    "-- OpenResty's settings: room for the many short traces of string code\n"
    "require('jit.opt').start('maxtrace=8000', 'maxrecord=16000', 'minstitch=3',\n"
    "  'maxmcode=40960')\n"
    "h = ffi.cast('struct lua_inst *', h)\n"
    "E = ffi.cast('const struct rm_lua_event *', E)\n"
    "local v = ffi.new('struct rm_value')\n"
    "-- rm.emit joins its pieces here: a Lua string would be interned for nothing\n"
    "local line = require('string.buffer').new()\n"
    "local names = {}\n"
    "local function arg(x, i, f)\n"
    "  local t = type(x)\n"
    "  if t == 'string' then return x end\n"
    "  if t == 'number' then return tostring(x) end\n"
    "  error(\"bad argument #\" .. i .. \" to '\" .. f .. \"' (string expected, got \" .. t ..\n"
    "        ')', 3)\n"
    "end\n"
    "local function failed(f, rc) error(f .. ' failed: ' .. str(C.strerror(-rc)), 3) end\n"
    "local function key_size(f, n)\n"
    "  if n == 0 or n > 255 then error(f .. ': a key is 1..255 bytes, got ' .. n, 3) end\n"
    "end\n"
    "function rm.state_get(key)\n"
    "  key = arg(key, 1, 'state_get')\n"
    "  local rc = C.rm_lua_state_get(h, key, #key, v)\n"
    "  if rc == 0 then return str(v.data, v.len) end\n"
    "  if rc < 0 then failed('rm.state_get', rc) end\n"
    "  return nil\n"
    "end\n"
    "-- rm.state_getf's numbers: at most GETF_MAX, returned without a table\n"
    "local GETF_MAX = 8\n"
    "local nums = ffi.new('double[?]', GETF_MAX)\n"
    "local function values(i, n)\n"
    "  if i < n then return nums[i], values(i + 1, n) end\n"
    "end\n"
    "local checked, n_checked = {}, 0 -- formats seen good\n"
    "local function getf_format(fmt)\n"
    "  if checked[fmt] then return fmt end\n"
    "  if fmt:find('\\0', 1, true) then error('rm.state_getf: a format has no NUL', 3) end\n"
    "  local n = 0\n"
    "  for c in fmt:gmatch('%%(.?)') do\n"
    "    if c == 'd' then n = n + 1\n"
    "    elseif c ~= '%' then\n"
    "      error(\"rm.state_getf: bad format '\" .. fmt .. \"': only %d and %% convert\", 3)\n"
    "    end\n"
    "  end\n"
    "  if n > GETF_MAX then error('rm.state_getf: at most ' .. GETF_MAX .. ' %d', 3) end\n"
    "  if n_checked == 256 then checked, n_checked = {}, 0 end\n"
    "  checked[fmt], n_checked = true, n_checked + 1\n"
    "  return fmt\n"
    "end\n"
    "function rm.state_getf(key, fmt)\n"
    "  key = arg(key, 1, 'state_getf')\n"
    "  fmt = getf_format(arg(fmt, 2, 'state_getf'))\n"
    "  local rc = C.rm_lua_state_getf(h, key, #key, fmt, nums, GETF_MAX)\n"
    "  if rc >= 0 then\n"
    "    if rc == 2 then return nums[0], nums[1] end\n"
    "    if rc == 0 then return true end\n"
    "    return values(0, rc)\n"
    "  end\n"
    "  if rc == -1000 then return nil end\n"
    "  if rc == -1001 then return false end\n"
    "  failed('rm.state_getf', rc)\n"
    "end\n"
    "function rm.state_put(key, val)\n"
    "  key, val = arg(key, 1, 'state_put'), arg(val, 2, 'state_put')\n"
    "  key_size('rm.state_put', #key)\n"
    "  local rc = C.rm_lua_state_put(h, key, #key, val, #val)\n"
    "  if rc < 0 then failed('rm.state_put', rc) end\n"
    "end\n"
    "function rm.state_del(key)\n"
    "  key = arg(key, 1, 'state_del')\n"
    "  key_size('rm.state_del', #key)\n"
    "  local rc = C.rm_lua_state_del(h, key, #key)\n"
    "  if rc < 0 then failed('rm.state_del', rc) end\n"
    "end\n"
    "-- Rows read, by table and key (false: no such row), for the config\n"
    "-- generation the worker reads: a table changes only with a new one\n"
    "-- (lua_process calls flush). A row read again costs a Lua table lookup\n"
    "-- instead of an LMDB read and a new Lua string. At most `room` bytes,\n"
    "-- a small share of lua_memory; nil: empty.\n"
    "local rows, room\n"
    "local function flush() rows, room = nil, cache_bytes end\n"
    "flush()\n"
    "function rm.table_get(tab, key)\n"
    "  tab, key = arg(tab, 1, 'table_get'), arg(key, 2, 'table_get')\n"
    "  local t = rows and rows[tab]\n"
    "  if t then\n"
    "    local row = t[key]\n"
    "    if row then return row end\n"
    "    if row == false then return nil end\n"
    "  end\n"
    "  local rc = C.rm_lua_table_get(h, tab, key, #key, v)\n"
    "  if rc < 0 then failed('rm.table_get', rc) end\n"
    "  local row = rc == 0 and str(v.data, v.len)\n"
    "  room = room - #tab - #key - (row and #row or 0) - 96\n"
    "  if not rows or room < 0 then rows, room, t = {}, cache_bytes, nil end\n"
    "  if not t then t = {} rows[tab] = t end\n"
    "  t[key] = row\n"
    "  return row or nil\n"
    "end\n"
    "local function piece(x, i)\n"
    "  local t = type(x)\n"
    "  if t == 'string' or t == 'number' then return x end\n"
    "  error(\"bad argument #\" .. i .. \" to 'emit' (string expected, got \" .. t .. ')', 3)\n"
    "end\n"
    "function rm.emit(first, ...)\n"
    "  local rc, n = nil, select('#', ...)\n"
    "  if n == 0 then\n"
    "    first = arg(first, 1, 'emit')\n"
    "    rc = C.rm_lua_emit(h, first, #first)\n"
    "  else\n"
    "    line:reset()\n"
    "    line:put(piece(first, 1))\n"
    "    for i = 1, n do line:put(piece((select(i, ...)), i + 1)) end\n"
    "    rc = C.rm_lua_emit(h, line:ref())\n"
    "  end\n"
    "  if rc == 1 then error('rm.emit: a line must not contain a newline', 2) end\n"
    "  if rc < 0 then failed('rm.emit', rc) end\n"
    "end\n"
    "-- line:putf(fmt, ...) into the buffer; an error names the rm function\n"
    "-- and its argument (putf counts the buffer as argument 1)\n"
    "-- (a function of its own: a closure in formatted would keep LuaJIT from\n"
    "-- compiling it)\n"
    "local putf = line.putf\n"
    "local function putf_error(err, f, shift)\n"
    "  err = tostring(err):gsub(\"^bad argument #(%d+) to '[^']*'\", function(n)\n"
    "    return 'bad argument #' .. (n - shift) .. \" to '\" .. f .. \"'\"\n"
    "  end)\n"
    "  error(err, 4)\n"
    "end\n"
    "local function formatted(f, shift, fmt, ...)\n"
    "  line:reset()\n"
    "  local ok, err = pcall(putf, line, fmt, ...)\n"
    "  if not ok then putf_error(err, f, shift) end\n"
    "  return line:ref()\n"
    "end\n"
    "function rm.emitf(fmt, ...)\n"
    "  local rc = C.rm_lua_emit(h, formatted('emitf', 1, fmt, ...))\n"
    "  if rc == 1 then error('rm.emitf: a line must not contain a newline', 2) end\n"
    "  if rc < 0 then failed('rm.emitf', rc) end\n"
    "end\n"
    "function rm.state_putf(key, fmt, ...)\n"
    "  key = arg(key, 1, 'state_putf')\n"
    "  key_size('rm.state_putf', #key)\n"
    "  local val, n = formatted('state_putf', 0, fmt, ...)\n"
    "  local rc = C.rm_lua_state_put(h, key, #key, val, n)\n"
    "  if rc < 0 then failed('rm.state_putf', rc) end\n"
    "end\n"
    "function rm.reject(reason)\n"
    "  if reason == nil then reason = 'rejected' end\n"
    "  C.rm_lua_reject(h, arg(reason, 1, 'reject'))\n"
    "  return REJECT\n"
    "end\n"
    "function rm.count(name)\n"
    "  name = arg(name, 1, 'count')\n"
    "  names[name] = true\n"
    "  C.rm_lua_count(h, name)\n"
    "end\n"
    "function rm.param(name)\n"
    "  local p = C.rm_lua_param(h, arg(name, 1, 'param'))\n"
    "  if p == nil then return nil end\n"
    "  return str(p)\n"
    "end\n"
    "-- The payload read in place, with string.byte's, string.sub's and\n"
    "-- string.find's (plain) positions: a payload made a Lua string is an\n"
    "-- allocation, a string table entry and garbage every event.\n"
    "local floor = math.floor\n"
    "local function pos(x, i, f, n)\n"
    "  if type(x) ~= 'number' then\n"
    "    error(\"bad argument #\" .. i .. \" to '\" .. f .. \"' (number expected, got \" ..\n"
    "      type(x) .. ')', 3)\n"
    "  end\n"
    "  x = floor(x)\n"
    "  if x < 0 then return n + x + 1 end\n"
    "  return x\n"
    "end\n"
    "function rm.payload_len() return E.payload_len end\n"
    "function rm.payload_byte(i)\n"
    "  local n = E.payload_len\n"
    "  i = i == nil and 1 or pos(i, 1, 'payload_byte', n)\n"
    "  if i >= 1 and i <= n then return E.payload[i - 1] end\n"
    "  return nil\n"
    "end\n"
    "function rm.payload_sub(i, j)\n"
    "  local n = E.payload_len\n"
    "  i = i == nil and 1 or pos(i, 1, 'payload_sub', n)\n"
    "  j = j == nil and n or pos(j, 2, 'payload_sub', n)\n"
    "  if i < 1 then i = 1 end\n"
    "  if j > n then j = n end\n"
    "  if i > j then return '' end\n"
    "  return str(E.payload + (i - 1), j - i + 1)\n"
    "end\n"
    "function rm.payload_find(s, init)\n"
    "  s = arg(s, 1, 'payload_find')\n"
    "  local n = E.payload_len\n"
    "  init = init == nil and 1 or pos(init, 2, 'payload_find', n)\n"
    "  if init < 1 then init = 1 elseif init > n + 1 then init = n + 1 end\n"
    "  local at = C.rm_lua_payload_find(E, s, #s, init - 1)\n"
    "  if at == 0 then return nil end\n"
    "  return at, at + #s - 1\n"
    "end\n"
    "-- ev.key and ev.payload are made when first read in an event\n"
    "local lazy = {\n"
    "  __index = function(ev, k)\n"
    "    local s\n"
    "    if k == 'key' then s = str(E.key, E.key_len)\n"
    "    elseif k == 'payload' then s = str(E.payload, E.payload_len)\n"
    "    else return nil end\n"
    "    rawset(ev, k, s)\n"
    "    return s\n"
    "  end,\n"
    "}\n"
    "-- The worker's calls: one event, or a batch's events i..n-1 until one\n"
    "-- does not end rm.OK (returned with its index; n when all did). C sets\n"
    "-- each event up (rm_lua_begin), undoes and dead-letters a failed one.\n"
    "return function(process)\n"
    "  local ev = setmetatable({seq = 0, partition = 0}, lazy)\n"
    "  local function one(seq, partition)\n"
    "    ev.seq, ev.partition, ev.key, ev.payload = seq, partition, nil, nil\n"
    "    return process(ev)\n"
    "  end\n"
    "  local function batch(i, n, partition)\n"
    "    ev.partition = partition\n"
    "    while i < n do\n"
    "      if C.rm_lua_begin(h, i) ~= 0 then return i end\n"
    "      ev.seq, ev.key, ev.payload = E.seq, nil, nil\n"
    "      local rc = process(ev)\n"
    "      if rc ~= nil and rc ~= true and rc ~= 0 then return i, rc end\n"
    "      i = i + 1\n"
    "    end\n"
    "    return n\n"
    "  end\n"
    "  return one, batch\n"
    "end, flush\n";

/* ---- the state ---------------------------------------------------------------- */

/* Builds the script's environment from the rm table (its argument): the
 * safe parts of the standard library, copied so that the script cannot
 * change what the runtime uses. string.dump goes (strings reach the string
 * table through their metatable). */
static const char sandbox_lua[] =
    "local rm = ...\n"
    "local env = {}\n"
    "for _, k in ipairs{'assert','error','ipairs','next','pairs','pcall','xpcall','select',\n"
    "  'tonumber','tostring','type','unpack','rawequal','rawget','rawset','setmetatable',\n"
    "  'getmetatable'} do env[k] = _G[k] end\n"
    "local function copy(t) local c = {} for k, v in pairs(t) do c[k] = v end return c end\n"
    "string.dump = nil\n"
    "env.string, env.table, env.math = copy(string), copy(table), copy(math)\n"
    "env.bit, env.coroutine = copy(bit), copy(coroutine)\n"
    "env.os = {time = os.time, clock = os.clock, date = os.date, difftime = os.difftime}\n"
    "env.rm, env._G = rm, env\n"
    "return env\n";

static const char unsafe_lua[] = "local rm = ...\n"
				 "_G.rm = rm\n"
				 "return _G\n";

static void fill_rm(lua_State *L, struct lua_inst *h)
{
	lua_newtable(L);
	for (const luaL_Reg *f = rm_funcs; f->name; f++) {
		lua_pushlightuserdata(L, h);
		lua_pushcclosure(L, f->func, 1);
		lua_setfield(L, -2, f->name);
	}
	static const struct {
		const char *name;
		int v;
	} consts[] = {{"OK", RM_OK},
		      {"REJECT", RM_REJECT},
		      {"ERROR", RM_ERROR},
		      {"LOG_ERROR", RM_LOG_ERROR},
		      {"LOG_WARN", RM_LOG_WARN},
		      {"LOG_INFO", RM_LOG_INFO},
		      {"LOG_DEBUG", RM_LOG_DEBUG}};
	for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++) {
		lua_pushinteger(L, consts[i].v);
		lua_setfield(L, -2, consts[i].name);
	}
}

/* The message of the error on top of the stack, with a traceback. */
static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg)
		msg = "(an error object that is not a string)";
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, msg);
	lua_Debug ar;
	luaL_addstring(&b, " | traceback:");
	for (int level = 1; level < 12 && lua_getstack(L, level, &ar); level++) {
		if (!lua_getinfo(L, "Sln", &ar))
			break;
		char line[320];
		snprintf(line, sizeof(line), " %s:%d%s%s", ar.short_src, ar.currentline,
			 ar.name ? " in " : "", ar.name ? ar.name : "");
		luaL_addstring(&b, line);
	}
	luaL_pushresult(&b);
	return 1;
}

static void free_inst(struct lua_inst *h)
{
	if (!h)
		return;
	if (h->guard_running) {
		atomic_store(&h->guard_stop, 1);
		pthread_join(h->guard, NULL);
	}
	if (h->L)
		lua_close(h->L);
	free(h->undo);
	free(h->keys);
	free(h);
}

/* Copy the error message of a failed lua_load or lua_pcall into err. */
static void take_error(struct lua_inst *h, char *err, size_t errlen)
{
	const char *msg = lua_tostring(h->L, -1);
	if (h->mem_refused)
		snprintf(err, errlen, "%s: the script needs more than lua_memory (%zu bytes)",
			 h->name, h->mem_cap);
	else
		snprintf(err, errlen, "%s", msg ? msg : "error without a message");
	lua_pop(h->L, 1);
}

/* Outside process, rm.payload_* and a kept event table read "". */
static void no_event(struct lua_inst *h)
{
	h->ev =
	    (struct rm_lua_event){(const unsigned char *)"", (const unsigned char *)"", 0, 0, 0};
}

/* Make the state, compile the script and run its top level in its
 * environment. Returns the instance, or NULL with err filled. */
static struct lua_inst *make(const struct lua_script *s, const struct settings *st, char *err,
			     size_t errlen)
{
	struct lua_inst *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "%s: out of memory", s->name);
		return NULL;
	}
	snprintf(h->name, sizeof(h->name), "%s", s->name);
	h->mem_cap = st->memory;
	h->budget_ns = st->timeout_ms * 1000000u;
	h->ref_fini = LUA_NOREF;
	h->cur = -1;
	no_event(h);
	h->L = luaL_newstate();
	if (!h->L) {
		snprintf(err, errlen, "%s: cannot make a Lua state (out of memory)", s->name);
		free(h);
		return NULL;
	}
	h->alloc = lua_getallocf(h->L, &h->alloc_ud);
	h->mem =
	    (size_t)lua_gc(h->L, LUA_GCCOUNT, 0) * 1024u + (size_t)lua_gc(h->L, LUA_GCCOUNTB, 0);
	lua_setallocf(h->L, capped_alloc, h);
	lua_State *L = h->L;
	luaL_openlibs(L);
	lua_pushlightuserdata(L, h);
	lua_setfield(L, LUA_REGISTRYINDEX, REG_INST);
	lua_pushcfunction(L, traceback);
	h->ref_trace = luaL_ref(L, LUA_REGISTRYINDEX);

	fill_rm(L, h);
	if (luaL_loadbuffer(L, prelude_lua, strlen(prelude_lua), "=prelude") != 0)
		goto lua_fail;
	lua_pushlightuserdata(L, h);
	lua_pushvalue(L, -3);
	lua_pushnumber(L, (lua_Number)(st->memory / TABLE_CACHE_SHARE));
	lua_pushlightuserdata(L, &h->ev);
	if (lua_pcall(L, 4, 2, 0) != 0)
		goto lua_fail;
	h->ref_flush = luaL_ref(L, LUA_REGISTRYINDEX);
	int ref_wrap = luaL_ref(L, LUA_REGISTRYINDEX);
	const char *setup = st->unsafe ? unsafe_lua : sandbox_lua;
	if (luaL_loadbuffer(L, setup, strlen(setup), "=sandbox") != 0)
		goto lua_fail;
	lua_insert(L, -2);
	if (lua_pcall(L, 1, 1, 0) != 0)
		goto lua_fail;
	h->ref_env = luaL_ref(L, LUA_REGISTRYINDEX);

	/* "@path": messages name the file and line. Text only in the
	 * sandbox: bytecode can break out of the VM. */
	char chunk[300];
	snprintf(chunk, sizeof(chunk), "@%s", s->name);
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_trace);
	if (luaL_loadbufferx(L, s->text, s->len, chunk, st->unsafe ? "bt" : "t") != 0)
		goto lua_fail;
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_env);
	lua_setfenv(L, -2);
	if (lua_pcall(L, 0, 0, -2) != 0)
		goto lua_fail;
	lua_pop(L, 1); /* traceback */

	lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_env);
	lua_getfield(L, -1, "process");
	if (!lua_isfunction(L, -1)) {
		snprintf(err, errlen, "%s: the script defines no function process(event)", s->name);
		goto fail;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref_wrap);
	lua_insert(L, -2);
	if (lua_pcall(L, 1, 2, 0) != 0)
		goto lua_fail;
	h->ref_batch = luaL_ref(L, LUA_REGISTRYINDEX);
	h->ref_process = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_getfield(L, -1, "fini");
	if (lua_isfunction(L, -1))
		h->ref_fini = luaL_ref(L, LUA_REGISTRYINDEX);
	else
		lua_pop(L, 1);
	lua_pop(L, 1);
	return h;
lua_fail:
	take_error(h, err, errlen);
fail:
	free_inst(h);
	return NULL;
}

static int run_init(struct lua_inst *h, rm_ctx *ctx, char *err, size_t errlen);

int lua_handler_check(const struct lua_script *s, const struct cfg_kv *params, size_t n_params,
		      rm_ctx *ctx, char *err, size_t errlen)
{
	struct settings st;
	struct kv_list l = {params, n_params};
	if (read_settings(param_of_list, &l, &st, err, errlen) != 0)
		return -1;
	struct lua_inst *h = make(s, &st, err, errlen);
	if (!h)
		return -1;
	int rc = ctx ? run_init(h, ctx, err, errlen) : 0;
	if (rc == 0)
		free_inst(h);
	return rc;
}

int lua_handler_params(const struct lua_script *s, const struct cfg_kv *params, size_t n_params,
		       char *out, size_t out_len, char *err, size_t errlen)
{
	struct settings st;
	struct kv_list l = {params, n_params};
	if (read_settings(param_of_list, &l, &st, err, errlen) != 0)
		return -1;
	struct lua_inst *h = make(s, &st, err, errlen);
	if (!h)
		return -1;
	lua_State *L = h->L;
	int said = 0;
	size_t used = (size_t)snprintf(out, out_len, "lua_unsafe lua_timeout lua_memory");
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_env);
	lua_getfield(L, -1, "params");
	if (lua_istable(L, -1)) {
		said = 1;
		for (int i = 1;; i++) {
			lua_rawgeti(L, -1, i);
			const char *name =
			    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
			if (name && used < out_len)
				used += (size_t)snprintf(out + used, out_len - used, " %s", name);
			int end = lua_isnil(L, -1);
			lua_pop(L, 1);
			if (end)
				break;
		}
	}
	lua_pop(L, 2);
	free_inst(h);
	return said;
}

/* ---- calls -------------------------------------------------------------------- */

/* Per event: plain stores (release, for the guard's acquire load) rather
 * than atomic_store's full barrier, a locked instruction each, and no
 * clock. A hook the guard sets just after leave() finds the call over and
 * removes itself (timeout_hook). */
static void enter(struct lua_inst *h, uint64_t seq)
{
	atomic_store_explicit(&h->in_seq, seq, memory_order_relaxed);
	atomic_store_explicit(&h->in_call, ++h->calls, memory_order_release);
}

static void leave(struct lua_inst *h)
{
	atomic_store_explicit(&h->in_call, 0, memory_order_release);
	if (atomic_load_explicit(&h->hooked, memory_order_relaxed) &&
	    atomic_exchange(&h->hooked, 0))
		lua_sethook(h->L, NULL, 0, 0);
}

/* What went wrong in a call: lua_timeout, lua_memory or lua_error. */
static const char *failure(struct lua_inst *h, int rc)
{
	if (atomic_exchange(&h->timed_out, 0))
		return "lua_timeout";
	if (h->mem_refused || rc == LUA_ERRMEM)
		return "lua_memory";
	return "lua_error";
}

static const char *failed_call(struct lua_inst *h, int rc, uint64_t seq, const char *what);

/* Call the function below the traceback handler at the top with nargs
 * arguments and one result. Returns 0, or the reason it failed with the
 * message logged. */
static const char *call(struct lua_inst *h, int nargs, uint64_t seq, const char *what)
{
	lua_State *L = h->L;
	int base = lua_gettop(L) - nargs - 1; /* the traceback handler's index */
	h->mem_refused = 0;
	enter(h, seq);
	int rc = lua_pcall(L, nargs, 1, base);
	leave(h);
	if (rc == 0) {
		lua_remove(L, base);
		return NULL;
	}
	const char *why = failed_call(h, rc, seq, what);
	lua_settop(L, base - 1);
	lua_gc(L, LUA_GCCOLLECT, 0);
	return why;
}

/* Log the error of a call that failed with rc, its message on top of the
 * stack; returns the reason. */
static const char *failed_call(struct lua_inst *h, int rc, uint64_t seq, const char *what)
{
	const char *why = failure(h, rc);
	const char *msg = lua_tostring(h->L, -1);
	if (!strcmp(why, "lua_memory"))
		rm_log(h->ctx, RM_LOG_ERROR,
		       "%s: %s seq=%llu: lua_memory: the Lua state would grow past lua_memory "
		       "(%zu bytes; [handler] lua_memory raises it)%s%s",
		       h->name, what, (unsigned long long)seq, h->mem_cap, msg ? ": " : "",
		       msg ? msg : "");
	else
		rm_log(h->ctx, RM_LOG_ERROR, "%s: %s seq=%llu: %s: %s", h->name, what,
		       (unsigned long long)seq, why, msg ? msg : "error without a message");
	snprintf(h->last_error, sizeof(h->last_error), "%.*s", msg ? (int)strcspn(msg, "\n") : 0,
		 msg ? msg : "");
	return why;
}

/* Undo what the event did: state changes newest first, then output lines
 * and counts. */
static void undo_event(struct lua_inst *h)
{
	rm_ctx *c = h->ctx;
	while (h->n_undo) {
		const struct undo *u = &h->undo[--h->n_undo];
		const char *key = h->keys + u->key_off;
		if (u->present)
			rm_state_put(c, key, u->key_len, u->val, u->val_len);
		else
			rm_state_del(c, key, u->key_len);
	}
	c->out_len = h->out_mark;
	c->n_lines = h->lines_mark;
	if (h->counted) {
		c->n_counts = h->saved_n_counts;
		for (size_t i = 0; i < c->n_counts; i++)
			c->counts[i].n = h->saved_counts[i];
	}
}

/* A new config generation (or the first batch, after init's reads): the
 * rows rm.table_get kept may be out of date. The flush makes no object, so
 * it cannot fail for want of memory. */
static void flush_tables(struct lua_inst *h, uint64_t gen)
{
	lua_rawgeti(h->L, LUA_REGISTRYINDEX, h->ref_flush);
	lua_call(h->L, 0, 0);
	h->table_gen = gen;
}

static int outcome(struct lua_inst *h, const char *why, uint64_t seq);

static int lua_process(rm_ctx *ctx, void *state, const struct rm_event *ev)
{
	struct lua_inst *h = state;
	lua_State *L = h->L;
	h->ctx = ctx;
	uint64_t gen = ctx->cfg_txn ? store_config_generation(ctx->cfg_txn) : 0;
	if (gen != h->table_gen)
		flush_tables(h, gen);
	h->n_undo = h->keys_len = h->got_len = 0;
	h->out_mark = ctx->out_len;
	h->lines_mark = ctx->n_lines;
	h->counted = 0;
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_trace);
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_process);
	lua_pushnumber(L, (lua_Number)ev->seq);
	lua_pushinteger(L, (lua_Integer)ctx->partition);
	h->ev = (struct rm_lua_event){(const unsigned char *)ev->key,
				      (const unsigned char *)ev->payload, (int32_t)ev->key_len,
				      (int32_t)ev->payload_len, (double)ev->seq};
	const char *why = call(h, 2, ev->seq, "process");
	no_event(h);
	return outcome(h, why, ev->seq);
}

/* What process's call (failed with why, or its result on top of the
 * stack, popped) makes of the event seq: RM_OK, RM_ERROR, or RM_REJECT
 * with its effects undone. */
static int outcome(struct lua_inst *h, const char *why, uint64_t seq)
{
	lua_State *L = h->L;
	rm_ctx *ctx = h->ctx;
	if (ctx->failed) {
		if (!why)
			lua_pop(L, 1);
		return RM_ERROR; /* the worker could not do a call: as in C */
	}
	int rc = RM_OK;
	if (!why) {
		if (lua_isnumber(L, -1))
			rc = (int)lua_tointeger(L, -1);
		else if (!lua_isnil(L, -1) && !(lua_isboolean(L, -1) && lua_toboolean(L, -1)))
			rc = -1;
		lua_pop(L, 1);
		if (rc == RM_OK || rc == RM_ERROR)
			return rc;
		if (rc != RM_REJECT) {
			rm_log(ctx, RM_LOG_ERROR,
			       "%s: process seq=%llu: lua_error: it returned neither nothing, "
			       "rm.OK, rm.REJECT nor rm.ERROR",
			       h->name, (unsigned long long)seq);
			why = "lua_error";
		}
	}
	undo_event(h);
	if (why) {
		rm_reject(ctx, why);
		ctx->event_failed = 1;
	}
	return RM_REJECT;
}

/* An event begins: nothing of it to undo yet. */
static void mark(struct lua_inst *h)
{
	rm_ctx *ctx = h->ctx;
	ctx->reject_reason[0] = '\0';
	ctx->event_failed = 0;
	h->n_undo = h->keys_len = h->got_len = 0;
	h->out_mark = ctx->out_len;
	h->lines_mark = ctx->n_lines;
	h->counted = 0;
	h->mem_refused = 0;
}

int rm_lua_begin(struct lua_inst *h, int32_t i)
{
	rm_ctx *ctx = h->ctx;
	if (ctx->failed)
		return 1;
	const struct lua_batch_ev *e = &h->batch[i];
	h->cur = i;
	atomic_store_explicit(h->current_seq, e->ring_seq, memory_order_relaxed);
	uint64_t hash =
	    ctx_ahead(ctx, &h->ahead, &h->batch[0].key, sizeof(*e), (size_t)i, h->batch_n);
	ctx_set_event_hashed(ctx, e->seq, e->key, e->key_len, hash);
	mark(h);
	h->ev =
	    (struct rm_lua_event){(const unsigned char *)e->key, (const unsigned char *)e->payload,
				  (int32_t)e->key_len, (int32_t)e->payload_len, (double)e->seq};
	enter(h, e->seq);
	return 0;
}

int lua_handler_batch(rm_ctx *ctx, void *state, const struct lua_batch_ev *evs, size_t n,
		      _Atomic uint64_t *current_seq, size_t *done)
{
	struct lua_inst *h = state;
	lua_State *L = h->L;
	h->ctx = ctx;
	uint64_t gen = ctx->cfg_txn ? store_config_generation(ctx->cfg_txn) : 0;
	if (gen != h->table_gen)
		flush_tables(h, gen);
	h->batch = evs;
	h->batch_n = n;
	h->ahead.primed = 0; /* another array */
	h->current_seq = current_seq;
	int32_t from = 0;
	int rc = RM_OK;
	for (;;) {
		h->cur = -1;
		mark(h); /* an error before the first rm_lua_begin undoes nothing */
		lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_trace);
		int base = lua_gettop(L);
		lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_batch);
		lua_pushinteger(L, from);
		lua_pushinteger(L, (lua_Integer)n);
		lua_pushinteger(L, (lua_Integer)ctx->partition);
		int prc = lua_pcall(L, 3, 2, base);
		leave(h);
		no_event(h);
		if (prc != 0) {
			/* an error, a timeout or memory: the event begun last */
			const struct lua_batch_ev *e = &evs[h->cur < 0 ? from : h->cur];
			const char *why = failed_call(h, prc, e->seq, "process");
			lua_settop(L, base - 1);
			lua_gc(L, LUA_GCCOLLECT, 0);
			*done = (size_t)(e - evs);
			rc = outcome(h, why, e->seq);
			break;
		}
		lua_remove(L, base);
		int32_t i = (int32_t)lua_tointeger(L, -2);
		lua_remove(L, -2);
		if (ctx->failed) { /* a call of the event begun last failed */
			lua_pop(L, 1);
			*done = (size_t)(h->cur < 0 ? from : h->cur);
			rc = RM_ERROR;
			break;
		}
		if ((size_t)i >= n) {
			lua_pop(L, 1);
			*done = n;
			break;
		}
		rc = outcome(h, NULL, evs[i].seq);
		if (rc != RM_OK) {
			*done = (size_t)i;
			break;
		}
		from = i + 1; /* a result C reads as rm.OK ("0"): on */
	}
	h->batch = NULL;
	return rc;
}

static void lua_fini(rm_ctx *ctx, void *state)
{
	struct lua_inst *h = state;
	if (!h)
		return;
	if (h->ref_fini != LUA_NOREF) {
		h->ctx = ctx;
		flush_tables(h, 0); /* fini reads the tables as they are now */
		lua_rawgeti(h->L, LUA_REGISTRYINDEX, h->ref_trace);
		lua_rawgeti(h->L, LUA_REGISTRYINDEX, h->ref_fini);
		if (!call(h, 0, SHM_NO_SEQ, "fini"))
			lua_pop(h->L, 1);
	}
	free_inst(h);
}

const struct rm_handler lua_handler = {
    .abi_version = RM_ABI_VERSION,
    .name = "lua",
    .init = NULL,
    .process = lua_process,
    .fini = lua_fini,
    .on_reload = NULL,
};

/* Start the lua_timeout guard and run the script's init(), if it has one.
 * Returns 0, or -1 with err filled and h freed. */
static int run_init(struct lua_inst *h, rm_ctx *ctx, char *err, size_t errlen)
{
	h->ctx = ctx;
	if (pthread_create(&h->guard, NULL, guard_main, h) != 0) {
		snprintf(err, errlen, "%s: cannot start the lua_timeout guard thread", h->name);
		free_inst(h);
		return -1;
	}
	h->guard_running = 1;
	lua_State *L = h->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_env);
	lua_getfield(L, -1, "init");
	lua_remove(L, -2);
	if (!lua_isfunction(L, -1)) {
		lua_pop(L, 1);
		return 0;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref_trace);
	lua_insert(L, -2);
	const char *why = call(h, 0, SHM_NO_SEQ, "init");
	if (why) {
		snprintf(err, errlen, "%s: init() failed (%s): %s", h->name, why,
			 h->last_error[0] ? h->last_error : "see the log");
		free_inst(h);
		return -1;
	}
	int ok = lua_isnil(L, -1) || lua_toboolean(L, -1) ||
		 (lua_isnumber(L, -1) && lua_tointeger(L, -1) == 0);
	lua_pop(L, 1);
	if (!ok) {
		snprintf(err, errlen, "%s: init() returned false: not starting", h->name);
		free_inst(h);
		return -1;
	}
	return 0;
}

int lua_handler_start(const struct lua_script *s, rm_ctx *ctx, void **state, char *err,
		      size_t errlen)
{
	struct settings st;
	if (read_settings(param_of_ctx, ctx, &st, err, errlen) != 0)
		return -1;
	struct lua_inst *h = make(s, &st, err, errlen);
	if (!h || run_init(h, ctx, err, errlen) != 0)
		return -1;
	*state = h;
	return 0;
}
