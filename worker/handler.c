/* handler.c - resolve `[worker] handler` to a struct rm_handler.
 *
 * A .so is opened once, by the supervisor (handler_open), and checked as an
 * open descriptor; every later dlopen, in a check child or in a worker, goes
 * through that descriptor (/proc/self/fd/N), so a file put in its place
 * later is never loaded. Loading runs the object's constructors, which are
 * foreign code: the supervisor only ever loads a handler in a child
 * (handler_check), never in itself. */
#include "handler.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "ctx.h"
#include "handlers/ledger.h"
#include "lua_handler.h"
#include "safety.h"
#include "store.h"

/* How long a check child may take to load a handler (its constructors). */
#define CHECK_TIMEOUT_MS 10000

static const struct {
	const char *name;
	const struct rm_handler *handler;
	const char *params; /* the [handler] settings it reads, one space apart */
} builtins[] = {
    {"ledger", &ledger_handler, ""},
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int handler_is_lua(const char *spec)
{
	return ends_with(spec, ".lua");
}

/* A file the supervisor opens and checks: a .so or a .lua. */
static int is_file(const char *spec)
{
	return ends_with(spec, ".so") || ends_with(spec, ".lua");
}

static int validate(const char *spec, const struct rm_handler *h, char *err, size_t errlen)
{
	if (h->abi_version != RM_ABI_VERSION) {
		snprintf(err, errlen,
			 "%s: handler ABI version %d, this ringmaster speaks %d: rebuild it "
			 "against this ringmaster.h",
			 spec, h->abi_version, RM_ABI_VERSION);
		return -1;
	}
	if (!h->process || !h->name) {
		snprintf(err, errlen, "%s: handler has no %s", spec,
			 h->process ? "name" : "process callback");
		return -1;
	}
	return 0;
}

static const struct rm_handler *builtin(const char *spec, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (strcmp(spec, builtins[i].name) == 0)
			return builtins[i].handler;
	snprintf(err, errlen,
		 "unknown handler '%s': use a built-in (ledger) or a path ending in .so or .lua",
		 spec);
	return NULL;
}

const struct rm_handler *handler_load(const char *spec, int fd, void **dl, char *err, size_t errlen)
{
	char proc[64];
	*dl = NULL;
	if (handler_is_lua(spec)) {
		snprintf(err, errlen, "%s: a Lua script is started with handler_start", spec);
		return NULL;
	}
	if (!ends_with(spec, ".so"))
		return builtin(spec, err, errlen);
	if (fd < 0) {
		snprintf(err, errlen, "%s: not opened (handler_open)", spec);
		return NULL;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	void *h = dlopen(proc, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		/* dlerror() names the /proc path: name the file instead. */
		const char *why = dlerror();
		size_t n = strlen(proc);
		if (why && strncmp(why, proc, n) == 0 && strncmp(why + n, ": ", 2) == 0)
			why += n + 2;
		snprintf(err, errlen, "%s: cannot load: %s", spec, why ? why : "unknown error");
		return NULL;
	}
	const struct rm_handler *handler = dlsym(h, RM_HANDLER_SYMBOL);
	if (!handler) {
		snprintf(err, errlen,
			 "%s: no symbol '%s': a handler exports "
			 "const struct rm_handler %s",
			 spec, RM_HANDLER_SYMBOL, RM_HANDLER_SYMBOL);
		dlclose(h);
		return NULL;
	}
	if (validate(spec, handler, err, errlen) != 0) {
		dlclose(h);
		return NULL;
	}
	*dl = h;
	return handler;
}

void handler_unload(void *dl)
{
	if (dl)
		dlclose(dl);
}

/* ---- [handler] settings the handler never reads ---- */

static int listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* A line in out for each [handler] setting not in `reads` (the names the
 * handler declares, one space apart): a typo (limt = 3) would else pass
 * silently. */
static void unread_params(const struct cfg *c, const char *reads, char *out, size_t len)
{
	size_t used = strnlen(out, len);
	for (size_t i = 0; i < c->n_params && used < len; i++) {
		const char *key = c->params[i].key;
		if (listed(reads, key))
			continue;
		used += (size_t)snprintf(
		    out + used, len - used,
		    "%s: [handler] %s: the handler never reads it (it reads: %s)\n",
		    cfg_origin(c, "handler", key), key, reads[0] ? reads : "no [handler] setting");
	}
}

/* The names in a .so's rm_handler_params, one space apart; 0 when it has
 * none (it does not say what it reads). */
static int so_params(void *dl, char *out, size_t len)
{
	const char *const *names = dl ? dlsym(dl, RM_PARAMS_SYMBOL) : NULL;
	size_t used = 0;
	out[0] = '\0';
	if (!names)
		return 0;
	for (size_t i = 0; names[i] && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", names[i]);
	return 1;
}

/* "FILE:LINE: [worker] handler: ", what every message here starts with. */
static void prefix_of(const struct cfg *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s: [worker] handler: ", cfg_origin(c, "worker", "handler"));
}

int handler_open(const struct cfg *c, int *fd, char *err, size_t errlen)
{
	char prefix[512];
	*fd = -1;
	if (errlen)
		err[0] = '\0';
	prefix_of(c, prefix, sizeof(prefix));
	if (!is_file(c->handler)) {
		if (builtin(c->handler, err, errlen))
			return 0;
		char why[256];
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s%s", prefix, why);
		return -1;
	}
	int rc = safety_open(c->handler, c->strict_modes, prefix, err, errlen);
	if (rc < 0) {
		/* one message per line, the last without its newline */
		size_t n = strnlen(err, errlen);
		if (n && err[n - 1] == '\n')
			err[n - 1] = '\0';
		return -1;
	}
	*fd = rc;
	return 0;
}

/* What init() gets in a check child: the config environment's tables as
 * they are now and c's [handler] params, as partition 0. The child exits
 * without closing any of it. Returns the ctx, or NULL with msg filled. */
static struct store_env *init_env;

static rm_ctx *init_ctx(const struct cfg *c, char *msg, size_t len)
{
	static struct rm_ctx ctx;
	struct store_env *env;
	char err[STORE_ERR_LEN];
	if (store_config_open(c->data_dir, c->map_size, 1, &env, err) != 0) {
		snprintf(msg, len, "%s: cannot run init(): %s", c->handler, err);
		return NULL;
	}
	int rc = ctx_init(&ctx, c, 0);
	if (rc == 0)
		rc = store_config_read(env, &ctx.cfg_txn);
	if (rc != 0) {
		snprintf(msg, len, "%s: cannot run init(): the config environment: %s", c->handler,
			 strerror(-rc));
		return NULL;
	}
	init_env = env;
	return &ctx;
}

/* Leave no reader slot behind in the config environment. */
static void init_ctx_end(rm_ctx *ctx)
{
	if (!ctx)
		return;
	store_txn_abort(ctx->cfg_txn);
	ctx->cfg_txn = NULL;
	store_close(init_env);
}

/* A Lua script compiles and its top level runs in the sandbox (and its
 * init(), with_init). */
static int check_lua(const struct cfg *c, int fd, int with_init, char *msg, size_t len, char *warn,
		     size_t warn_len)
{
	rm_ctx *ctx = NULL;
	if (with_init && !(ctx = init_ctx(c, msg, len)))
		return -1;
	struct lua_script *s = lua_script_read(c->handler, fd, msg, len);
	if (!s)
		return -1;
	int rc = lua_handler_check(s, c->params, c->n_params, ctx, msg, len);
	init_ctx_end(ctx);
	char reads[1024];
	if (rc == 0 &&
	    lua_handler_params(s, c->params, c->n_params, reads, sizeof(reads), msg, len) > 0) {
		warn[0] = '\0';
		unread_params(c, reads, warn, warn_len);
	}
	lua_script_free(s);
	return rc;
}

/* A .so loads (and its init returns 0, with_init). */
static int check_so(const struct cfg *c, int fd, int with_init, char *msg, size_t len, char *warn,
		    size_t warn_len)
{
	void *dl, *state = NULL;
	rm_ctx *ctx = NULL;
	const struct rm_handler *h = handler_load(c->handler, fd, &dl, msg, len);
	if (!h || (with_init && !(ctx = init_ctx(c, msg, len))))
		return -1;
	int rc = ctx && h->init ? h->init(ctx, &state) : 0;
	init_ctx_end(ctx);
	if (rc != 0) {
		snprintf(msg, len, "%s: handler %s: init failed (see the log)", c->handler,
			 h->name);
		return -1;
	}
	char reads[1024];
	if (so_params(dl, reads, sizeof(reads)))
		unread_params(c, reads, warn, warn_len);
	return 0;
}

/* The child's side: load, then report on the pipe. Whatever the handler's
 * constructors (or a script's top level, or its init) do (exit, abort,
 * hang) shows as no report. */
static void check_child(const struct cfg *c, int fd, int with_init, int out)
{
	char msg[3100], warn[2048] = "";
	if (handler_is_lua(c->handler)
		? check_lua(c, fd, with_init, msg, sizeof(msg), warn, sizeof(warn)) == 0
		: check_so(c, fd, with_init, msg, sizeof(msg), warn, sizeof(warn)) == 0)
		snprintf(msg, sizeof(msg), "ok\n%s", warn);
	ssize_t n = write(out, msg, strlen(msg));
	_exit(n < 0 ? 2 : 0); /* no destructors, no atexit: not ours to run */
}

static void describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status 0x%x", status);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait for the child, reading its report; kill it after CHECK_TIMEOUT_MS.
 * Returns its wait status, or -1 when it timed out. The report is at most a
 * few hundred bytes, written at once before the child exits: once the child
 * is reaped it is all in the pipe (a grandchild may hold the pipe open, so
 * end of file is no sign). */
static int wait_child(pid_t pid, int in, char *report, size_t len)
{
	uint64_t deadline = now_ms() + CHECK_TIMEOUT_MS;
	size_t got = 0;
	int status = -1;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return -1;
		}
		struct pollfd p = {.fd = in, .events = POLLIN};
		(void)poll(&p, 1, 20);
	}
	for (;;) {
		ssize_t n = read(in, report + got, len - 1 - got);
		if (n > 0 && (got += (size_t)n) < len - 1)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	report[got] = '\0';
	return status;
}

static int check(const struct cfg *c, int fd, int with_init, char *err, size_t errlen)
{
	char prefix[512], report[3200], how[128];
	void *dl;
	prefix_of(c, prefix, sizeof(prefix));
	if (!is_file(c->handler)) {
		if (!handler_load(c->handler, -1, &dl, report, sizeof(report))) {
			snprintf(err, errlen, "%s%s", prefix, report);
			return -1;
		}
		err[0] = '\0';
		for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
			if (strcmp(c->handler, builtins[i].name) == 0)
				unread_params(c, builtins[i].params, err, errlen);
		return 0;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		snprintf(err, errlen, "%scannot check %s: pipe: %s", prefix, c->handler,
			 strerror(errno));
		return -1;
	}
	/* Nothing buffered may be written twice, by us and by the child. */
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "%scannot check %s: fork: %s", prefix, c->handler,
			 strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		check_child(c, fd, with_init, p[1]);
	}
	close(p[1]);
	int status = wait_child(pid, p[0], report, sizeof(report));
	close(p[0]);
	if (status == -1) {
		snprintf(err, errlen,
			 "%s%s: loading it did not finish within %d s (a constructor, or a "
			 "script's top level, that hangs?)",
			 prefix, c->handler, CHECK_TIMEOUT_MS / 1000);
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && strncmp(report, "ok\n", 3) == 0) {
		snprintf(err, errlen, "%s", report + 3); /* warnings, if any */
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && report[0]) {
		snprintf(err, errlen, "%s%s", prefix, report);
		return -1;
	}
	describe(status, how, sizeof(how));
	snprintf(err, errlen,
		 "%s%s: loading it ended the process (%s): its constructors must return", prefix,
		 c->handler, how);
	return -1;
}

int handler_check(const struct cfg *c, int fd, char *err, size_t errlen)
{
	return check(c, fd, 0, err, errlen);
}

int handler_check_init(const struct cfg *c, int fd, char *err, size_t errlen)
{
	return check(c, fd, 1, err, errlen);
}

int handler_file_version(int fd, char buf[17])
{
	char block[65536];
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, as lua_script's hash */
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, block, sizeof(block), off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ (unsigned char)block[i]) * 0x100000001b3ull;
		off += n;
	}
	snprintf(buf, 17, "%016llx", (unsigned long long)h);
	return 0;
}

