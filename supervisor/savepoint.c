/* savepoint.c - savepoints of a running instance, and a new data_dir from
 * one (see savepoint.h; the files are common/savepoint.c's).
 *
 * The cut is one instant of the supervisor's loop: no event is read while
 * the barriers go in, so the source's position then divides every ring the
 * same way. The config environment (the tables, the source's identity) is
 * copied as it was at that instant too, by a thread from an LMDB snapshot
 * (one loop per process, but a compacting copy of a large table would
 * hold the source); the shards are copied by their workers, each at its
 * barrier, while the source goes on filling the rings behind it. */
#include "savepoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "../common/savepoint.h"
#include "durable.h"
#include "log.h"
#include "rescale.h"
#include "store.h"
#include "supervisor.h"

enum sp_state { SP_RUNNING, SP_DONE, SP_FAILED };

struct sup_savepoint {
	uint64_t id;
	enum sp_state state;
	char dir[SHM_SAVEPOINT_DIR - 16];
	char tmp[SHM_SAVEPOINT_DIR];
	char msg[2 * SHM_SAVEPOINT_DIR + 512];
	struct savepoint_manifest m;
	uint64_t *barrier; /* [partitions]: the barrier_id each worker must reach */
	pid_t *pids;	   /* [partitions]: the workers at the start */
	uint64_t started_ns, pause_ns;
	struct store_copy_job *config_copy; /* the config's copy, made by a thread */
	int config_fd;			    /* its file, -1 */
};

/* Leave room under tmp for "/state/p1023/data.mdb". */
#define SP_SUFFIX_ROOM 64

static const char *const source_names[] = {"file", "generate", "zmq", "kafka", "spool"};

static const char *source_name(unsigned type)
{
	return type < sizeof(source_names) / sizeof(source_names[0]) ? source_names[type] : "?";
}

int sup_savepoint_active(const struct sup *s)
{
	return s->savepoint && s->savepoint->state == SP_RUNNING;
}

void sup_savepoint_status(const struct sup *s, struct proto_buf *b)
{
	static const char *const names[] = {"running", "done", "failed"};
	const struct sup_savepoint *sp = s->savepoint;
	if (!sp) {
		proto_buf_printf(b, "savepoint 0 none -\nno savepoint was asked for\n");
		return;
	}
	proto_buf_printf(b, "savepoint %llu %s %s\n%s\n", (unsigned long long)sp->id,
			 names[sp->state], sp->dir, sp->msg);
}

/* Wait for the config's copy (it is short: one compacting pass over the
 * config environment). 0 or -errno of the copy. */
static int sp_config_done(struct sup_savepoint *sp)
{
	int rc = 0;
	if (sp->config_copy)
		rc = store_copy_finish(sp->config_copy);
	sp->config_copy = NULL;
	if (sp->config_fd >= 0)
		close(sp->config_fd);
	sp->config_fd = -1;
	return rc;
}

static void sp_fail(struct sup *s, struct sup_savepoint *sp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Give the savepoint up: workers still to reach their barrier copy nothing
 * (savepoint_live), and what was copied goes. */
static void sp_fail(struct sup *s, struct sup_savepoint *sp, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sp->msg, sizeof(sp->msg), fmt, ap);
	va_end(ap);
	sp->state = SP_FAILED;
	atomic_store(&s->shm.sup->savepoint_live, 0);
	sp_config_done(sp);
	savepoint_remove(sp->tmp, s->cfg.partitions);
	log_error("savepoint %llu into %s failed: %s", (unsigned long long)sp->id, sp->dir,
		  sp->msg);
}

/* Every directory of the savepoint, then the rename, then its parent: the
 * manifest and the copies are synced already. */
