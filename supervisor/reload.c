/* reload.c - the watermark and SIGHUP reloads (see reload.h).
 *
 * A reload builds a whole new struct cfg and loads every table in one LMDB
 * transaction; only when both succeed does anything change, so a broken file
 * leaves the old configuration running (the nginx habit). Workers pick the
 * new generation up at their next batch. */
#include "reload.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "handler.h"
#include "log.h"
#include "lua_handler.h"
#include "notify.h"
#include "replay.h"
#include "safety.h"
#include "savepoint.h"
#include "store.h"
#include "supervisor.h"

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (h ^ 0xff) * 0x100000001b3ull; /* field separator */
}

/* A hash naming the source (type and path, or the generator's parameters),
 * kept in the data directory so a resume never applies one source's position
 * to another. */
static uint64_t wm_source_id(const struct cfg *c)
{
	char buf[128];
	uint64_t h = 0xcbf29ce484222325ull;
	switch (c->source_type) {
	case CFG_SOURCE_FILE:
		return fnv(fnv(h, "file"), c->source_path);
	case CFG_SOURCE_GENERATE:
		/* Not `events`: the first N events are the same for any count. */
		snprintf(buf, sizeof(buf), "%llu/%llu/%.17g", (unsigned long long)c->gen_keys,
			 (unsigned long long)c->gen_seed, c->gen_skew);
		return fnv(fnv(h, "generate"), buf);
	case CFG_SOURCE_SPOOL:
		return fnv(fnv(h, "spool"), c->spool_dir);
	case CFG_SOURCE_ZMQ:
		return fnv(h, "zmq");
	case CFG_SOURCE_KAFKA:
		return fnv(fnv(h, "kafka"), c->kafka_topic);
	}
	return h;
}

/* The highest seq any shard applied, +1 (0 if none): a counting source must
 * start above it, or its new events would be skipped as already applied. */
uint64_t wm_next_unapplied(const struct sup *s)
{
	uint64_t next = 0;
	char err[STORE_ERR_LEN];
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		struct store_env *shard;
		int has;
		uint64_t applied, out_len;
		if (store_shard_open(s->cfg.data_dir, p, s->cfg.partitions, s->cfg.map_size,
				     (enum store_sync)s->cfg.sync, 1, &shard, err) != 0)
			continue;
		if (store_shard_progress(shard, &has, &applied, &out_len) == 0 && has &&
		    applied + 1 > next)
			next = applied + 1;
		store_close(shard);
	}
	return next;
}

/* How far each partition is durable, in source positions. After each
 * completed sync a worker publishes the ring position it covered and the
 * seq of the record there (durable_next): the partition's events below it
 * are on disk. When the ring held nothing past that position, marks tell:
 * a mark (pos, seq) taken when the watermark is recorded says every event
 * below seq that went to this partition lies below ring position pos, so
 * once durable_pos reaches pos, seq is the partition's floor. The watermark
 * is the lowest floor: it never passes an event that is committed but not
 * yet on disk. */
#define WM_MARKS 64

struct wm_mark {
	uint64_t pos, seq;
};

struct wm_part {
	struct wm_mark marks[WM_MARKS];
	unsigned head, n;
	uint64_t floor;
};

static void wm_push(struct wm_part *w, uint64_t pos, uint64_t seq)
{
	struct wm_mark *last = w->n ? &w->marks[(w->head + w->n - 1) % WM_MARKS] : NULL;
	/* Nothing new for this partition, or no room: widen the last mark,
	 * which only makes it later to pass. */
	if (last && (last->pos == pos || w->n == WM_MARKS)) {
		*last = (struct wm_mark){pos, seq};
		return;
	}
	w->marks[(w->head + w->n) % WM_MARKS] = (struct wm_mark){pos, seq};
	w->n++;
}

/* Partition p's floor: the source position below which all its events are
 * durable. */
static uint64_t wm_floor(struct sup *s, unsigned p)
{
	struct wm_part *w = &s->wm_parts[p];
	uint64_t next = atomic_load(&s->shm.workers[p].durable_next);
	uint64_t durable = atomic_load(&s->shm.workers[p].durable_pos);
	uint64_t written = ring_write_pos(s->shm.rings[p]);
	while (w->n && w->marks[w->head].pos <= durable) {
		w->floor = w->marks[w->head].seq;
		w->head = (w->head + 1) % WM_MARKS;
		w->n--;
	}
	/* Closer still: the seq of the first record the last sync did not
	 * cover (the worker read it from its ring), unless a replayed one:
	 * it says nothing of the source's. */
	if (next != SHM_NO_SEQ && next > w->floor && !replay_is(next))
		w->floor = next;
	const struct sup_worker *sw = &s->workers[p];
	if (durable >= written && sw->state != WK_FAILED && !sw->held) {
		w->n = 0; /* all it was given is on disk */
		w->floor = s->next_seq;
	} else {
		wm_push(w, written, s->next_seq);
	}
	/* Never past an event held back: the next start redoes it. */
	return sw->held && w->floor > sw->first_held ? sw->first_held : w->floor;
}

