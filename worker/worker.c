/* worker.c - the worker loop.
 *
 * Take every record in the ring up to batch_max, run the handler on each in
 * one LMDB write transaction, write the batch's output at the length the
 * shard recorded last time, and commit the state, the highest seq and the new
 * output length together. Only then ack the ring. A worker that dies anywhere
 * in between is replaced by one that truncates the output back to the
 * recorded length, rewinds the ring to acked and skips every seq the shard
 * has already applied: each event's effects land exactly once.
 *
 * Committed is not durable. With sync = periodic the worker fsyncs the
 * output, the dead letters and the shard every sync_interval, in that order,
 * and only then publishes (durable_pos, durable_seq in shared memory) how
 * far that sync reached; the supervisor's resume position and Kafka's
 * offsets come from there, so a power cut redoes at most one interval. A
 * failed fsync ends the worker with WRK_EXIT_SYNC_FAILED and is never
 * retried: the kernel may have dropped the pages it could not write.
 *
 * The worker holds a lock on its shard (state/pN/owner.lock) for its whole
 * life, so no two processes ever write one shard.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cfg.h"
#include "changelog.h"
#include "ctx.h"
#include "deadletter.h"
#include "durable.h"
#include "fdlimit.h"
#include "handler.h"
#include "kout.h"
#include "log.h"
#include "lua_handler.h"
#include "output.h"
#include "proctitle.h"
#include "replay.h"
#include "savepoint.h"
#include "store.h"

#define IDLE_WAIT_MS 100
#define GROW_RETRIES 16
#define REPARENT_WAIT_MS 1000

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* "name\0value\0" pairs (store_live) as an array pointing into a copy. */
struct pairs {
	struct cfg_kv *kv;
	size_t n;
	char *buf;
};

/* How far a sync reaches: what publish_durable tells the supervisor. */
struct durable_mark {
	uint64_t pos, seq, next;
	uint32_t has_applied;
};

/* sync = periodic with a file output (or none): most of an interval's
 * fsync is the output written since the last one, and a thread of the
 * worker writes it out (fdatasync of the output and the dead letters) while
 * the worker goes on with the next batches. The sync itself (sync_all) then
 * runs in the worker as before, between two batches and in its order, but
 * finds next to nothing left to write: the thread only makes it short. */
struct bg_sync {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int usable;   /* 1: the thread runs; -1: it cannot (fsync in line) */
	int pending;  /* a sync was asked for and not yet collected */
	int finished; /* ... and the thread is done with it */
	int quit;
	int err; /* its errno, 0 */
	const char *what;
};

struct worker {
	const struct wrk_args *a;
	const struct cfg *cfg; /* &own_cfg */
	struct cfg own_cfg;    /* a->cfg with the settings of the last load */
	struct pairs kafka;    /* own_cfg.kafka */
	struct store_env *config, *shard;
	struct handler hd; /* the handler, once started */
	struct rm_ctx ctx;
	struct ring_rec *recs;
	struct dl_buf dead;
	int dead_fd, lock_fd;
	int sync_failed;	/* an fsync failed: exit WRK_EXIT_SYNC_FAILED */
	int handler_failed;	/* fail_after failures: exit WRK_EXIT_HANDLER_FAILED */
	int switch_failed;	/* a new version did not start: WRK_EXIT_SWITCH_FAILED */
	int reload_exit;	/* at a barrier for a new .so: WRK_EXIT_RELOAD */
	int cut_exit;		/* at a rescale's cut: exit 0, the rest left */
	uint64_t committed_pos; /* ring position after the last committed batch */
	uint64_t synced_pos;	/* ... as of the last completed sync */
	struct bg_sync bg;
	char dead_what[4096], shard_what[4200]; /* for a failed fsync's message */
	const struct output_ops *output;	/* [output] type */
	void *out;				/* its state */
	struct output_env out_env;
	struct kout *kout;	     /* Kafka source or output, else NULL */
	struct changelog *changelog; /* Kafka source, else NULL */
	int has_applied;
	uint64_t applied_seq, out_len, generation;
	/* Replayed dead letters (replay.h) have a mark of their own. */
	int has_replay;
	uint64_t replay_applied;
	uint64_t batch_replay; /* the batch's highest replay seq, 0: none */
	int batch_source;      /* the batch applied a source event */
	size_t stopped_at;     /* the event fail_after stopped on */
	uint64_t last_sync_ns;
	pid_t parent;
	size_t cap_recs;
	struct lua_batch_ev *lua_evs; /* lua_event's, cap_lua_evs of them */
	size_t cap_lua_evs;
	struct pairs params;	  /* own_cfg.params */
	char *settings;		  /* own_cfg's live strings point into it */
	struct stage_timer clock; /* where the time goes (stage.h) */
	struct hot_table hot;	  /* the heaviest keys, sampled */
	uint64_t hot_published_ns;
};

/* The fork server's intermediate process forked us and exits at once: we
 * become the supervisor's child (it is a subreaper). PR_SET_PDEATHSIG fires
 * when the parent we have exits, so it is set only once that parent is the
 * supervisor. Should the supervisor be dead already, we end up another
 * process's child: then, as when it dies later, drain the ring and exit. */