static int sp_sync_rename(struct sup *s, struct sup_savepoint *sp, char *msg, size_t len)
{
	char path[SHM_SAVEPOINT_DIR + SP_SUFFIX_ROOM], err[DUR_ERR_LEN];
	for (unsigned p = 0; p <= s->cfg.partitions + 2; p++) {
		if (p < s->cfg.partitions)
			snprintf(path, sizeof(path), "%s/state/p%u", sp->tmp, p);
		else
			snprintf(path, sizeof(path), "%s%s", sp->tmp,
				 p == s->cfg.partitions	      ? "/state"
				 : p == s->cfg.partitions + 1 ? "/config"
							      : "");
		if (dur_fsync_dir(path, err) != 0) {
			snprintf(msg, len, "%s", err);
			return -1;
		}
	}
	if (renameat2(AT_FDCWD, sp->tmp, AT_FDCWD, sp->dir, RENAME_NOREPLACE) != 0) {
		snprintf(msg, len, "cannot rename %s to %s: %s", sp->tmp, sp->dir,
			 errno == EEXIST ? "it exists now (made meanwhile)" : strerror(errno));
		return -1;
	}
	if (dur_fsync_parent(sp->dir, err) != 0) {
		/* The savepoint is there; only its name may not survive a
		 * power cut: say so, keep it. */
		log_warn("savepoint %llu: %s", (unsigned long long)sp->id, err);
	}
	return 0;
}

static void sp_finish(struct sup *s, struct sup_savepoint *sp)
{
	struct savepoint_manifest *m = &sp->m;
	char err[2 * SHM_SAVEPOINT_DIR + 256];
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct shm_worker *st = &s->shm.workers[p];
		m->shards[p] = (struct savepoint_shard){
		    .applied_seq = atomic_load(&st->savepoint_applied),
		    .has_applied = atomic_load(&st->savepoint_has_applied) != 0,
		    .output_len = atomic_load(&st->savepoint_output_len),
		    .replay_applied = atomic_load(&st->savepoint_replay),
		};
		struct savepoint_file *f = &m->files[1 + p];
		snprintf(f->rel, sizeof(f->rel), "state/p%u/data.mdb", p);
		f->size = atomic_load(&st->savepoint_size);
		f->sum = atomic_load(&st->savepoint_sum);
	}
	m->n_files = 1 + s->cfg.partitions;
	/* The config's copy, begun at the cut by a thread: done by now
	 * (or soon), then synced. */
	char path[SHM_SAVEPOINT_DIR + SP_SUFFIX_ROOM];
	snprintf(path, sizeof(path), "%s/config/data.mdb", sp->tmp);
	int rc = sp_config_done(sp);
	if (rc != 0) {
		sp_fail(s, sp, "%s: cannot copy the config environment: %s", path, strerror(-rc));
		return;
	}
	if (savepoint_sync_file(path, &m->files[0].size, &m->files[0].sum, err, sizeof(err)) != 0 ||
	    savepoint_manifest_write(sp->tmp, m, err, sizeof(err)) != 0 ||
	    sp_sync_rename(s, sp, err, sizeof(err)) != 0) {
		sp_fail(s, sp, "%s", err);
		return;
	}
	sp->state = SP_DONE;
	atomic_store(&s->shm.sup->savepoint_live, 0);
	double secs = (double)(shm_now_ns() - sp->started_ns) / 1e9;
	snprintf(sp->msg, sizeof(sp->msg),
		 "savepoint %llu written to %s: position %llu, %u partitions, %.3f s (the source "
		 "paused %.1f ms)",
		 (unsigned long long)sp->id, sp->dir, (unsigned long long)m->position,
		 s->cfg.partitions, secs, (double)sp->pause_ns / 1e6);
	log_info("%s", sp->msg);
}

void sup_savepoint_step(struct sup *s)
{
	struct sup_savepoint *sp = s->savepoint;
	unsigned done = 0;
	if (!sp || sp->state != SP_RUNNING)
		return;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct shm_worker *st = &s->shm.workers[p];
		const struct sup_worker *w = &s->workers[p];
		if (atomic_load(&st->barrier_done) >= sp->barrier[p]) {
			int rc = atomic_load(&st->savepoint_rc);
			if (rc != 0) {
				sp_fail(s, sp,
					"partition %u could not copy its shard: %s (see the log)",
					p, strerror(-rc));
				return;
			}
			done++;
			continue;
		}
		if (w->state != WK_RUNNING || w->pid != sp->pids[p]) {
			sp_fail(s, sp,
				"partition %u: its worker %s before it reached the savepoint's "
				"barrier%s%s%s",
				p, w->state == WK_FAILED ? "failed" : "exited",
				w->last_exit[0] ? " (" : "", w->last_exit,
				w->last_exit[0] ? ")" : "");
			return;
		}
	}
	if (done == s->cfg.partitions)
		sp_finish(s, sp);
}