void wm_free(struct sup *s)
{
	free(s->wm_parts);
	s->wm_parts = NULL;
}

int wm_prepare(struct sup *s)
{
	uint64_t id = wm_source_id(&s->cfg), old_id, wm = 0, counter = 0;
	s->source_id = id;
	int have = store_meta_get_u64(s->config, "source_id", &old_id) == 0;
	if (have && old_id != id) {
		log_error(
		    "%s was made for another source than this config's [source]: its "
		    "positions would skip or repeat this source's events. Use a new data_dir, "
		    "or the source it was made for",
		    s->cfg.data_dir);
		return -1;
	}
	if (!have && store_meta_put_u64(s->config, "source_id", id) != 0) {
		log_error("%s: cannot record the source", s->cfg.data_dir);
		return -1;
	}
	store_meta_get_u64(s->config, "watermark", &wm);
	if (s->cfg.source_type == CFG_SOURCE_ZMQ) {
		store_meta_get_u64(s->config, "next_seq", &counter);
		uint64_t floor = wm_next_unapplied(s);
		wm = counter > floor ? counter : floor;
	}
	s->resume_seq = s->next_seq = s->watermark = wm;
	s->wm_parts = calloc(s->cfg.partitions, sizeof(*s->wm_parts));
	if (!s->wm_parts) {
		log_error("out of memory");
		return -1;
	}
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		s->wm_parts[p].floor = wm;
	if (wm)
		log_info("resuming the source at seq=%llu", (unsigned long long)wm);
	return 0;
}

/* The supervisor's own dead letters reach the disk before the watermark
 * passes them. */
static int sync_dead_letters(struct sup *s)
{
	if (s->dead_unsynced <= 0)
		return s->dead_unsynced; /* -1: it failed once, never again */
	if (fdatasync(s->dead_fd) != 0) {
		log_error("%s: fsync failed: %s; the kernel may have dropped what it could not "
			  "write, so ringmaster stops without moving its resume position: check "
			  "the disk, then start it again",
			  s->cfg.dead_letter, strerror(errno));
		s->failed = 1;
		s->dead_unsynced = -1;
		sup_request_stop(s);
		return -1;
	}
	s->dead_unsynced = 0;
	return 0;
}

void wm_record(struct sup *s)
{
	uint64_t wm = s->next_seq;
	if (!s->wm_parts || s->cfg.source_type == CFG_SOURCE_KAFKA)
		return; /* Kafka: the group's offsets (src_kafka.c) */
	if (sync_dead_letters(s) != 0)
		return;
	if (s->dead.len && s->dead.first_seq < wm)
		wm = s->dead.first_seq; /* dead letters not yet written */
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		uint64_t floor = wm_floor(s, p);
		if (floor < wm)
			wm = floor;
	}
	if (wm != s->watermark) {
		if (store_meta_put_u64(s->config, "watermark", wm) != 0) {
			log_warn("%s: cannot record the source watermark", s->cfg.data_dir);
		} else {
			s->watermark = wm;
			sup_source_durable(s);
		}
	}
	if (s->cfg.source_type == CFG_SOURCE_ZMQ)
		store_meta_put_u64(s->config, "next_seq", s->next_seq);
}

int wm_record_at(struct sup *s, uint64_t pos)
{
	if (sync_dead_letters(s) != 0)
		return -1;
	if (s->dead.len && s->dead.first_seq < pos) {
		log_error("%s: dead letters before seq=%llu are not written: the resume position "
			  "stays below them",
			  s->cfg.dead_letter, (unsigned long long)pos);
		return -1;
	}
	if (store_meta_put_u64(s->config, "watermark", pos) != 0 || store_sync(s->config) != 0) {
		log_error("%s: cannot record the source watermark", s->cfg.data_dir);
		return -1;
	}
	s->watermark = pos; /* sup_run tells the source */
	return 0;
}

static int str_differs(const char *a, const char *b)
{
	return (a || b) && (!a || !b || strcmp(a, b) != 0);
}