static int setup_signals(pid_t parent)
{
	struct sigaction sa = {.sa_handler = on_term};
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal must interrupt the futex wait. */
	if (sigaction(SIGTERM, &sa, NULL) != 0)
		return -1;
	/* Ctrl-C reaches the whole process group; the supervisor decides. */
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	pid_t first = getppid();
	for (int ms = 0; first != parent && getppid() == first && ms < REPARENT_WAIT_MS; ms++)
		usleep(1000);
	if (getppid() == parent && prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
		return -1;
	if (getppid() != parent) /* it died before prctl took effect */
		stop_requested = 1;
	return 0;
}

/* Split `len` bytes of "name\0value\0" pairs into p (a copy: the source
 * points into an LMDB map), replacing what p held. */
static int pairs_set(struct pairs *p, const char *src, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += src[i] == '\0';
	char *buf = malloc(len + 1);
	struct cfg_kv *kv = calloc(n / 2 + 1, sizeof(*kv));
	if (!buf || !kv) {
		free(buf);
		free(kv);
		return -1;
	}
	memcpy(buf, src, len);
	for (size_t i = 0, off = 0; i < n / 2; i++) {
		kv[i].key = buf + off;
		off += strlen(buf + off) + 1;
		kv[i].value = buf + off;
		off += strlen(buf + off) + 1;
	}
	free(p->buf);
	free(p->kv);
	*p = (struct pairs){kv, n / 2, buf};
	return 0;
}

/* The configuration this worker was forked with is the one ringmaster
 * started with (the fork server's copy): take the live settings of the last
 * load in the config environment into own_cfg, at start and at each new
 * generation. Some are read once, when an output opens (stop_timeout,
 * watchdog, [kafka]); apply_live acts on the per-batch ones. -ENOENT
 * before the first load: the fork-time configuration holds. */
static int take_live(struct worker *w, struct store_txn *txn)
{
	struct store_live live;
	int rc = store_config_live(txn, &live);
	if (rc != 0)
		return rc;
	char *settings = malloc(live.settings_len + 1); /* the map's bytes: copied */
	if (!settings)
		return -ENOMEM;
	memcpy(settings, live.settings, live.settings_len);
	if (cfg_live_unpack(&w->own_cfg, settings, live.settings_len) != 0) {
		free(settings);
		return -EIO;
	}
	free(w->settings);
	w->settings = settings;
	if (pairs_set(&w->params, live.params, live.params_len) != 0)
		return -ENOMEM;
	w->own_cfg.params = w->params.kv;
	w->own_cfg.n_params = w->params.n;
	if (pairs_set(&w->kafka, live.kafka, live.kafka_len) != 0)
		return -ENOMEM;
	w->own_cfg.kafka = w->kafka.kv;
	w->own_cfg.n_kafka = w->kafka.n;
	log_set_level(w->cfg->log_level);
	return 0;
}

static int take_start_settings(struct worker *w)
{
	struct store_txn *txn;
	int rc = store_config_read(w->config, &txn);
	if (rc == 0) {
		rc = take_live(w, txn);
		store_txn_abort(txn);
	}
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		log_error("cannot read the settings of the last load: %s", strerror(-rc));
	return rc ? -1 : 0;
}

/* One writer per shard, whatever else runs: a worker of an earlier
 * instance (its supervisor killed, it drains its ring) holds the lock until
 * it exits. The supervisor waits for such workers before it forks any, so
 * meeting one here is a race: fail, and be restarted with backoff. */
static int lock_shard(struct worker *w)
{
	char path[4200], err[DUR_ERR_LEN];
	pid_t holder;
	snprintf(path, sizeof(path), "%s/state/p%u/owner.lock", w->cfg->data_dir, w->a->partition);
	int rc = dur_lock(path, &w->lock_fd, &holder, err);
	if (rc == -EWOULDBLOCK)
		log_error("partition %u is still written by pid %ld (a worker of a previous "
			  "instance?): not opening it until that process exits",
			  w->a->partition, (long)holder);
	else if (rc)
		log_error("%s", err);
	return rc ? -1 : 0;
}

/* The worker's own Kafka producer (never the supervisor's handles), for
 * the changelog of a Kafka source and for a Kafka output. */
static int open_kafka(struct worker *w)
{
	const struct cfg *cfg = w->cfg;
	char err[512];
	if (cfg->source_type != CFG_SOURCE_KAFKA && !w->output->producer)
		return 0;
	if (kout_open(&w->kout, cfg, w->a->partition, err, sizeof(err)) != 0 ||
	    (cfg->source_type == CFG_SOURCE_KAFKA &&
	     changelog_open(&w->changelog, cfg, w->a->partition, w->shard, w->kout,
			    atomic_load(&w->a->stats->kafka_generation), err, sizeof(err)) != 0)) {
		log_error("%s", err);
		return -1;
	}
	kout_watch(w->kout, &w->a->stats->heartbeat_ns, &stop_requested);
	if (w->changelog)
		changelog_watch(w->changelog, &w->a->stats->heartbeat_ns, &stop_requested);
	return 0;
}

/* Kafka source: fence the changelog and bring the shard up to it, then say
 * in shared memory what it has applied (the supervisor starts reading the
 * partition there) and that the worker is ready. Returns 0, 1 when asked to
 * stop meanwhile or fenced (logged), -1 on an error (logged). */
static int restore_state(struct worker *w)
{
	struct shm_worker *st = w->a->stats;
	char err[STORE_ERR_LEN];
	uint64_t out_len;
	int rc;
	if (!w->changelog)
		return 0;
	atomic_store(&st->heartbeat_ns, shm_now_ns()); /* the watchdog counts from here */
	for (int tries = 0; tries < GROW_RETRIES; tries++) {
		rc = changelog_restore(w->changelog, w->out_len, st);
		if (rc != STORE_MAP_FULL)
			break;
		if (store_grow(w->shard, err) != 0) {
			log_error("%s", err);
			return -1;
		}
	}
	if (rc == -EINTR || rc == -ESTALE)
		return 1;
	if (rc != 0 ||
	    store_shard_progress(w->shard, &w->has_applied, &w->applied_seq, &out_len) != 0) {
		log_error("partition %u: cannot bring its state up to the changelog",
			  w->a->partition);
		return -1;
	}
	atomic_store(&st->applied_seq, w->applied_seq);
	atomic_store(&st->has_applied, (uint32_t)w->has_applied);
	atomic_store(&st->restoring, 0);
	return 0;
}

/* Kafka source: produce the batch's changelog records and wait until
 * Kafka has them all, before the commit: at least once (a batch that does
 * not commit is redone and written again), never lost. The output was
 * written first: a batch is in the changelog, where another owner may
 * apply it, only once its output is out. The changelog records must land
 * right after this worker's previous ones, or the partition has another
 * owner (changelog_check_batch). */
static int changelog_send(struct worker *w, uint64_t max_seq)
{
	if (!w->changelog)
		return 0;
	if (output_owned(&w->out_env, "writing it to the changelog") != 0 ||
	    changelog_put_batch(w->changelog, &w->ctx, max_seq) != 0 || kout_flush(w->kout) != 0 ||
	    changelog_check_batch(w->changelog) != 0)
		return -1;
	return 0;
}

/* The output, cut back to what the shard says was committed: anything
 * past it belongs to a batch that never committed and will be written
 * again. */
static int open_output(struct worker *w)
{
	w->out_env = (struct output_env){.cfg = w->cfg,
					 .partition = w->a->partition,
					 .stats = w->a->stats,
					 .stop = &stop_requested,
					 .kout = w->kout};
	return w->output->open ? w->output->open(&w->out, &w->out_env, &w->out_len) : 0;
}

static int open_all(struct worker *w)
{
	const struct cfg *cfg = w->cfg;
	char err[STORE_ERR_LEN];
	if (lock_shard(w) != 0)
		return -1;
	if (store_config_open(cfg->data_dir, cfg->map_size, 1, &w->config, err) != 0 ||
	    store_shard_open(cfg->data_dir, w->a->partition, cfg->partitions, cfg->map_size,
			     (enum store_sync)cfg->sync, 0, &w->shard, err) != 0) {
		log_error("%s", err);
		return -1;
	}
	if (take_start_settings(w) != 0)
		return -1;
	if (store_shard_progress(w->shard, &w->has_applied, &w->applied_seq, &w->out_len) != 0 ||
	    store_shard_replay_applied(w->shard, &w->has_replay, &w->replay_applied) != 0) {
		log_error("cannot read the progress of partition %u", w->a->partition);
		return -1;
	}
	w->output = output_ops(cfg->output_type);
	if (!w->output) {
		log_error("%s: [output] type: no output of this type in this build",
			  cfg_origin(cfg, "output", "type"));
		return -1;
	}
	if (open_kafka(w) != 0 || open_output(w) != 0)
		return -1;
	snprintf(w->dead_what, sizeof(w->dead_what), "%s", cfg->dead_letter);
	snprintf(w->shard_what, sizeof(w->shard_what), "%s/state/p%u", cfg->data_dir,
		 w->a->partition);
	w->dead_fd = dl_open(cfg->dead_letter);
	if (w->dead_fd < 0) {
		log_error("%s: cannot open dead-letter file: %s", cfg->dead_letter,
			  strerror(-w->dead_fd));
		return -1;
	}
	w->cap_recs = cfg->batch_max;
	w->recs = calloc(w->cap_recs, sizeof(*w->recs));
	if (!w->recs || ctx_init(&w->ctx, cfg, w->a->partition) != 0) {
		log_error("out of memory");
		return -1;
	}
	w->ctx.keep_lines = w->output->keep_lines;
	return 0;
}

/* The next worker dead-letters `seq` as lua_timeout: the guard of a Lua
 * handler ends this one when a call cannot be interrupted (lua_handler.h). */
static void hard_timeout(void *arg, uint64_t seq)
{
	struct shm_worker *st = arg;
	/* The ring's seq, which the next worker compares: a replayed event's
	 * own, where the handler saw its original one. */
	uint64_t in_ring = atomic_load(&st->current_seq);
	atomic_store(&st->skip_why, SHM_SKIP_LUA_TIMEOUT);
	atomic_store(&st->skip_seq, in_ring != SHM_NO_SEQ ? in_ring : seq);
}

/* The script of handler version `version`, which a reload put in the
 * config environment, or NULL (logged). */
static struct lua_script *script_of(struct worker *w, uint64_t version)
{
	char name[64];
	struct store_txn *txn;
	struct store_val v;
	struct lua_script *s = NULL;
	snprintf(name, sizeof(name), "handler/%016llx", (unsigned long long)version);
	int rc = store_config_read(w->config, &txn);
	if (rc == 0) {
		rc = store_config_get_blob(txn, name, &v);
		if (rc == 0 && !(s = lua_script_new(w->cfg->handler, v.data, v.len)))
			rc = -ENOMEM;
		store_txn_abort(txn);
	}
	if (rc != 0)
		log_error("%s: cannot read handler version %016llx from the config environment: %s",
			  w->cfg->handler, (unsigned long long)version, strerror(-rc));
	return s;
}

/* Load the handler and run its init (no fini after a failed one): the
 * file the supervisor opened, or the version a reload's barrier says this
 * partition runs at its acked position. */
static int start_handler(struct worker *w, struct handler *h, uint64_t version)
{
	char msg[1024];
	const struct cfg *cfg = w->cfg;
	struct lua_script *script = NULL;
	if (version && handler_is_lua(cfg->handler) && !(script = script_of(w, version)))
		return -1;
	/* init may read tables: a view of the config environment for it, and
	 * nothing else it did (state, output) outlives it. */
	int rc = store_config_read(w->config, &w->ctx.cfg_txn);
	if (rc != 0) {
		log_error("cannot begin a transaction: %s", strerror(-rc));
		lua_script_free(script);
		return -1;
	}
	rc = handler_start(h, cfg->handler, w->a->handler_fd, script, &w->ctx, msg, sizeof(msg));
	store_txn_abort(w->ctx.cfg_txn);
	w->ctx.cfg_txn = NULL;
	ctx_reset(&w->ctx);
	if (rc != 0) {
		log_error("%s: [worker] handler: %s", cfg_origin(cfg, "worker", "handler"), msg);
		return -1;
	}
	if (h->script)
		lua_handler_on_hard_timeout(h->state, hard_timeout, w->a->stats);
	atomic_store(&w->a->stats->handler_version, strtoull(h->version, NULL, 16));
	return 0;
}

/* The version this partition runs at its acked position: the one before
 * a barrier it has not acted on yet, else the latest (the supervisor sets
 * both to the version it started with); 0 for a handler that is not a
 * script (its file's). */
static uint64_t version_at_start(struct worker *w)
{
	struct shm_worker *st = w->a->stats;
	uint64_t id = atomic_load(&st->barrier_id);
	return atomic_load(&st->barrier_done) == id ? atomic_load(&st->barrier_what)
						    : atomic_load(&st->barrier_from);
}

/* A savepoint's barrier: everything before it is committed, so the shard
 * as it is now is the partition's part of the cut. Copy it (compacted)
 * into the savepoint's state/pP, unless the savepoint was given up, and
 * report the copy and the shard's progress for the manifest. A failed copy
 * (a full disk, even a failed fsync: it is the copy's pages, thrown away
 * with it, not the shard's) fails the savepoint, not the worker. */
static void take_savepoint(struct worker *w, uint64_t id)
{
	struct shm_worker *st = w->a->stats;
	uint64_t sp = atomic_load(&st->savepoint_id), size = 0, sum = 0, replay = 0;
	char dir[SHM_SAVEPOINT_DIR + 32], err[1024];
	int rc = -ECANCELED;
	if (w->a->sup && atomic_load(&w->a->sup->savepoint_live) == sp) {
		snprintf(dir, sizeof(dir), "%s/state/p%u", w->a->sup->savepoint_dir,
			 w->a->partition);
		uint64_t t0 = shm_now_ns();
		rc = savepoint_copy_env(w->shard, dir, &size, &sum, err, sizeof(err));
		if (rc != 0)
			log_error("partition %u: savepoint %llu: %s", w->a->partition,
				  (unsigned long long)sp, err);
		else
			log_info("partition %u: savepoint %llu: shard copied after seq=%llu, %llu "
				 "bytes in %.3f s",
				 w->a->partition, (unsigned long long)sp,
				 w->has_applied ? (unsigned long long)w->applied_seq : 0ull,
				 (unsigned long long)size, (double)(shm_now_ns() - t0) / 1e9);
	}
	/* What the shard says, as the copy has it (everything is committed). */
	int has = 0;
	uint64_t applied = 0, out_len = 0;
	if (rc == 0 && store_shard_progress(w->shard, &has, &applied, &out_len) != 0)
		rc = -EIO;
	store_meta_get_u64(w->shard, "replay_applied", &replay); /* absent: none (0) */
	atomic_store(&st->savepoint_size, size);
	atomic_store(&st->savepoint_sum, sum);
	atomic_store(&st->savepoint_applied, applied);
	atomic_store(&st->savepoint_has_applied, (uint32_t)has);
	atomic_store(&st->savepoint_output_len, out_len);
	atomic_store(&st->savepoint_replay, replay);
	atomic_store(&st->savepoint_rc, rc);
	atomic_store(&st->barrier_done, id);
}

/* Act on a barrier once every record before it is committed: switch to
 * the handler version it names, between two batches. Returns 0, or -1
 * when the worker stops here with everything before the barrier
 * committed: for a new .so (WRK_EXIT_RELOAD), or when the new version
 * cannot start (logged): its partition fails (WRK_EXIT_SWITCH_FAILED)
 * rather than run on the old version unseen. */
static int pass_barrier(struct worker *w)
{
	struct shm_worker *st = w->a->stats;
	uint64_t id = atomic_load(&st->barrier_id);
	if (id == atomic_load_explicit(&st->barrier_done, memory_order_relaxed) ||
	    w->committed_pos < atomic_load(&st->barrier_pos))
		return 0;
	if (atomic_load(&st->barrier_kind) == SHM_BARRIER_SAVEPOINT) {
		take_savepoint(w, id);
		return 0;
	}
	if (atomic_load(&st->barrier_kind) == SHM_BARRIER_STOP) {
		/* A rescale's cut: what follows is read again from the cut
		 * by the rescaled instance, so it is left unprocessed. */
		uint64_t left = ring_write_pos(w->a->ring) - w->committed_pos;
		log_info("partition %u: stopped at the rescale's cut after seq=%llu (barrier "
			 "%llu), leaving %llu bytes of events in the ring",
			 w->a->partition,
			 w->has_applied ? (unsigned long long)w->applied_seq : 0ull,
			 (unsigned long long)id, (unsigned long long)left);
		atomic_store(&st->barrier_done, id);
		w->cut_exit = 1;
		return -1;
	}
	uint64_t what = atomic_load(&st->barrier_what);
	uint64_t was = atomic_load(&st->handler_version);
	if (what != was && w->hd.dl) {
		/* A new .so: the fork server holds it, so the next worker loads
		 * it; this one stops here, everything before it committed. */
		atomic_store(&st->switch_seq, w->has_applied ? w->applied_seq : SHM_NO_SEQ);
		log_info("partition %u: handler version %016llx -> %016llx after seq=%llu (barrier "
			 "%llu): restarting on the new library",
			 w->a->partition, (unsigned long long)was, (unsigned long long)what,
			 w->has_applied ? (unsigned long long)w->applied_seq : 0ull,
			 (unsigned long long)id);
		atomic_store(&st->barrier_done, id);
		w->reload_exit = 1;
		return -1;
	}
	if (what != was) {
		struct handler fresh;
		if (start_handler(w, &fresh, what) != 0) {
			atomic_store(&st->handler_version, was);
			log_error(
			    "partition %u: handler version %016llx did not start at its switch "
			    "(barrier %llu; see above): stopping with every event up to "
			    "seq=%llu done by version %016llx; the partition fails",
			    w->a->partition, (unsigned long long)what, (unsigned long long)id,
			    w->has_applied ? (unsigned long long)w->applied_seq : 0ull,
			    (unsigned long long)was);
			w->switch_failed = 1;
			return -1;
		}
		handler_stop(&w->hd, &w->ctx);
		w->hd = fresh;
	}
	atomic_store(&st->switch_seq, w->has_applied ? w->applied_seq : SHM_NO_SEQ);
	log_info("partition %u: handler version %016llx -> %016llx after seq=%llu (barrier %llu)",
		 w->a->partition, (unsigned long long)was, (unsigned long long)what,
		 w->has_applied ? (unsigned long long)w->applied_seq : 0ull,
		 (unsigned long long)id);
	atomic_store(&st->barrier_done, id);
	return 0;
}

/* A rescale's cut being chosen: between two batches, everything read is
 * committed; say where, and wait for the supervisor to place the barrier
 * (rescale_sup.c). Returns 0, or -1 when asked to stop meanwhile. */
static int cut_pause(struct worker *w)
{
	struct shm_worker *st = w->a->stats;
	uint64_t id = atomic_load_explicit(&st->barrier_id, memory_order_acquire);
	if (id == atomic_load_explicit(&st->barrier_done, memory_order_relaxed) ||
	    atomic_load(&st->barrier_kind) != SHM_BARRIER_STOP ||
	    atomic_load_explicit(&st->barrier_pos, memory_order_acquire) != SHM_CUT_PENDING)
		return 0;
	if (atomic_load(&st->cut_ready) != id) {
		atomic_store(&st->cut_committed, w->committed_pos);
		atomic_store(&st->cut_next, w->has_applied ? w->applied_seq + 1 : 0);
		atomic_store_explicit(&st->cut_ready, id, memory_order_release);
	}
	while (atomic_load_explicit(&st->barrier_pos, memory_order_acquire) == SHM_CUT_PENDING) {
		if (stop_requested)
			return -1;
		atomic_store_explicit(&st->heartbeat_ns, shm_now_ns(), memory_order_relaxed);
		usleep(1000);
	}
	return 0;
}

/* LMDB reports a short write on a full disk as EIO: the free space tells. */
static unsigned long long free_space(const char *dir)
{
	struct statvfs sv;
	if (statvfs(dir, &sv) != 0)
		return 0;
	return (unsigned long long)sv.f_bavail * sv.f_frsize;
}

/* Write the batch's state back and commit it with its progress, growing the
 * map as often as it takes. */
static int commit_batch(struct worker *w, uint64_t max_seq, uint64_t new_out_len)
{
	char err[STORE_ERR_LEN];
	for (int tries = 0; tries < GROW_RETRIES; tries++) {
		int rc = ctx_write_back(&w->ctx);
		if (rc == 0 && w->changelog)
			rc = changelog_put_position(w->changelog, w->ctx.shard_txn);
		if (rc == 0 && w->batch_replay)
			rc = store_shard_meta_put_u64(w->ctx.shard_txn, "replay_applied",
						      w->batch_replay);
		/* Replayed events alone: no source seq is applied yet. */
		if (rc == 0 && !w->has_applied && !w->batch_source &&
		    (rc = store_shard_meta_put_u64(w->ctx.shard_txn, "output_len", new_out_len)) ==
			0)
			rc = store_shard_commit_state(w->ctx.shard_txn);
		else if (rc == 0)
			rc = store_shard_commit(w->ctx.shard_txn, max_seq, new_out_len);
		else
			store_txn_abort(w->ctx.shard_txn);
		w->ctx.shard_txn = NULL;
		if (rc == 0)
			ctx_committed(&w->ctx); /* the cached state is the shard's */
		if (rc != STORE_MAP_FULL)
			return rc;
		if (store_grow(w->shard, err) != 0) {
			log_error("%s", err);
			return STORE_MAP_FULL;
		}
		log_info("state map full: grew it and retrying the commit partition=%u",
			 w->a->partition);
		if ((rc = store_shard_begin(w->shard, &w->ctx.shard_txn)) != 0)
			return rc;
	}
	return STORE_MAP_FULL;
}

/* An fsync failed: say so with the file and the error, and never try again
 * in this process or another (see WRK_EXIT_SYNC_FAILED). */
static int sync_failed(struct worker *w, const char *what, int err)
{
	struct shm_worker *st = w->a->stats;
	log_error("%s: fsync failed: %s; the kernel may have dropped what it could not "
		  "write, so partition %u stops here and is not restarted: check the disk, "
		  "then restart ringmaster",
		  what, strerror(err), w->a->partition);
	w->sync_failed = 1;
	atomic_store(&st->sync_failed, 1);
	return -1;
}

/* How far a sync started now reaches. The partition's events are in seq
 * order in the ring: every one below the next record's seq is committed
 * (read it now: once acked, the ring may hold other records there). */
static struct durable_mark durable_now(struct worker *w)
{
	struct durable_mark d = {w->committed_pos, w->applied_seq, SHM_NO_SEQ,
				 (uint32_t)w->has_applied};
	if (ring_seq_at(w->a->ring, w->committed_pos, &d.next) != 0)
		d.next = SHM_NO_SEQ;
	return d;
}

/* A sync reaching `d` is done: tell the supervisor how far. */
static void publish_durable(struct worker *w, const struct durable_mark *d)
{
	struct shm_worker *st = w->a->stats;
	w->synced_pos = d->pos;
	atomic_store(&st->durable_seq, d->seq);
	atomic_store(&st->has_durable, d->has_applied);
	atomic_store(&st->durable_next, d->next);
	atomic_store(&st->durable_pos, d->pos);
}

/* fdatasync the output and the dead letters. Returns 0 or an errno, with
 * *what the file. Touches nothing the worker's thread changes: the sync
 * thread runs it too. */
static int sync_outputs(struct worker *w, const char **what)
{
	int rc = w->output->sync ? w->output->sync(w->out, what) : 0;
	if (rc)
		return -rc;
	*what = w->dead_what;
	if (w->dead_fd >= 0 && fdatasync(w->dead_fd) != 0)
		return errno;
	return 0;
}

/* The fsyncs that make every commit so far durable: output first, then dead
 * letters, then the shard, so that what the shard records (output length,
 * applied seq) is never on disk ahead of the output and dead letters it
 * stands for: in the worker's thread, with no commit in between. */
static int sync_files(struct worker *w, const char **what)
{
	int err = sync_outputs(w, what);
	if (err)
		return err;
	*what = w->shard_what;
	int rc = store_sync(w->shard);
	return rc ? -rc : 0;
}

static void *bg_main(void *arg)
{
	struct worker *w = arg;
	struct bg_sync *b = &w->bg;
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->quit && (!b->pending || b->finished))
			pthread_cond_wait(&b->cv, &b->mu);
		if (b->quit)
			break;
		pthread_mutex_unlock(&b->mu);
		const char *what = NULL;
		int err = sync_outputs(w, &what);
		pthread_mutex_lock(&b->mu);
		b->err = err;
		b->what = what;
		b->finished = 1;
		pthread_cond_broadcast(&b->cv);
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

/* Start the sync thread, with every signal blocked (they are the worker's
 * own thread's: a stop must interrupt its futex wait). Only for an output
 * whose sync is an fdatasync: a Kafka producer's flush is not to be called
 * from another thread. */
static void bg_start(struct worker *w)
{
	struct bg_sync *b = &w->bg;
	b->usable = -1;
	if (w->output->sync && w->output != &output_file)
		return;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_mutex_init(&b->mu, NULL) == 0) {
		if (pthread_cond_init(&b->cv, NULL) == 0) {
			if (pthread_create(&b->th, NULL, bg_main, w) == 0)
				b->usable = 1;
			else
				pthread_cond_destroy(&b->cv);
		}
		if (b->usable != 1)
			pthread_mutex_destroy(&b->mu);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (b->usable != 1)
		log_warn("partition %u: no thread for the periodic fsyncs: the worker runs them "
			 "itself",
			 w->a->partition);
}

static void bg_stop(struct worker *w)
{
	struct bg_sync *b = &w->bg;
	if (b->usable != 1)
		return;
	pthread_mutex_lock(&b->mu);
	b->quit = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->th, NULL);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	b->usable = 0;
}