int handler_start(struct handler *h, const char *spec, int fd, struct lua_script *script,
		  rm_ctx *ctx, char *err, size_t errlen)
{
	*h = (struct handler){0};
	if (handler_is_lua(spec)) {
		if (!script && !(script = lua_script_read(spec, fd, err, errlen)))
			return -1;
		if (lua_handler_start(script, ctx, &h->state, err, errlen) != 0) {
			lua_script_free(script);
			return -1;
		}
		h->ops = &lua_handler;
		h->script = script;
		lua_script_version(script, h->version);
		return 0;
	}
	h->ops = handler_load(spec, fd, &h->dl, err, errlen);
	if (!h->ops)
		return -1;
	if (fd >= 0)
		handler_file_version(fd, h->version);
	else
		snprintf(h->version, sizeof(h->version), "builtin");
	if (h->ops->init && h->ops->init(ctx, &h->state) != 0) {
		snprintf(err, errlen, "handler %s: init failed", h->ops->name);
		handler_unload(h->dl);
		*h = (struct handler){0};
		return -1;
	}
	return 0;
}

void handler_stop(struct handler *h, rm_ctx *ctx)
{
	if (h->ops && h->ops->fini)
		h->ops->fini(ctx, h->state);
	handler_unload(h->dl);
	lua_script_free(h->script);
	*h = (struct handler){0};
}