/* Move the live settings of `n` into the running config (cfg.c's table says
 * which) and act on those the supervisor holds elsewhere; what is left in
 * `n` is freed by the caller. */
static void apply_live(struct cfg *c, struct cfg *n)
{
	int new_log = str_differs(c->log_file, n->log_file);

	cfg_take_live(c, n);
	log_set_level(c->log_level);
	if (new_log && log_open(c->log_file) != 0)
		log_error("%s: cannot open the log file; logging where it was",
			  c->log_file ? c->log_file : "stderr");
}

/* Partition p has no worker to act on a barrier, and gets none until an
 * operator or the Kafka group acts: it is failed, or not ours. */
static int no_worker(const struct sup *s, unsigned p)
{
	enum sup_wstate st = s->workers[p].state;
	return st == WK_FAILED || st == WK_UNOWNED;
}

/* A barrier in ring p: version `what` from the ring's write position on,
 * version `from` before it. A partition with no worker does not hold a
 * reload up: it runs `what` from wherever it resumes (its switch seq says
 * where). */
static void set_barrier(struct sup *s, unsigned p, uint64_t from, uint64_t what)
{
	struct shm_worker *st = &s->shm.workers[p];
	int idle = no_worker(s, p);
	atomic_store(&st->barrier_pos, idle ? 0 : ring_write_pos(s->shm.rings[p]));
	atomic_store(&st->barrier_from, idle ? what : from);
	atomic_store(&st->barrier_what, what);
	atomic_store(&st->barrier_kind, SHM_BARRIER_HANDLER);
	atomic_fetch_add_explicit(&st->barrier_id, 1, memory_order_release);
}

void sup_barrier_settle(struct sup *s, unsigned p)
{
	struct shm_worker *st = &s->shm.workers[p];
	if (atomic_load(&st->barrier_id) == atomic_load(&st->barrier_done))
		return;
	atomic_store(&st->barrier_from, atomic_load(&st->barrier_what));
	atomic_store(&st->barrier_pos, 0);
}

void sup_switch_failed(struct sup *s, unsigned p)
{
	struct sup_worker *w = &s->workers[p];
	uint64_t v = atomic_load(&s->shm.workers[p].barrier_what);
	w->state = WK_FAILED;
	w->fail = FAIL_HANDLER;
	s->failed_partitions++;
	snprintf(w->last_exit, sizeof(w->last_exit),
		 "failed: handler version %016llx did not start", (unsigned long long)v);
	log_error("partition %u failed: handler version %016llx did not start in its worker "
		  "(see above), though it passed the reload's check: not restarting it. Its "
		  "events after its switch wait in its ring, held back once that is full; the "
		  "rest goes on. Fix the handler and reload, then run: ringctl restart-worker %u "
		  "(it resumes on the version running then)",
		  p, (unsigned long long)v, p);
}

/* A reload that brings a new version waits until the last one runs
 * everywhere: a running partition that has not switched yet, or workers
 * still to restart for a .so, refuse it. Returns 0 or -1 (msg). */
static int last_swap_done(const struct sup *s, const char *name, char *msg, size_t len)
{
	if (sup_savepoint_active(s)) {
		snprintf(msg, len,
			 "%s: busy: a savepoint is being taken: reload again once it is done "
			 "(ringctl savepoint waits for it)\n",
			 name);
		return -1;
	}
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct shm_worker *st = &s->shm.workers[p];
		if ((s->swap_active && p >= s->swap_next) ||
		    (!no_worker(s, p) &&
		     atomic_load(&st->barrier_id) != atomic_load(&st->barrier_done))) {
			snprintf(msg, len,
				 "%s: partition %u has not switched to the last version yet: "
				 "reload again once it has (ringctl workers)\n",
				 name, p);
			return -1;
		}
	}
	return 0;
}

/* A Lua script changed under the same path: open it with the file checks,
 * compile it and run its top level in a child (handler_check), before any
 * worker hears of it. Returns 0 with *out the new version's script (NULL
 * when it did not change, or the handler is not a Lua script), or -1 with
 * msg filled (file:line): the reload fails and nothing changes. */