/* The thread's fsyncs, if some were asked for: 0 while they run (or
 * waiting for them), 1 once they are done, -1 if one failed (as any failed
 * fsync: the worker stops, never tries again). */
static int bg_collect(struct worker *w, int wait)
{
	struct bg_sync *b = &w->bg;
	if (!b->pending)
		return 0;
	pthread_mutex_lock(&b->mu);
	while (wait && !b->finished)
		pthread_cond_wait(&b->cv, &b->mu);
	int done = b->finished, err = b->err;
	const char *what = b->what;
	if (done)
		b->pending = b->finished = 0;
	pthread_mutex_unlock(&b->mu);
	if (!done)
		return 0;
	return err ? sync_failed(w, what, err) : 1;
}

/* Make every commit so far durable, here and now (after the one in the
 * thread, if any). */
static int sync_all(struct worker *w)
{
	if (bg_collect(w, 1) < 0)
		return -1;
	struct durable_mark d = durable_now(w);
	const char *what = NULL;
	int err = sync_files(w, &what);
	if (err)
		return sync_failed(w, what, err);
	publish_durable(w, &d);
	return 0;
}

/* sync = periodic: sync every sync_interval while there is something new,
 * once the thread has written the outputs out. */
static int maybe_sync(struct worker *w)
{
	if (w->cfg->sync != CFG_SYNC_PERIODIC)
		return 0;
	int pre = bg_collect(w, 0);
	if (pre < 0)
		return -1;
	if (pre == 0) {
		if (w->bg.pending || w->synced_pos == w->committed_pos)
			return 0;
		uint64_t now = shm_now_ns();
		if (now - w->last_sync_ns < w->cfg->sync_interval_ms * 1000000u)
			return 0;
		w->last_sync_ns = now;
		if (!w->bg.usable)
			bg_start(w);
		if (w->bg.usable == 1) {
			pthread_mutex_lock(&w->bg.mu);
			w->bg.pending = 1;
			pthread_cond_broadcast(&w->bg.cv);
			pthread_mutex_unlock(&w->bg.mu);
			return 0;
		}
	}
	unsigned was = w->clock.cur;
	stage_enter(&w->clock, WRK_ST_FSYNC);
	int rc = sync_all(w);
	stage_enter(&w->clock, was);
	return rc;
}

