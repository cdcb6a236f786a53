/* handler.h - find the handler a config names: a built-in by name, a
 * shared object (a path ending in .so) loaded with dlopen, or a Lua script
 * (a path ending in .lua) run by LuaJIT (lua_handler.h), the files through
 * a descriptor the supervisor opened and checked once. */
#ifndef RM_HANDLER_H
#define RM_HANDLER_H

#include <stddef.h>

#include "ringmaster.h"

struct cfg;
struct lua_script;

/* 1 when `spec` names a Lua script, 0 otherwise. */
int handler_is_lua(const char *spec);

/* The supervisor, at start and when a reload finds the file changed: open
 * the .so or .lua `[worker] handler` names with safety_open (checked when
 * strict_modes is on) and leave its descriptor in *fd (O_CLOEXEC:
 * inherited by forked workers, not by programs they run). A built-in
 * leaves *fd = -1. Returns 0, or -1 with err filled, each line starting
 * with the file and line of the setting ("c.ini:12: [worker] handler:
 * /srv/h is writable by group or others ..."). Runs no code of the
 * handler's. */
int handler_open(const struct cfg *c, int *fd, char *err, size_t errlen);

/* Load the handler: a built-in by name (fd -1), or the .so open on `fd`
 * (from handler_open) by dlopen of /proc/self/fd/N, never by its path.
 * Returns the handler, or NULL with a message in err ("x.so: handler ABI
 * version 2, this ringmaster speaks 1: rebuild it against ringmaster.h").
 * *dl is the dlopen handle to pass to handler_unload (NULL for built-ins).
 * Runs the object's constructors: never call it in the supervisor. */
const struct rm_handler *handler_load(const char *spec, int fd, void **dl, char *err,
				      size_t errlen);
void handler_unload(void *dl);

/* A handler running in a worker: its callbacks, the state its init made,
 * and its version. */
struct handler {
	const struct rm_handler *ops;
	void *state;
	void *dl;		   /* the .so's dlopen handle, or NULL */
	struct lua_script *script; /* a Lua handler's script, or NULL */
	char version[17];	   /* content hash (16 hex digits); "builtin" */
};

/* Load and start the handler `spec` names (open on `fd`, or a built-in),
 * running its init with ctx; a Lua handler runs `script` when it is not
 * NULL (a new version from a reload; h takes it over), else the file on
 * fd. Returns 0, or -1 with err filled; on failure h is left empty and
 * nothing needs stopping. */
int handler_start(struct handler *h, const char *spec, int fd, struct lua_script *script,
		  rm_ctx *ctx, char *err, size_t errlen);

/* Run the handler's fini and unload it; h is left empty. */
void handler_stop(struct handler *h, rm_ctx *ctx);

/* The content hash of the file open on fd, as 16 hex digits in buf. 0 or
 * -errno. */
int handler_file_version(int fd, char buf[17]);

/* Check that the handler open on `fd` loads, in a child process, so that its
 * constructors cannot end, or fake the success of, the caller (ringmaster -t
 * and the supervisor before it forks workers). A child that exits or dies
 * before reporting, or takes more than 10 s, fails the check. Returns 0, or
 * -1 with err filled, starting with the file and line of the setting. On 0,
 * err holds warnings, a line each ("" when none): the [handler] settings a
 * handler that declares what it reads (RM_PARAMS_SYMBOL, a Lua script's
 * params table) never reads. */
int handler_check(const struct cfg *c, int fd, char *err, size_t errlen);

/* As handler_check, and the child also runs the handler's init() (a
 * script's, or a .so's) with c's [handler] params and an rm_ctx that reads
 * the tables of the config environment in c's data_dir as they are now,
 * as partition 0 (init may read tables and params and log; its state
 * calls fail): the supervisor, before a reload switches any worker to a
 * new version. */
int handler_check_init(const struct cfg *c, int fd, char *err, size_t errlen);

#endif