static int lua_prepare(struct sup *s, const struct cfg *n, struct lua_script **out, char *msg,
		       size_t len)
{
	int fd;
	*out = NULL;
	if (!handler_is_lua(n->handler) || strcmp(n->handler, s->cfg.handler) != 0)
		return 0; /* a new path needs a restart (cfg_restart_notes) */
	if (handler_open(n, &fd, msg, len) != 0)
		return -1;
	struct lua_script *script = lua_script_read(n->handler, fd, msg, len);
	if (!script || script->hash == s->handler_version ||
	    handler_check_init(n, fd, msg, len) != 0) {
		int rc = script && script->hash == s->handler_version ? 0 : -1;
		if (rc == 0)
			msg[0] = '\0';
		lua_script_free(script);
		close(fd);
		return rc;
	}
	close(fd);
	if (last_swap_done(s, n->handler, msg, len) != 0) {
		lua_script_free(script);
		return -1;
	}
	*out = script;
	return 0;
}

static int is_so(const char *spec)
{
	size_t n = strlen(spec);
	return n > 3 && strcmp(spec + n - 3, ".so") == 0;
}

/* A .so changed under the same path (its content hash): open it with the
 * file checks and load it, and run its init, in a child (handler_check_init:
 * the ABI version and the rest), before any worker hears of it. Returns 0
 * with *fd_out the new file (-1 when it did not change, or the handler is
 * no .so) and *version its hash, or -1 with msg filled: the reload fails
 * and the old library keeps running everywhere. */
static int so_prepare(struct sup *s, const struct cfg *n, int *fd_out, uint64_t *version, char *msg,
		      size_t len)
{
	char v[17];
	int fd, rc;
	*fd_out = -1;
	if (!is_so(n->handler) || strcmp(n->handler, s->cfg.handler) != 0)
		return 0; /* a new path needs a restart (cfg_restart_notes) */
	if (handler_open(n, &fd, msg, len) != 0)
		return -1;
	if ((rc = handler_file_version(fd, v)) != 0) {
		snprintf(msg, len, "%s: cannot read: %s\n", n->handler, strerror(-rc));
		close(fd);
		return -1;
	}
	*version = strtoull(v, NULL, 16);
	if (*version == s->handler_version) {
		close(fd);
		return 0;
	}
	if (last_swap_done(s, n->handler, msg, len) != 0 ||
	    handler_check_init(n, fd, msg, len) != 0) {
		close(fd);
		return -1;
	}
	*fd_out = fd;
	return 0;
}

/* Swap to the .so open on fd: the fork server gets it with each new
 * worker (sup_handler_fd), and sup_handler_swap_step restarts the
 * workers on it one at a time, each at a barrier of its own. */
static void so_switch(struct sup *s, int fd, uint64_t version)
{
	log_info("reload: %s: version %016llx -> %016llx: restarting the workers one at a time, "
		 "each at a batch boundary of its own",
		 s->cfg.handler, (unsigned long long)s->handler_version,
		 (unsigned long long)version);
	s->swap_fd_old = s->handler_fd;
	s->swap_version_old = s->handler_version;
	s->handler_fd = fd;
	s->handler_version = version;
	s->swap_active = 1;
	s->swap_next = 0;
	s->swap_busy = 0;
	sup_handler_swap_step(s);
}

void sup_handler_swap_step(struct sup *s)
{
	while (s->swap_active) {
		unsigned p = s->swap_next;
		if (p == s->cfg.partitions) {
			close(s->swap_fd_old);
			s->swap_fd_old = -1;
			s->swap_active = 0;
			log_info("reload: %s: every partition runs version %016llx", s->cfg.handler,
				 (unsigned long long)s->handler_version);
			return;
		}
		const struct shm_worker *st = &s->shm.workers[p];
		const struct sup_worker *w = &s->workers[p];
		if (!s->swap_busy) {
			set_barrier(s, p, s->swap_version_old, s->handler_version);
			s->swap_busy = 1;
		}
		/* Its turn ends once its new worker runs the new library, or
		 * when it has no worker to wait for (failed, not ours). */
		int alive = w->state == WK_RUNNING || w->state == WK_BACKOFF;
		if (alive && (atomic_load(&st->barrier_done) != atomic_load(&st->barrier_id) ||
			      atomic_load(&st->handler_version) != s->handler_version ||
			      w->state != WK_RUNNING))
			return;
		s->swap_busy = 0;
		s->swap_next++;
	}
}

int sup_handler_fd(const struct sup *s, unsigned p)
{
	const struct shm_worker *st = &s->shm.workers[p];
	if (!s->swap_active)
		return s->handler_fd;
	uint64_t id = atomic_load(&st->barrier_id);
	uint64_t v = atomic_load(&st->barrier_done) == id ? atomic_load(&st->barrier_what)
							  : atomic_load(&st->barrier_from);
	return v == s->swap_version_old ? s->swap_fd_old : s->handler_fd;
}