/* The seq the handler and the dead letters see: a replayed event's
 * original one (replay.h), so its output is what it would have been. */
static uint64_t event_seq(struct worker *w, uint64_t seq)
{
	uint64_t orig;
	if (replay_is(seq) && replay_orig_seq(w->ctx.cfg_txn, seq, &orig) == 0)
		return orig;
	return seq;
}

/* Applied before: a replayed event against the replay mark, a source
 * event against applied_seq. */
static int applied_before(const struct worker *w, uint64_t seq)
{
	if (replay_is(seq))
		return w->has_replay && seq <= w->replay_applied;
	return w->has_applied && seq <= w->applied_seq;
}

/* Dead-letter the event: written with the batch, before its commit. */
static int dead_letter(struct worker *w, const struct ring_rec *r, const char *why)
{
	return dl_add_event(&w->dead, event_seq(w, r->seq), why, r->key, r->key_len,
			    w->cfg->delimiter, r->payload, r->payload_len);
}

/* The handler failed on `r` without dying (`why`: lua_error...): one more
 * failure in a row. Returns 0 to dead-letter it, or 1 when that makes
 * fail_after: the worker stops before it (WRK_EXIT_HANDLER_FAILED), so
 * that it waits in the ring as after fail_after poison events. */
static int note_failure(struct worker *w, const struct ring_rec *r, const char *why)
{
	struct shm_worker *st = w->a->stats;
	uint32_t n = atomic_fetch_add_explicit(&st->handler_fails, 1, memory_order_relaxed) + 1;
	if (n < w->cfg->fail_after)
		return 0;
	log_error("partition %u: the handler failed on %u events in a row (fail_after), the "
		  "last seq=%llu (%s): committing the events before it and stopping",
		  w->a->partition, n, (unsigned long long)r->seq, why);
	w->handler_failed = 1;
	return 1;
}