/* Why the instance cannot take a savepoint now; 0 if it can. */
static int sp_refused(const struct sup *s, char *msg, size_t len)
{
	if (sup_savepoint_active(s)) {
		snprintf(msg, len, "busy: savepoint %llu into %s is being taken",
			 (unsigned long long)s->savepoint->id, s->savepoint->dir);
		return -1;
	}
	if (s->cfg.source_type == CFG_SOURCE_KAFKA) {
		snprintf(msg, len,
			 "a kafka source cannot be saved: its position is the consumer group's "
			 "offsets, which another instance of the group may move; copy a stopped "
			 "data_dir instead");
		return -1;
	}
	if (s->state != SUP_RUNNING || s->closing || !s->src_open) {
		snprintf(msg, len, "not running (starting, reloading or stopping): try again");
		return -1;
	}
	if (s->swap_active) {
		snprintf(msg, len,
			 "busy: a handler swap is in progress: try again once every "
			 "partition runs the new version (ringctl workers)");
		return -1;
	}
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct sup_worker *w = &s->workers[p];
		const struct shm_worker *st = &s->shm.workers[p];
		if (w->state != WK_RUNNING) {
			snprintf(msg, len,
				 "partition %u is %s%s%s: a savepoint needs every partition's "
				 "worker running (ringctl workers; ringctl restart-worker %u)",
				 p, sup_wstate_name(w->state), w->last_exit[0] ? ": " : "",
				 w->last_exit, p);
			return -1;
		}
		if (w->held) {
			snprintf(
			    msg, len,
			    "partition %u held back %llu events earlier in this run (it had "
			    "failed): they are redone only when ringmaster starts again, so "
			    "its shard lacks them; restart ringmaster, then take the savepoint",
			    p, (unsigned long long)w->held);
			return -1;
		}
		if (atomic_load(&st->barrier_id) != atomic_load(&st->barrier_done)) {
			/* A savepoint that failed leaves its barriers in the
			 * rings: each worker passes its own, copying nothing. */
			int sp = atomic_load(&st->barrier_kind) == SHM_BARRIER_SAVEPOINT;
			snprintf(msg, len,
				 "busy: partition %u has not reached %s yet: try again %s", p,
				 sp ? "the barrier of the last savepoint (which failed)"
				    : "its switch to the last handler version",
				 sp ? "in a moment" : "once it has (ringctl workers)");
			return -1;
		}
	}
	return 0;
}