/* Where workers read a version's script: "handler/<16 hex digits>". */
static int put_script(struct sup *s, const struct lua_script *script, char *msg, size_t len)
{
	char name[64], v[17];
	lua_script_version(script, v);
	snprintf(name, sizeof(name), "handler/%s", v);
	int rc = store_config_put_blob(s->config, name, script->text, script->len);
	if (rc != 0)
		snprintf(msg, len, "%s: cannot store version %s in the config environment: %s\n",
			 script->name, v, strerror(-rc));
	return rc ? -1 : 0;
}

/* The version every partition starts with. */
static void record_version(struct sup *s, uint64_t version)
{
	s->handler_version = version;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		atomic_store(&s->shm.workers[p].barrier_what, version);
		atomic_store(&s->shm.workers[p].barrier_from, version);
	}
}

int sup_handler_record(struct sup *s)
{
	char msg[512], v[17];
	s->swap_fd_old = -1;
	if (is_so(s->cfg.handler) && s->handler_fd >= 0) {
		int rc = handler_file_version(s->handler_fd, v);
		if (rc != 0) {
			log_error("%s: cannot read: %s", s->cfg.handler, strerror(-rc));
			return EX_OSERR;
		}
		record_version(s, strtoull(v, NULL, 16));
		return 0;
	}
	if (!handler_is_lua(s->cfg.handler))
		return 0;
	struct lua_script *script =
	    lua_script_read(s->cfg.handler, s->handler_fd, msg, sizeof(msg));
	if (!script || put_script(s, script, msg, sizeof(msg)) != 0) {
		log_error("%s", msg);
		lua_script_free(script);
		return script ? EX_OSERR : EX_CONFIG;
	}
	record_version(s, script->hash);
	lua_script_free(script);
	return 0;
}

/* Put the new version where workers read it, then a barrier in every
 * ring at its write position: each partition switches once it has
 * committed everything before it, so every event before that point ran
 * the old version and every later one the new. Returns 0 or -1 (msg). */
static int lua_switch(struct sup *s, struct lua_script *script, char *msg, size_t len)
{
	char v[17];
	if (put_script(s, script, msg, len) != 0)
		return -1;
	lua_script_version(script, v);
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		set_barrier(s, p, s->handler_version, script->hash);
	log_info("reload: %s: version %016llx -> %s, each partition switches at a batch "
		 "boundary of its own",
		 script->name, (unsigned long long)s->handler_version, v);
	s->handler_version = script->hash;
	return 0;
}

int sup_reload(struct sup *s, char *msg, size_t len)
{
	struct lua_script *script = NULL;
	int so_fd = -1;
	uint64_t so_version = 0;
	struct cfg n;
	struct cfg_errors errs = {0};
	enum sup_state was = s->state;
	msg[0] = '\0';
	s->state = SUP_RELOADING;
	notify_send("RELOADING=1\nSTATUS=reloading %s", s->config_path);
	log_info("reloading %s", s->config_path);
	int rc = -1;
	if (cfg_load(s->config_path, s->overrides, s->n_overrides, &n, &errs) != 0) {
		snprintf(msg, len, "%s", errs.text ? errs.text : "configuration error\n");
		cfg_errors_free(&errs);
		goto out;
	}
	uint64_t gen;
	if (safety_check_files(&n, s->config_path, msg, len) != 0 ||
	    lua_prepare(s, &n, &script, msg, len) != 0 ||
	    so_prepare(s, &n, &so_fd, &so_version, msg, len) != 0 ||
	    store_config_load(s->config, &n, &gen, msg, len) != 0 ||
	    (script && lua_switch(s, script, msg, len) != 0)) {
		if (so_fd >= 0)
			close(so_fd);
		cfg_free(&n);
		goto out;
	}
	if (so_fd >= 0)
		so_switch(s, so_fd, so_version);
	cfg_restart_notes(&s->cfg, &n, msg, len);
	apply_live(&s->cfg, &n);
	cfg_free(&n);
	s->generation = gen;
	rc = 0;
out:
	lua_script_free(script);
	s->state = was;
	if (rc == 0) {
		log_info("reload done generation=%llu", (unsigned long long)s->generation);
		log_lines(LOG_LEVEL_WARN, "reload: ", msg);
	} else {
		log_error("reload failed: the running configuration is unchanged");
		log_lines(LOG_LEVEL_ERROR, "reload failed: ", msg);
	}
	notify_send("READY=1\nSTATUS=running, generation %llu", (unsigned long long)s->generation);
	return rc;
}