static int event_done(struct worker *w, const struct ring_rec *r, int rc);

/* Run the handler on one event. Returns 0 (done, or rejected and
 * dead-lettered), 1 (not done: note_failure) or -1 (logged). */
static int handle_event(struct worker *w, const struct ring_rec *r, uint64_t hash)
{
	struct shm_worker *st = w->a->stats;
	atomic_store_explicit(&st->current_seq, r->seq, memory_order_relaxed);
	uint64_t seq = event_seq(w, r->seq);
	struct rm_event ev = {seq, r->key, r->key_len, r->payload, r->payload_len};
	ctx_set_event_hashed(&w->ctx, seq, r->key, r->key_len, hash);
	w->ctx.reject_reason[0] = '\0';
	w->ctx.event_failed = 0;
	return event_done(w, r, w->hd.ops->process(&w->ctx, w->hd.state, &ev));
}

/* The handler returned rc for `r`: handle_event's result. */
static int event_done(struct worker *w, const struct ring_rec *r, int rc)
{
	struct shm_worker *st = w->a->stats;
	if (rc == RM_ERROR || w->ctx.failed || (rc != RM_OK && rc != RM_REJECT)) {
		log_error("handler %s failed on seq=%llu key=%.*s: %s", w->hd.ops->name,
			  (unsigned long long)r->seq, (int)r->key_len, r->key,
			  w->ctx.failed	   ? strerror(-w->ctx.failed)
			  : rc == RM_ERROR ? "it returned RM_ERROR"
					   : "it returned an unknown code");
		return -1;
	}
	if (!w->ctx.event_failed)
		atomic_store_explicit(&st->handler_fails, 0, memory_order_relaxed);
	else if (note_failure(w, r, w->ctx.reject_reason))
		return 1;
	if (rc == RM_REJECT)
		return dead_letter(w, r,
				   w->ctx.reject_reason[0] ? w->ctx.reject_reason : "rejected");
	return 0;
}

/* The Lua handler runs a run of events in one call (lua_handler_batch):
 * events before ok ended RM_OK; when end is ok + 1, event ok is the one it
 * stopped on, with result rc. */
struct lua_run {
	size_t ok, end;
	int rc;
};