static int sp_mkdir(const char *base, const char *sub, char *msg, size_t len)
{
	char path[SHM_SAVEPOINT_DIR + SP_SUFFIX_ROOM];
	snprintf(path, sizeof(path), "%s/%s", base, sub);
	if (mkdir(path, 0700) != 0) {
		snprintf(msg, len, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* DIR.tmp-XXXXXX with config/ and state/pP/ in it, into sp->tmp. */
static int sp_make_tmp(const struct sup *s, struct sup_savepoint *sp, char *msg, size_t len)
{
	char sub[32];
	struct stat st;
	if (lstat(sp->dir, &st) == 0) {
		snprintf(msg, len, "%s exists: a savepoint goes to a new directory", sp->dir);
		return -1;
	}
	if (errno != ENOENT) {
		snprintf(msg, len, "%s: %s", sp->dir, strerror(errno));
		return -1;
	}
	snprintf(sp->tmp, sizeof(sp->tmp), "%s.tmp-XXXXXX", sp->dir);
	if (!mkdtemp(sp->tmp)) {
		snprintf(msg, len, "cannot create a directory beside %s: %s%s", sp->dir,
			 strerror(errno),
			 errno == EACCES || errno == EROFS ? " (its parent is not writable)" : "");
		return -1;
	}
	if (sp_mkdir(sp->tmp, "config", msg, len) != 0 || sp_mkdir(sp->tmp, "state", msg, len))
		return -1;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		snprintf(sub, sizeof(sub), "state/p%u", p);
		if (sp_mkdir(sp->tmp, sub, msg, len) != 0)
			return -1;
	}
	return 0;
}

/* A barrier of the savepoint kind in ring p at its write position: the
 * handler version stays (what == from). */
static void sp_barrier(struct sup *s, struct sup_savepoint *sp, unsigned p)
{
	struct shm_worker *st = &s->shm.workers[p];
	uint64_t v = atomic_load(&st->barrier_what);
	atomic_store(&st->savepoint_id, sp->id);
	atomic_store(&st->barrier_pos, ring_write_pos(s->shm.rings[p]));
	atomic_store(&st->barrier_from, v);
	atomic_store(&st->barrier_kind, SHM_BARRIER_SAVEPOINT);
	atomic_fetch_add(&st->barrier_savepoints, 1);
	sp->barrier[p] = atomic_fetch_add_explicit(&st->barrier_id, 1, memory_order_release) + 1;
	sp->pids[p] = s->workers[p].pid;
}

static struct sup_savepoint *sp_new(const struct sup *s)
{
	struct sup_savepoint *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	sp->config_fd = -1;
	sp->barrier = calloc(s->cfg.partitions, sizeof(*sp->barrier));
	sp->pids = calloc(s->cfg.partitions, sizeof(*sp->pids));
	if (!sp->barrier || !sp->pids || savepoint_manifest_init(&sp->m, s->cfg.partitions) != 0) {
		free(sp->barrier);
		free(sp->pids);
		free(sp);
		return NULL;
	}
	return sp;
}

static void sp_free(struct sup_savepoint *sp)
{
	if (!sp)
		return;
	sp_config_done(sp);
	savepoint_manifest_free(&sp->m);
	free(sp->barrier);
	free(sp->pids);
	free(sp);
}

int sup_savepoint_start(struct sup *s, const char *dir, char *msg, size_t len)
{
	uint64_t t0 = shm_now_ns(), id = s->savepoint ? s->savepoint->id + 1 : 1;
	char path[SHM_SAVEPOINT_DIR + SP_SUFFIX_ROOM];
	if (dir[0] != '/') {
		snprintf(msg, len, "%s: give an absolute path", dir);
		return -1;
	}
	if (strlen(dir) + SP_SUFFIX_ROOM >= SHM_SAVEPOINT_DIR) {
		snprintf(msg, len, "%.64s...: path too long", dir);
		return -1;
	}
	if (sp_refused(s, msg, len) != 0)
		return -1;
	struct sup_savepoint *sp = sp_new(s);
	if (!sp) {
		snprintf(msg, len, "out of memory");
		return -1;
	}
	sp->id = id;
	sp->started_ns = t0;
	snprintf(sp->dir, sizeof(sp->dir), "%s", dir);
	if (sp_make_tmp(s, sp, msg, len) != 0)
		goto fail;
	struct savepoint_manifest *m = &sp->m;
	struct savepoint_file *cf = &m->files[0];
	snprintf(cf->rel, sizeof(cf->rel), "config/data.mdb");
	snprintf(path, sizeof(path), "%s/config/data.mdb", sp->tmp);
	/* The config environment as it is now, copied by a thread: the loop
	 * waits only until the copy holds its snapshot. */
	sp->config_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = sp->config_fd < 0 ? -errno
				   : store_copy_start(s->config, sp->config_fd, &sp->config_copy);
	if (rc != 0) {
		snprintf(msg, len, "%s: cannot copy the config environment: %s", path,
			 strerror(-rc));
		goto fail;
	}
	/* The cut: the source's position now, and a barrier at each ring's
	 * write position now. */
	struct src_pos pos = {.next_seq = 0};
	s->src.ops->position(&s->src, &pos);
	m->position = pos.next_seq;
	snprintf(m->source, sizeof(m->source), "%s", source_name(s->cfg.source_type));
	m->source_identity = s->source_id;
	m->generation = s->generation;
	m->handler = s->handler_version;
	time_t now = time(NULL);
	struct tm tm;
	strftime(m->created, sizeof(m->created), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	snprintf(s->shm.sup->savepoint_dir, sizeof(s->shm.sup->savepoint_dir), "%s", sp->tmp);
	atomic_store(&s->shm.sup->savepoint_live, id);
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		sp_barrier(s, sp, p);
	sp->pause_ns = shm_now_ns() - t0;
	snprintf(sp->msg, sizeof(sp->msg), "savepoint %llu: every partition copies its shard",
		 (unsigned long long)id);
	sp_free(s->savepoint);
	s->savepoint = sp;
	log_info("savepoint %llu into %s: cut at seq=%llu, a barrier in every ring (the source "
		 "paused %.1f ms); each worker copies its shard at its barrier",
		 (unsigned long long)id, dir, (unsigned long long)m->position,
		 (double)sp->pause_ns / 1e6);
	snprintf(msg, len, "savepoint %llu started: %s at seq=%llu", (unsigned long long)id, dir,
		 (unsigned long long)m->position);
	return 0;
fail:
	sp_config_done(sp);
	if (sp->tmp[0])
		savepoint_remove(sp->tmp, s->cfg.partitions);
	log_error("savepoint into %s refused: %s", dir, msg);
	sp_free(sp);
	return -1;
}

void sup_savepoint_free(struct sup *s)
{
	struct sup_savepoint *sp = s->savepoint;
	if (sp && sp->state == SP_RUNNING) {
		sup_savepoint_step(s); /* the workers may all have copied by now */
		if (sp->state == SP_RUNNING)
			sp_fail(s, sp,
				"ringmaster stopped before every partition reached its "
				"barrier");
	}
	sp_free(sp);
	s->savepoint = NULL;
}

/* ---- a new data_dir from a savepoint ---- */

static int dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;
	if (!d)
		return errno == ENOENT ? 1 : -1;
	while (empty && (e = readdir(d)))
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/* Copy src to dst (new), fsynced. 0 or -1 (logged). */
static int copy_file(const char *src, const char *dst)
{
	static char buf[1 << 16];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
	const char *bad = src;
	if (in < 0 ||
	    (bad = dst, out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		goto out;
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			bad = src;
			goto out;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				goto out;
			off += w;
		}
	}
	if (fsync(out) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		log_error("%s: %s", bad, strerror(errno));
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

/* The savepoint's files into data_dir (made), every directory synced: the
 * config's, and the shards' too when `shards`. */
static int restore_files(const struct cfg *cfg, const char *dir, const struct savepoint_manifest *m,
			 int shards)
{
	char src[SHM_SAVEPOINT_DIR + SP_SUFFIX_ROOM], dst[SHM_SAVEPOINT_DIR + SP_SUFFIX_ROOM];
	char err[DUR_ERR_LEN];
	for (size_t i = 0; i < m->n_files; i++) {
		if (!shards && strcmp(m->files[i].rel, "config/data.mdb") != 0)
			continue;
		snprintf(dst, sizeof(dst), "%s/%s", cfg->data_dir, m->files[i].rel);
		*strrchr(dst, '/') = '\0';
		if (dur_mkdir_p(dst, 0700, err) != 0) {
			log_error("%s", err);
			return -1;
		}
		snprintf(src, sizeof(src), "%s/%s", dir, m->files[i].rel);
		snprintf(dst, sizeof(dst), "%s/%s", cfg->data_dir, m->files[i].rel);
		if (copy_file(src, dst) != 0)
			return -1;
		*strrchr(dst, '/') = '\0';
		if (dur_fsync_dir(dst, err) != 0) {
			log_error("%s", err);
			return -1;
		}
	}
	return 0;
}

/* The new data_dir's config environment: the source resumes at the
 * savepoint's position; a data_dir id of its own (so the old instance's
 * output files are not taken for ours), and no unsafe boot to recover. */
static int restore_config(const struct cfg *cfg, const struct savepoint_manifest *m)
{
	struct store_env *env;
	char err[STORE_ERR_LEN];
	uint64_t id;
	if (store_config_open(cfg->data_dir, cfg->map_size, 0, &env, err) != 0) {
		log_error("%s", err);
		return -1;
	}
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
		id = (uint64_t)shm_now_ns() ^ (uint64_t)getpid() << 32;
	static const char *const names[] = {"watermark", "next_seq", "data_dir_id", "dirty_boot"};
	uint64_t v[] = {m->position, m->position, id ? id : 1, 0};
	int rc = store_meta_put_u64s(env, names, v, 4);
	if (rc == 0)
		rc = store_sync(env);
	if (rc != 0)
		log_error("%s: cannot record the savepoint's position: %s", cfg->data_dir,
			  strerror(-rc));
	store_close(env);
	return rc ? -1 : 0;
}

/* Each shard's output_len to 0: the new output files start empty. */
static int restore_shards(const struct cfg *cfg, const struct savepoint_manifest *m)
{
	char err[STORE_ERR_LEN];
	for (unsigned p = 0; p < m->partitions; p++) {
		struct store_env *shard;
		int rc = store_shard_open(cfg->data_dir, p, m->partitions, cfg->map_size,
					  (enum store_sync)cfg->sync, 0, &shard, err);
		if (rc != 0) {
			log_error("%s", err);
			return -1;
		}
		rc = store_meta_put_u64(shard, "output_len", 0);
		if (rc == 0)
			rc = store_sync(shard);
		store_close(shard);
		if (rc != 0) {
			log_error("%s/state/p%u: cannot reset its output length: %s", cfg->data_dir,
				  p, strerror(-rc));
			return -1;
		}
	}
	return 0;
}

/* Another partition count: the config environment is copied, the
 * savepoint's shards are re-split straight into the new data_dir's state
 * (rescale.h: every key to partition_of(key, partitions); output_len 0 and
 * a new output generation), and the config is written after them: a crash
 * before that leaves no state, which the next start removes. */
static int from_savepoint_resplit(const struct cfg *cfg, const char *dir,
				  const struct savepoint_manifest *m)
{
	char from[SHM_SAVEPOINT_DIR + SP_SUFFIX_ROOM], err[RESCALE_ERR_LEN];
	if (restore_files(cfg, dir, m, 0) != 0)
		return -1;
	log_info("savepoint %s has %u partitions, the configuration %u: re-splitting its state",
		 dir, m->partitions, cfg->partitions);
	snprintf(from, sizeof(from), "%s/state", dir);
	if (rescale_install(from, m->partitions, cfg->data_dir, cfg->partitions, 0, err) != 0) {
		log_error("savepoint %s: cannot re-split its state for %u partitions: %s", dir,
			  cfg->partitions, err);
		return -1;
	}
	return 0;
}

int sup_from_savepoint(const struct cfg *cfg, const char *dir)
{
	struct savepoint_manifest m;
	char err[SAVEPOINT_ERR_LEN];
	int empty = dir_empty(cfg->data_dir);
	if (empty != 1) {
		log_error("%s: %s: --from-savepoint makes a new data_dir: give an empty or new one",
			  cfg->data_dir, empty < 0 ? strerror(errno) : "not empty");
		return EX_CANTCREAT;
	}
	if (savepoint_verify(dir, &m, err, sizeof(err)) != 0) {
		log_error("savepoint %s refused: %s", dir, err);
		return EX_DATAERR;
	}
	int rc = EX_CONFIG;
	if (strcmp(m.source, source_name(cfg->source_type)) != 0 ||
	    cfg->source_type == CFG_SOURCE_KAFKA) {
		log_error("savepoint %s was taken from a %s source, the configuration's is %s%s",
			  dir, m.source, source_name(cfg->source_type),
			  cfg->source_type == CFG_SOURCE_KAFKA ? " (kafka cannot be restored)"
							       : "");
		goto out;
	}
	rc = EX_CANTCREAT;
	int resplit = m.partitions != cfg->partitions;
	int made = resplit ? from_savepoint_resplit(cfg, dir, &m) : restore_files(cfg, dir, &m, 1);
	if (made != 0 || restore_config(cfg, &m) != 0 ||
	    (!resplit && restore_shards(cfg, &m) != 0)) {
		log_error("%s is half made from savepoint %s (see above): remove it, then start "
			  "again",
			  cfg->data_dir, dir);
		goto out;
	}
	log_info("data_dir %s made from savepoint %s (taken %s): the source resumes at "
		 "seq=%llu; the output files start empty (what came before is in the old "
		 "instance's files, up to each shard's output_len in the manifest)",
		 cfg->data_dir, dir, m.created, (unsigned long long)m.position);
	rc = 0;
out:
	savepoint_manifest_free(&m);
	return rc;
}