/* handle_event for a Lua handler: the first event of a run runs it up to
 * the next event handle_batch skips or dead-letters itself (or the batch's
 * end); the events after it take their result from the run. */
static int lua_event(struct worker *w, size_t i, size_t n, struct lua_run *run)
{
	if (i < run->ok)
		return 0;
	if (i < run->end)
		return event_done(w, &w->recs[i], run->rc);
	struct shm_worker *st = w->a->stats;
	uint64_t skip = atomic_load_explicit(&st->skip_seq, memory_order_relaxed);
	size_t end = i + 1;
	while (end < n && !applied_before(w, w->recs[end].seq) && w->recs[end].seq != skip)
		end++;
	if (end - i > w->cap_lua_evs) {
		struct lua_batch_ev *e = realloc(w->lua_evs, (end - i) * sizeof(*e));
		if (!e) {
			log_error("out of memory for a batch of %zu events", end - i);
			return -1;
		}
		w->lua_evs = e;
		w->cap_lua_evs = end - i;
	}
	for (size_t j = i; j < end; j++) {
		const struct ring_rec *r = &w->recs[j];
		w->lua_evs[j - i] = (struct lua_batch_ev){
		    event_seq(w, r->seq), r->seq, r->key, r->payload, r->key_len, r->payload_len};
	}
	size_t done = 0;
	run->rc =
	    lua_handler_batch(&w->ctx, w->hd.state, w->lua_evs, end - i, &st->current_seq, &done);
	run->ok = i + done;
	run->end = done < end - i ? run->ok + 1 : run->ok;
	if (done) /* events that ended well: no failures in a row */
		atomic_store_explicit(&st->handler_fails, 0, memory_order_relaxed);
	return lua_event(w, i, n, run);
}

_Static_assert(CTX_EVREF_OK(struct ring_rec), "ctx_ahead reads a ring record's key and payload");

/* Run the handler over the batch. Returns the index of the last event it
 * applied + 1 (0 if all were skipped) or -1 on a handler error. */
static long handle_batch(struct worker *w, size_t n, uint64_t *max_seq, uint64_t *processed,
			 uint64_t *good_seq)
{
	struct shm_worker *st = w->a->stats;
	long last = 0;
	struct lua_run run = {0, 0, RM_OK};
	int lua = w->hd.ops == &lua_handler;
	atomic_store_explicit(&st->batch_n, (uint32_t)n, memory_order_relaxed);
	atomic_store_explicit(&st->batch_last_seq, w->recs[n - 1].seq, memory_order_relaxed);
	struct ctx_ahead ahead = {.primed = 0};
	for (size_t i = 0; i < n; i++) {
		const struct ring_rec *r = &w->recs[i];
		uint64_t hash =
		    lua ? 0 : ctx_ahead(&w->ctx, &ahead, &w->recs[0].key, sizeof(*r), i, n);
		if (applied_before(w, r->seq)) {
			atomic_fetch_add_explicit(&st->skipped, 1, memory_order_relaxed);
			continue;
		}
		if (r->seq == atomic_load_explicit(&st->skip_seq, memory_order_relaxed)) {
			/* Workers kept dying on this event, or one was stopped
			 * on it (lua_timeout): dead-letter it. */
			int timeout = atomic_load_explicit(&st->skip_why, memory_order_relaxed) ==
				      SHM_SKIP_LUA_TIMEOUT;
			const char *why = timeout ? "lua_timeout" : "poison";
			if (timeout && note_failure(w, r, why)) {
				w->stopped_at = i;
				return last;
			}
			log_error("dead-lettering %s event seq=%llu key=%.*s", why,
				  (unsigned long long)r->seq, (int)r->key_len, r->key);
			if (dead_letter(w, r, why) != 0)
				return -1;
		} else {
			int rc = lua ? lua_event(w, i, n, &run) : handle_event(w, r, hash);
			if (rc < 0)
				return -1;
			if (rc > 0) { /* fail_after: it stays in the ring */
				w->stopped_at = i;
				return last;
			}
			*good_seq = r->seq; /* the handler finished it */
		}
		if (replay_is(r->seq)) {
			w->batch_replay = r->seq;
		} else {
			*max_seq = r->seq;
			w->batch_source = 1;
		}
		(*processed)++;
		last = (long)i + 1;
	}
	/* Deaths from here on (commit, output) are not the events' fault. */
	atomic_store_explicit(&st->current_seq, SHM_NO_SEQ, memory_order_relaxed);
	return last;
}

/* A new generation: take its live settings, and the room for batch_max
 * events and the [handler] params they bring. */
static int apply_live(struct worker *w)
{
	int rc = take_live(w, w->ctx.cfg_txn);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0) {
		log_error("cannot read the live settings: %s", strerror(-rc));
		return -1;
	}
	if (w->cfg->batch_max > w->cap_recs) {
		struct ring_rec *recs = realloc(w->recs, w->cfg->batch_max * sizeof(*recs));
		if (!recs)
			return -1;
		w->recs = recs;
		w->cap_recs = w->cfg->batch_max;
	}
	ctx_set_params(&w->ctx, w->params.kv, w->params.n);
	return 0;
}

static int open_batch(struct worker *w)
{
	int rc = store_config_read(w->config, &w->ctx.cfg_txn);
	if (rc == 0)
		rc = store_shard_begin(w->shard, &w->ctx.shard_txn);
	if (rc != 0) {
		log_error("cannot begin a transaction: %s", strerror(-rc));
		return -1;
	}
	uint64_t gen = store_config_generation(w->ctx.cfg_txn);
	if (gen != w->generation) {
		if (apply_live(w) != 0)
			return -1;
		if (w->generation && w->hd.ops->on_reload)
			w->hd.ops->on_reload(&w->ctx, w->hd.state, gen);
		w->generation = gen;
	}
	return 0;
}

static void close_batch(struct worker *w)
{
	if (w->ctx.shard_txn)
		store_txn_abort(w->ctx.shard_txn);
	if (w->ctx.cfg_txn)
		store_txn_abort(w->ctx.cfg_txn);
	w->ctx.shard_txn = w->ctx.cfg_txn = NULL;
	ctx_reset(&w->ctx);
	w->dead.len = 0;
	w->dead.lines = 0;
}

/* How many events to take next: batch_max, or less while a failed batch is
 * bisected; and never past an event to dead-letter as poison, so that its
 * dead letter commits before anything after it is tried. *cut is set when
 * records were read past the batch: reading must start again after it. */
static size_t next_batch(struct worker *w, int *cut)
{
	struct shm_worker *st = w->a->stats;
	size_t max = w->cfg->batch_max;
	uint32_t limit = atomic_load_explicit(&st->batch_limit, memory_order_relaxed);
	if (limit && limit < max)
		max = limit;
	size_t n = ring_peek(w->a->ring, w->recs, max);
	uint64_t skip = atomic_load_explicit(&st->skip_seq, memory_order_relaxed);
	*cut = 0;
	/* A barrier ahead: the batch ends at it (pass_barrier acts once it
	 * is committed). */
	if (atomic_load_explicit(&st->barrier_id, memory_order_acquire) !=
	    atomic_load_explicit(&st->barrier_done, memory_order_relaxed)) {
		uint64_t pos = atomic_load_explicit(&st->barrier_pos, memory_order_relaxed);
		for (size_t i = 0; i < n; i++)
			if (w->recs[i].end > pos) {
				*cut = i < n;
				n = i;
				break;
			}
	}
	for (size_t i = 0; skip != SHM_NO_SEQ && i + 1 < n; i++)
		if (w->recs[i].seq == skip) {
			*cut = 1;
			return i + 1;
		}
	return n;
}

/* A batch ending at `seq` is committed: once past the failed batch, back to
 * full batches. */
static void end_limit(struct worker *w, uint64_t seq)
{
	struct shm_worker *st = w->a->stats;
	uint64_t until = atomic_load_explicit(&st->limit_until, memory_order_relaxed);
	/* A replayed seq and a source one say nothing of their ring order:
	 * end early (a death again bisects again). */
	if (atomic_load_explicit(&st->batch_limit, memory_order_relaxed) &&
	    (seq >= until || replay_is(seq) != replay_is(until))) {
		atomic_store_explicit(&st->batch_limit, 0, memory_order_relaxed);
		log_info("past the failed batch (seq=%llu): back to batches of up to %u events",
			 (unsigned long long)seq, w->cfg->batch_max);
	}
}

/* One event in HOT_SAMPLE is counted into the heavy hitters, weighted:
 * a key with a share worth naming is sampled hundreds of times a second. */
#define HOT_SAMPLE 64
#define HOT_PUBLISH_NS (250 * 1000000ull)

/* The heavy hitters, a few times a second while they change. */
static void publish_hot(struct worker *w, uint64_t now)
{
	struct shm_worker *st = w->a->stats;
	if (now - w->hot_published_ns < HOT_PUBLISH_NS || w->hot.total == st->hot.total)
		return;
	hot_publish(&w->hot, &st->hot);
	w->hot_published_ns = now;
}

/* After a commit at `now`: the end-to-end latency of the batch (from the
 * time its oldest record was read), counted for each of its events; the
 * sampled state reads; the heavy hitters. */
static void note_batch(struct worker *w, size_t n, uint64_t processed, uint64_t now)
{
	struct shm_worker *st = w->a->stats;
	uint64_t read_ns = stage_read_ns(&st->stamps, w->recs[0].end);
	if (read_ns && now > read_ns && processed) {
		uint64_t us = (now - read_ns) / 1000;
		shm_hist_add_n(st->latency_us_hist, us, processed);
		atomic_fetch_add_explicit(&st->latency_us_sum, us * processed,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&st->latency_events, processed, memory_order_relaxed);
	}
	if (w->ctx.reads_ns) {
		stage_add(&st->stages, WRK_ST_READS, w->ctx.reads_ns);
		w->ctx.reads_ns = 0;
	}
	for (size_t i = 0; i < n; i++)
		if (((w->recs[i].seq * 0xD6E8FEB86659FD93ull) >> 58) == 0) /* 1 in 64 */
			hot_add(&w->hot, w->recs[i].key, w->recs[i].key_len, HOT_SAMPLE);
	publish_hot(w, now);
}

/* Effects become visible in this order: output bytes past the recorded
 * length (a crash here is undone by truncation), dead letters (at least
 * once), the commit, then the ack and the counters. */
static int run_batch(struct worker *w, size_t n)
{
	struct shm_worker *st = w->a->stats;
	uint64_t max_seq = w->applied_seq, processed = 0, good_seq = SHM_NO_SEQ;
	w->batch_replay = 0;
	w->batch_source = 0;
	if (open_batch(w) != 0)
		return -1;
	stage_enter(&w->clock, WRK_ST_HANDLER);
	long applied = handle_batch(w, n, &max_seq, &processed, &good_seq);
	stage_enter(&w->clock, WRK_ST_OUTPUT);
	if (applied < 0)
		goto fail;
	if (w->handler_failed) {
		/* Commit and ack what came before the event it stopped on. */
		n = w->stopped_at;
		if (n == 0) {
			close_batch(w);
			return 0;
		}
	}
	if (applied > 0) {
		int rc = 0;
		/* Before the commit: a batch that never commits is redone and
		 * written again (output.h). */
		if (w->output->write_batch &&
		    w->output->write_batch(w->out, &w->ctx, w->out_len) != 0)
			goto fail; /* logged */
		if (w->cfg->sync == CFG_SYNC_BATCH && w->ctx.out_len && w->output->sync) {
			const char *what;
			stage_enter(&w->clock, WRK_ST_FSYNC);
			if ((rc = w->output->sync(w->out, &what)) != 0) {
				sync_failed(w, what, -rc);
				goto fail;
			}
			stage_enter(&w->clock, WRK_ST_OUTPUT);
		}
		if (changelog_send(w, max_seq) != 0)
			goto fail; /* logged */
		if (output_owned(&w->out_env, "committing it") != 0)
			goto fail;
		if (w->dead.len && (rc = dl_flush(&w->dead, w->dead_fd)) != 0) {
			log_error("%s: cannot write dead letters: %s", w->cfg->dead_letter,
				  strerror(-rc));
			goto fail;
		}
		if (w->dead.lines && w->cfg->sync == CFG_SYNC_BATCH &&
		    (stage_enter(&w->clock, WRK_ST_FSYNC), fdatasync(w->dead_fd) != 0)) {
			sync_failed(w, w->cfg->dead_letter, errno);
			goto fail;
		}
		uint64_t rejected = w->dead.lines;
		uint64_t out_len = w->out_len + w->ctx.out_len;
		/* sync = batch: LMDB's commit is its fsyncs, above all. */
		uint64_t t_commit = stage_enter(
		    &w->clock, w->cfg->sync == CFG_SYNC_BATCH ? WRK_ST_FSYNC : WRK_ST_COMMIT);
		if ((rc = commit_batch(w, max_seq, out_len)) != 0) {
			log_error("%s/state/p%u: cannot commit: %s (free space %llu bytes)",
				  w->cfg->data_dir, w->a->partition, strerror(-rc),
				  free_space(w->cfg->data_dir));
			goto fail;
		}
		if (w->batch_replay) {
			w->has_replay = 1;
			w->replay_applied = w->batch_replay;
		}
		w->has_applied |= w->batch_source;
		w->applied_seq = max_seq;
		w->out_len = out_len;
		atomic_store_explicit(&st->applied_seq, max_seq, memory_order_relaxed);
		atomic_store_explicit(&st->has_applied, (uint32_t)w->has_applied,
				      memory_order_relaxed);
		if (good_seq != SHM_NO_SEQ)
			atomic_store_explicit(&st->good_seq, good_seq, memory_order_relaxed);
		atomic_fetch_add_explicit(&st->processed, processed, memory_order_relaxed);
		atomic_fetch_add_explicit(&st->rejected, rejected, memory_order_relaxed);
		ctx_publish_counts(&w->ctx, st);
		uint64_t now = stage_enter(&w->clock, WRK_ST_OTHER);
		shm_hist_add(st->commit_us_hist, (now - t_commit) / 1000);
		atomic_fetch_add_explicit(&st->commit_us_sum, (now - t_commit) / 1000,
					  memory_order_relaxed);
		shm_hist_add(st->batch_hist, n);
		atomic_fetch_add_explicit(&st->batch_events_sum, n, memory_order_relaxed);
		note_batch(w, n, processed, now);
	}
	stage_enter(&w->clock, WRK_ST_OTHER);
	w->committed_pos = w->recs[n - 1].end;
	/* sync = batch made the commit durable; with none, a killed process
	 * loses nothing and an OS crash is not covered (the boot check). */
	if (w->cfg->sync != CFG_SYNC_PERIODIC) {
		struct durable_mark d = durable_now(w);
		publish_durable(w, &d);
	} else if (maybe_sync(w) != 0)
		goto fail;
	atomic_fetch_add_explicit(&st->batches, 1, memory_order_relaxed);
	end_limit(w, w->recs[n - 1].seq);
	ring_ack(w->a->ring, w->recs[n - 1].end);
	atomic_fetch_add_explicit(&st->consumed, n, memory_order_relaxed);
	close_batch(w);
	return 0;
fail:
	close_batch(w);
	return -1;
}

static int sup_waiting_input(const struct worker *w)
{
	return w->a->sup && atomic_load_explicit(&w->a->sup->waiting_input, memory_order_relaxed);
}

/* Returns 0 when asked to stop, the ring is closed or a cut reached, 1 when the handler
 * failed (note_failure) or a new version did not start (pass_barrier),
 * -1 on an error (logged). */
static int loop(struct worker *w)
{
	struct shm_worker *st = w->a->stats;
	for (;;) {
		uint64_t t0 = shm_now_ns();
		atomic_store_explicit(&st->heartbeat_ns, t0, memory_order_relaxed);
		if (stop_requested && getppid() == w->parent)
			return 0; /* asked to stop: the last batch is committed */
		int cut;
		if (cut_pause(w) != 0)
			return 0; /* everything read is committed */
		if (pass_barrier(w) != 0)
			return w->cut_exit ? 0 : 1;
		size_t n = next_batch(w, &cut);
		if (n == 0) {
			if (cut) {
				ring_rewind(w->a->ring); /* the barrier is next */
				continue;
			}
			if (stop_requested)
				return 0; /* the supervisor is gone and the ring drained */
			/* Starved by the supervisor, or no input at all. */
			int idle = sup_waiting_input(w);
			stage_enter(&w->clock, WRK_ST_WAIT);
			int rc = ring_wait_data(w->a->ring, IDLE_WAIT_MS);
			if (idle || sup_waiting_input(w))
				stage_relabel(&w->clock, WRK_ST_IDLE);
			uint64_t now = stage_enter(&w->clock, WRK_ST_OTHER);
			atomic_fetch_add_explicit(&st->wait_ns, now - t0, memory_order_relaxed);
			publish_hot(w, now); /* what the last batches counted */
			if (rc == -EPIPE)
				return 0;
			if (rc == -ETIMEDOUT && maybe_sync(w) != 0)
				return -1;
			continue;
		}
		if (run_batch(w, n) != 0)
			return -1;
		if (w->handler_failed)
			return 1;
		if (cut)
			ring_rewind(w->a->ring); /* read on from the batch's end (acked) */
		atomic_fetch_add_explicit(&st->busy_ns, shm_now_ns() - t0, memory_order_relaxed);
	}
}

static void close_all(struct worker *w)
{
	bg_stop(w); /* before the files it syncs are closed */
	handler_stop(&w->hd, &w->ctx);
	ctx_free(&w->ctx);
	free(w->recs);
	free(w->lua_evs);
	free(w->params.kv);
	free(w->params.buf);
	free(w->kafka.kv);
	free(w->kafka.buf);
	free(w->settings);
	dl_free(&w->dead);
	if (w->output && w->output->close)
		w->output->close(w->out);
	changelog_close(w->changelog);
	kout_close(w->kout);
	if (w->dead_fd >= 0)
		close(w->dead_fd);
	if (w->shard)
		store_close(w->shard);
	if (w->config)
		store_close(w->config);
	if (w->lock_fd >= 0)
		close(w->lock_fd); /* last: the shard is closed */
}

/* Descriptors a worker opens for itself: its lock, the config and shard
 * stores (three each), output and dead-letter files, and room to spare
 * for a handler, a directory to sync, a reload; more with Kafka (a
 * producer's brokers, threads and queues) or an output that needs more
 * (a zmq output's context). */
static long fds_needed(const struct cfg *cfg)
{
	const struct output_ops *out = output_ops(cfg->output_type);
	long n = 16 + (out ? out->fds : 0);
	if (cfg->source_type == CFG_SOURCE_KAFKA || (out && out->producer))
		n += 32;
	return n;
}

/* Too few descriptors to start: found before opening anything, with how
 * many there are, rather than as a store that "cannot open". */
static int check_fds(const struct wrk_args *a)
{
	long left = fdlimit_free(), need = fds_needed(a->cfg);
	if (left < 0 || left >= need)
		return 0;
	log_error("partition %u: out of file descriptors: %ld free where a worker needs %ld "
		  "(it starts with the fork server's open ones); raise the limit (ulimit -Hn, "
		  "systemd LimitNOFILE=)",
		  a->partition, left, need);
	return -1;
}

int wrk_main(const struct wrk_args *a)
{
	struct worker w = {.a = a, .own_cfg = *a->cfg, .dead_fd = -1, .lock_fd = -1};
	w.cfg = &w.own_cfg;
	char role[32];
	snprintf(role, sizeof(role), "worker/%u", a->partition);
	log_init(role, a->cfg->log_level);
	log_set_format(a->cfg->log_format);
	proctitle_set("rm-worker", "ringmaster: worker %u (%s)", a->partition, a->cfg->name);
	atomic_store(&a->stats->pid, (int32_t)getpid());
	atomic_store(&a->stats->started_ns, shm_now_ns());
	int status = 1;
	w.parent = a->supervisor;
	if (setup_signals(w.parent) != 0) {
		log_error("cannot set up signals: %s", strerror(errno));
		goto out;
	}
	if (check_fds(a) != 0) {
		status = WRK_EXIT_NO_FDS;
		goto out;
	}
	if (open_all(&w) != 0) {
		/* The descriptors ran out (the error is logged): say so. */
		if (errno == EMFILE || errno == ENFILE)
			status = WRK_EXIT_NO_FDS;
		goto out;
	}
	if (start_handler(&w, &w.hd, version_at_start(&w)) != 0) {
		/* A version a reload brought: the partition fails, as at a
		 * switch, rather than restart for ever. */
		if (atomic_load(&a->stats->barrier_id) > atomic_load(&a->stats->barrier_savepoints))
			status = WRK_EXIT_SWITCH_FAILED;
		goto out;
	}
	int restored = restore_state(&w);
	if (restored != 0) {
		status = restored > 0 ? 0 : 1; /* > 0: asked to stop while restoring */
		goto out;
	}
	/* What earlier workers committed may still be only in the page cache
	 * (they were killed before their next sync): make it durable before
	 * anything is acked on top of it. */
	ring_rewind(a->ring);
	w.committed_pos = ring_acked_pos(a->ring);
	if (sync_all(&w) != 0)
		goto out;
	log_debug("worker started partition=%u applied_seq=%llu output_bytes=%llu output=%s",
		  a->partition, (unsigned long long)w.applied_seq, (unsigned long long)w.out_len,
		  w.output->name);
	/* At the end, sync = none too: a clean stop leaves everything on disk
	 * (the supervisor then marks the data_dir safe across a reboot). */
	stage_start(&w.clock, &a->stats->stages, WRK_ST_OTHER);
	int rc = loop(&w);
	stage_enter(&w.clock, WRK_ST_OTHER);
	hot_publish(&w.hot, &a->stats->hot); /* the last word, for the summary */
	if (rc >= 0 && bg_collect(&w, 1) >= 0 &&
	    (w.cfg->sync == CFG_SYNC_BATCH || w.synced_pos == w.committed_pos || sync_all(&w) == 0))
		status = w.reload_exit	   ? WRK_EXIT_RELOAD
			 : w.switch_failed ? WRK_EXIT_SWITCH_FAILED
			 : rc		   ? WRK_EXIT_HANDLER_FAILED
					   : 0;
out:
	close_all(&w);
	return w.sync_failed ? WRK_EXIT_SYNC_FAILED : status;
}
