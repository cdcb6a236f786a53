/* supervisor.c - ringmaster's lifecycle: lock the run directory, preload
 * the config environment, map the rings, fork one worker per partition, feed
 * them from the source, and at the end of a finite source close the rings,
 * wait for every worker to commit and exit, and print the summary. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "dlreplay.h"
#include "durable.h"
#include "fdlimit.h"
#include "handler.h"
#include "http.h"
#include "lifecycle.h"
#include "log.h"
#include "notify.h"
#include "observe.h"
#include "owner.h"
#include "partition.h"
#include "proctitle.h"
#include "reload.h"
#include "replay.h"
#include "rescale_sup.h"
#include "safety.h"
#include "savepoint.h"
#include "store.h"
#include "summary.h"

#define MS 1000000ull
#define WAIT_SLICE_MS 100 /* the longest wait for room in a ring */
#define SRC_BUDGET 4096u  /* events a source hands over in one read */

volatile sig_atomic_t sup_stop;
volatile sig_atomic_t sup_child;
static volatile sig_atomic_t sup_hup;  /* SIGHUP: reload (job_reload) */
static volatile sig_atomic_t sup_usr1; /* SIGUSR1: reopen the log file (job_reopen) */

/* One stop is often signalled twice at once: timeout(1) sends SIGTERM to
 * its child and then to its whole process group, which holds the child
 * too; a shell or a service manager may do the same. A stop signal that
 * comes within STOP_SAME_NS of the first stop request is therefore the same
 * request; one that comes later is a second request, which kills the
 * workers at once (stop_workers). */
#define STOP_SAME_NS 1000000000ull

static _Atomic uint64_t first_stop_ns; /* when the first stop was asked for */

static void on_stop(int sig)
{
	int saved = errno;
	uint64_t now = shm_now_ns(); /* clock_gettime: async-signal-safe */

	(void)sig;
	if (!sup_stop)
		atomic_store_explicit(&first_stop_ns, now, memory_order_relaxed);
	else if (now - atomic_load_explicit(&first_stop_ns, memory_order_relaxed) < STOP_SAME_NS)
		goto out; /* the same stop, sent twice */
	sup_stop++;
out:
	errno = saved;
}

static void on_child(int sig)
{
	(void)sig;
	sup_child = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	sup_hup = 1;
}

static void on_usr1(int sig)
{
	(void)sig;
	sup_usr1 = 1;
}

static int install_signals(void)
{
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM); /* one on_stop at a time */
	sigaddset(&sa.sa_mask, SIGINT);
	/* No SA_RESTART: a blocking read or futex wait must see the signal. */
	if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
		return -1;
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_child;
	sa.sa_flags = SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL))
		return -1;
	sa.sa_handler = on_hup;
	sa.sa_flags = 0;
	if (sigaction(SIGHUP, &sa, NULL))
		return -1;
	sa.sa_handler = on_usr1;
	if (sigaction(SIGUSR1, &sa, NULL))
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int dir_of(const char *file, char *out, size_t size)
{
	snprintf(out, size, "%s", file);
	char *slash = strrchr(out, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	return 0;
}

/* A POSIX lock (not inherited by the workers) on run_dir/ringmaster.pid. */
static int lock_pid_file(struct sup *s)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/ringmaster.pid", s->cfg.run_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("%s: cannot open the pid file: %s", path, strerror(errno));
		return -1;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		char pid[32] = "?";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		if (n > 0)
			pid[strcspn(pid, "\n")] = '\0';
		log_error("another ringmaster (pid %s) is running on run_dir %s (it holds %s): "
			  "stop it, or give this one another run_dir",
			  pid, s->cfg.run_dir, path);
		close(fd);
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		log_error("%s: cannot write the pid file: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	s->pid_fd = fd;
	return 0;
}

/* Every directory made here is fsynced into its parent, so that after a
 * power cut the files in it are not lost with their names. */
static int make_dir(const struct sup *s, const char *section, const char *key, const char *dir,
		    mode_t mode)
{
	char err[DUR_ERR_LEN];
	if (dur_mkdir_p(dir, mode, err) == 0)
		return 0;
	log_error("%s: [%s] %s: %s", cfg_origin(&s->cfg, section, key), section, key, err);
	return -1;
}

static int prepare_dirs(struct sup *s)
{
	const struct cfg *c = &s->cfg;
	char dir[4096];
	if (make_dir(s, "ringmaster", "run_dir", c->run_dir, 0700) ||
	    make_dir(s, "ringmaster", "data_dir", c->data_dir, 0700) ||
	    (c->output_type == CFG_OUTPUT_FILE &&
	     make_dir(s, "output", "dir", c->output_dir, 0755)) ||
	    (dir_of(c->dead_letter, dir, sizeof(dir)) == 0 && dir[0] &&
	     make_dir(s, "output", "dead_letter", dir, 0755)))
		return -1;
	return 0;
}

/* LMDB maps each environment whole (map_size of address space): under a
 * limit on it (ulimit -v) the mmap fails with ENOMEM, a system resource
 * failure (EX_OSERR), not a configuration error. Say so, and where
 * map_size came from. */
static int store_failed(const struct sup *s, int rc, const char *err)
{
	log_error("%s", err);
	if (rc != -ENOMEM)
		return EX_CONFIG;
	log_error("%s: [store] map_size = %llu MiB could not be mapped: not enough memory or "
		  "address space (is it limited, ulimit -v?); raise the limit or lower map_size",
		  cfg_origin(&s->cfg, "store", "map_size"),
		  (unsigned long long)(s->cfg.map_size >> 20));
	return EX_OSERR;
}

/* Load the tables, and check every shard against the partition count
 * before any worker exists, so a mismatch stops us with one clear message.
 * Returns 0 or an exit status. */
static int prepare_stores(struct sup *s)
{
	const struct cfg *c = &s->cfg;
	char err[STORE_ERR_LEN];
	int rc = store_config_open(c->data_dir, c->map_size, 0, &s->config, err);
	if (rc != 0)
		return store_failed(s, rc, err);
	if ((rc = rsc_prepare(s)) != 0)
		return rc;
	for (unsigned p = 0; p < c->partitions; p++) {
		struct store_env *shard;
		rc = store_shard_open(c->data_dir, p, c->partitions, c->map_size,
				      (enum store_sync)c->sync, 0, &shard, err);
		if (rc != 0)
			return store_failed(s, rc, err);
		store_close(shard);
	}
	if ((rc = rsc_layout(s)) != 0)
		return rc;
	char errs[8192] = "";
	uint64_t gen;
	rc = store_config_load(s->config, c, &gen, errs, sizeof(errs));
	if (rc != 0) {
		log_error("cannot load the reference tables");
		log_lines(LOG_LEVEL_ERROR, "", errs);
		return rc == -ENOMEM ? EX_OSERR : EX_CONFIG;
	}
	s->generation = gen;
	return 0;
}

/* Before ring p's new records become visible: a latency stamp (stage.h),
 * when enough of the ring or of time has passed since the last one. */
static void stamp(struct sup *s, unsigned p)
{
	struct sup_stamp *t = &s->stamps[p];
	struct ring *r = s->shm.rings[p];
	uint64_t pos = ring_write_pos(r);
	if (pos - t->pos < s->cfg.ring_size / STAGE_STAMP_EVERY &&
	    s->unpublished_ns - t->ns < STAGE_STAMP_NS)
		return;
	stage_stamp(&s->shm.workers[p].stamps, pos, s->unpublished_ns);
	t->pos = pos;
	t->ns = s->unpublished_ns;
}

static void publish_all(struct sup *s)
{
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		if (s->pending[p]) {
			stamp(s, p);
			ring_publish(s->shm.rings[p]);
			s->pending[p] = 0;
		}
	}
	s->since_publish = 0;
	s->unpublished_ns = s->read_began_ns; /* what comes next is read after it */
}

/* ---- what the sources call (source.h) ---- */

int sup_dead_letter(struct sup *s, uint64_t seq, const char *reason, const char *line, size_t len,
		    uint64_t total)
{
	s->lines++;
	s->dead_lettered++;
	if (!replay_is(seq) && seq >= s->dead_next)
		s->dead_next = seq + 1; /* a rescale's cut goes past it */
	if (dl_add_cut(&s->dead, seq, reason, line, len, total) != 0) {
		log_error("out of memory for dead letters");
		return -1;
	}
	return 0;
}

int sup_dead_pending(const struct sup *s)
{
	return s->dead.len || s->dead_unsynced;
}

int sup_stopping(void)
{
	return sup_stop;
}

uint64_t sup_next_unapplied(const struct sup *s)
{
	return wm_next_unapplied(s);
}

/* Not dispatched, because the partition failed: redone at the next start,
 * the watermark stays below it. Once one event of a partition is held, all
 * its later ones are too, or the first would be skipped as applied. */
static int hold(struct sup *s, unsigned p, uint64_t seq)
{
	struct sup_worker *w = &s->workers[p];
	s->held++;
	s->lines++;
	/* A replayed event is not redone by a restart: its replay is, and
	 * the watermark is the source's alone. */
	if (replay_is(seq))
		return 0;
	if (!w->held++)
		w->first_held = seq;
	return 0;
}

void sup_note_parse(struct sup *s, uint64_t ns)
{
	stage_add(&s->shm.sup->stages, SUP_ST_PARSE, stage_scale(ns, s->clock_cost));
}

static int dispatch(struct sup *s, int partition, uint64_t seq, const char *key, size_t key_len,
		    const char *payload, size_t payload_len, const char *line, size_t line_len)
{
	uint64_t t0 = stage_sampled(seq) ? shm_now_ns() : 0;
	/* A Kafka message goes to the worker of the partition it was read
	 * from, since its seq is an offset in that partition. */
	unsigned p =
	    partition >= 0 ? (unsigned)partition : partition_of(key, key_len, s->cfg.partitions);
	struct ring *r = s->shm.rings[p];
	struct sup_worker *w = &s->workers[p];
	struct shm_worker *st = &s->shm.workers[p];
	if (w->held || (w->state == WK_FAILED && w->fail == FAIL_SYNC))
		return hold(s, p, seq);
	int rc = ring_put(r, seq, key, key_len, payload, payload_len);
	if (rc == -EAGAIN) {
		/* A failed handler's ring waits for restart-worker: no room
		 * comes, and the others go on. */
		if (w->state == WK_FAILED)
			return hold(s, p, seq);
		/* A Kafka partition that is ours no longer (lost, or its
		 * worker fenced): its worker will not make room, and its next
		 * owner reads the event. */
		if (atomic_load(&st->kafka_lost) || atomic_load(&st->kafka_fenced_by)) {
			s->lines++;
			return 0;
		}
		s->blocked = p + 1;
		s->blocked_len[0] = key_len;
		s->blocked_len[1] = payload_len;
		return -EAGAIN;
	}
	if (rc == -EMSGSIZE)
		return sup_dead_letter(s, seq, "too_long", line, line_len, line_len);
	if (rc != 0)
		return -1;
	s->lines++;
	s->dispatched++;
	s->pending[p]++;
	if (t0)
		stage_add(&s->shm.sup->stages, SUP_ST_PARTITION,
			  stage_sample_ns(t0, s->clock_cost));
	/* Publish often enough that workers never wait on a half-full ring. */
	if (++s->since_publish >= 256)
		publish_all(s);
	return 0;
}

int sup_dispatch(struct sup *s, int partition, uint64_t seq, const char *key, size_t key_len,
		 const char *payload, size_t payload_len, const char *line, size_t line_len)
{
	if (seq >= SEQ_REPLAY) {
		log_error("the source reached seq=%llu: seqs from 2^63 up are kept for replays, "
			  "so this data_dir can take no more events from it",
			  (unsigned long long)seq);
		return -1;
	}
	return dispatch(s, partition, seq, key, key_len, payload, payload_len, line, line_len);
}

int sup_dispatch_replay(struct sup *s, uint64_t seq, const char *key, size_t key_len,
			const char *payload, size_t payload_len, const char *line, size_t line_len)
{
	return dispatch(s, -1, seq, key, key_len, payload, payload_len, line, line_len);
}

int sup_part_owned(const struct sup *s, unsigned p)
{
	return s->workers[p].state != WK_UNOWNED;
}

int sup_part_running(const struct sup *s, unsigned p)
{
	return s->workers[p].state == WK_RUNNING && !s->workers[p].fail_on_exit;
}

int sup_part_acquire(struct sup *s, unsigned p)
{
	return lc_acquire(s, p);
}

void sup_part_release(struct sup *s, unsigned p)
{
	lc_release(s, p);
}

void sup_part_kill(struct sup *s, unsigned p, const char *why)
{
	lc_kill(s, p, why);
}

int sup_part_lost(struct sup *s, unsigned p, uint64_t lost)
{
	struct sup_worker *w = &s->workers[p];
	if (w->accept_loss) {
		w->accept_loss = 0;
		return 1;
	}
	w->offsets_lost += lost;
	return 0;
}

void sup_part_fail_data_loss(struct sup *s, unsigned p)
{
	lc_fail(s, p, FAIL_DATA_LOSS);
}

/* ---- periodic jobs ---- */

static void show_progress(struct sup *s, uint64_t now, int final)
{
	double secs = (double)(now - s->start_ns) / 1e9;
	double rate = secs > 0 ? (double)s->lines / secs : 0;
	char where[64] = "";
	if (s->source_size) {
		double frac = (double)s->source_pos / (double)s->source_size;
		double eta = frac > 0 ? secs / frac - secs : 0;
		snprintf(where, sizeof(where), "%5.1f%%  ETA %4.0fs  ", 100.0 * frac, eta);
	}
	char files[320] = "";
	if (s->files.files)
		snprintf(files, sizeof(files), "files %llu done %llu waiting %s  ",
			 (unsigned long long)s->files.files_done,
			 (unsigned long long)s->files.files_waiting, s->source_file);
	fprintf(stderr, "\r  %s%s%12llu events  %8.2f M events/s  %llu dead-lettered   %s", files,
		where, (unsigned long long)s->lines, rate / 1e6,
		(unsigned long long)s->dead_lettered, final ? "\n" : "");
}

/* Write the dead letters the source made. One that cannot be written (a
 * full or read-only file system) stops the source (dead_stuck): the lines
 * are kept, the failure is logged with the file and the reason every few
 * seconds, the control socket keeps answering, and reading resumes as soon
 * as a write succeeds. The watermark never passes the first unwritten line
 * (wm_record), so a stop meanwhile loses nothing. */
static void flush_dead_letters(struct sup *s)
{
	if (!s->dead.len)
		return;
	int rc = dl_flush(&s->dead, s->dead_fd);
	if (rc == 0) {
		if (s->dead_unsynced == 0)
			s->dead_unsynced = 1; /* wm_record syncs before passing them */
		s->dead_stuck = 0;
		return;
	}
	s->dead_stuck = 1;
	uint64_t now = shm_now_ns();
	if (now >= s->dead_next_log) {
		log_error("%s: cannot write dead letters: %s; not reading the source until it can",
			  s->cfg.dead_letter, strerror(-rc));
		s->dead_next_log = now + 5000000000ull;
	}
}

static void job_supervise(struct sup *s, uint64_t now)
{
	(void)now;
	lc_supervise(s, s->closing);
}

/* The log file again at its path, as nginx does on SIGUSR1: logrotate
 * renamed it. The workers follow before their next record (log_follow). */
static void reopen_log(struct sup *s)
{
	if (!s->cfg.log_file)
		return;
	int rc = log_open(s->cfg.log_file);
	if (rc != 0) {
		log_error("%s: cannot reopen the log file: %s; logging where it was",
			  s->cfg.log_file, strerror(-rc));
		return;
	}
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		atomic_fetch_add(&s->shm.workers[p].log_generation, 1);
	log_info("log file reopened: %s", s->cfg.log_file);
}

static void job_reload(struct sup *s, uint64_t now)
{
	char msg[8192];
	(void)now;
	if (sup_usr1) {
		sup_usr1 = 0;
		reopen_log(s);
	}
	if (!sup_hup)
		return;
	sup_hup = 0;
	reopen_log(s);
	sup_reload(s, msg, sizeof(msg));
}

static void job_rates(struct sup *s, uint64_t now)
{
	lc_sample_rates(s, now);
}

static void job_watermark(struct sup *s, uint64_t now)
{
	(void)now;
	wm_record(s);
}

static int dead_letters_stuck(const struct sup *s)
{
	return s->dead_stuck;
}

static void job_dead_letters(struct sup *s, uint64_t now)
{
	(void)now;
	flush_dead_letters(s);
}

static int progress_shown(const struct sup *s)
{
	return s->progress;
}

static void job_progress(struct sup *s, uint64_t now)
{
	show_progress(s, now, 0);
}

static int source_ticks(const struct sup *s)
{
	return s->src_open && s->src.ops->tick;
}

static int http_on(const struct sup *s)
{
	return s->http != NULL;
}

/* What the scraping endpoint serves (http.h): its own thread reads it. */
static void job_http(struct sup *s, uint64_t now)
{
	(void)now;
	struct proto_buf b;
	char reason[256];
	proto_buf_init(&b);
	int healthy = obs_health(s, reason, sizeof(reason));
	if (control_metrics(s, &b) == 0 && !b.failed)
		http_publish(s->http, b.data, b.len, healthy, reason);
	proto_buf_free(&b);
}

static void job_source(struct sup *s, uint64_t now)
{
	(void)now;
	s->src.ops->tick(&s->src);
}

/* systemd's WatchdogSec=: the loop is alive while it turns, whatever its
 * partitions do (a failed one is for /healthz and the metrics; it must not
 * get the whole instance killed). Also sent from the nested wait, so a
 * long library call that keeps serving the loop is not taken for a hang. */
static int sd_watchdog_on(const struct sup *s)
{
	return s->sd_watchdog_ns != 0;
}

/* Checked at every turn against its own deadline (its period is only
 * known at start); the loop turns at least every 250 ms (the watermark
 * job), the nested wait every second, and WatchdogSec= is seconds. */
static void job_sd_watchdog(struct sup *s, uint64_t now)
{
	if (now < s->sd_watchdog_next)
		return;
	notify_send("WATCHDOG=1");
	s->sd_watchdog_next = now + s->sd_watchdog_ns;
}

static int savepoint_on(const struct sup *s)
{
	return sup_savepoint_active(s);
}

static void job_savepoint(struct sup *s, uint64_t now)
{
	(void)now;
	sup_savepoint_step(s);
}

/* Everything the supervisor does now and then, in one table, as Redis's
 * serverCron: each job runs when `period_ms` has passed since it last ran
 * (0: at every turn of the loop: cheap checks of flags and deadlines). The
 * loop never sleeps past the next one. */
static const struct sup_job {
	const char *name;
	unsigned period_ms;
	void (*run)(struct sup *s, uint64_t now);
	int nested;			    /* also in the nested wait (a library callback's) */
	int (*wanted)(const struct sup *s); /* NULL: always; else only when it says so */
} jobs[] = {
    {"supervise", 0, job_supervise, 1, NULL}, /* reap, restart after backoff, watchdog */
    {"reload", 0, job_reload, 0, NULL},	      /* SIGHUP; SIGUSR1: reopen the log */
    {"rates", 1000, job_rates, 1, NULL},      /* events/s per worker */
    /* A restart redoes at most this much of the source (the workers skip
     * what they applied anyway). */
    {"watermark", 250, job_watermark, 0, NULL},
    {"dead letters", 250, job_dead_letters, 0, dead_letters_stuck}, /* retry a failed write */
    {"progress", 250, job_progress, 0, progress_shown},
    {"source", SRC_TICK_MS, job_source, 0, source_ticks}, /* Kafka: offsets, ready partitions */
    {"systemd watchdog", 0, job_sd_watchdog, 1, sd_watchdog_on}, /* WatchdogSec= */
    {"http", HTTP_PUBLISH_MS, job_http, 1, http_on},  /* the scraping endpoint's snapshot */
    {"savepoint", 0, job_savepoint, 0, savepoint_on}, /* follow the workers' copies, finish */
};
#define N_JOBS (sizeof(jobs) / sizeof(jobs[0]))

/* Run the jobs that are due; returns when the next one is. */
static uint64_t run_jobs(struct sup *s, uint64_t now, int nested)
{
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < N_JOBS; i++) {
		if ((nested && !jobs[i].nested) || (jobs[i].wanted && !jobs[i].wanted(s)))
			continue;
		if (now >= s->job_next[i]) {
			jobs[i].run(s, now);
			s->job_next[i] = now + jobs[i].period_ms * MS;
		}
		if (jobs[i].period_ms && s->job_next[i] < next)
			next = s->job_next[i];
	}
	return next;
}

/* ---- waiting ---- */

/* The one place the supervisor waits for input: on the source's
 * descriptor (src_fd, -1: none) and the control socket, until `until_ns`
 * at the latest, and serve the control socket. Returns 1 when the source's
 * descriptor is readable. A look that costs no wait is taken at most once
 * a millisecond: the loop asks for one after each budget of events. */
static int poll_once(struct sup *s, int src_fd, uint64_t until_ns)
{
	uint64_t now = shm_now_ns();
	if (until_ns <= now && now - s->last_poll_ns < MS)
		return 0;
	if (!s->pfds) { /* not started yet: nothing to serve */
		poll(NULL, 0, until_ns > now ? (int)((until_ns - now + MS - 1) / MS) : 0);
		return 0;
	}
	s->pfds[0] = (struct pollfd){.fd = src_fd, .events = POLLIN};
	unsigned n = 1 + control_pollfds(s->control, s->pfds + 1, now, &until_ns);
	int wait_ms = until_ns > now ? (int)((until_ns - now + MS - 1) / MS) : 0;
	if (until_ns == UINT64_MAX)
		wait_ms = -1;
	int rc = poll(s->pfds, n, wait_ms);
	if (rc < 0 && errno != EINTR)
		log_warn("poll: %s", strerror(errno));
	now = shm_now_ns();
	s->last_poll_ns = now;
	if (rc < 0)
		for (unsigned i = 0; i < n; i++)
			s->pfds[i].revents = 0;
	control_serve(s, s->pfds + 1, now);
	return src_fd >= 0 && (s->pfds[0].revents & (POLLIN | POLLERR | POLLHUP));
}

void sup_wait_nested(struct sup *s, int timeout_ms)
{
	uint64_t now = shm_now_ns();
	uint64_t next = run_jobs(s, now, 1);
	uint64_t until = now + (uint64_t)timeout_ms * MS;
	poll_once(s, -1, until < next ? until : next);
}

/* Wait, running the jobs and serving the control socket, until done(s):
 * what the end of a run waits for. */
static void wait_until(struct sup *s, int (*done)(struct sup *s), int slice_ms)
{
	while (!done(s)) {
		uint64_t now = shm_now_ns();
		uint64_t next = run_jobs(s, now, 0);
		uint64_t until = now + (uint64_t)slice_ms * MS;
		poll_once(s, -1, until < next ? until : next);
	}
}

/* The source waits for room in ring p: publish, so the worker has work,
 * and wait for it to make some, up to the next job. The source tries
 * again then, whatever happened (room, or its partition failed). */
static void wait_for_room(struct sup *s, uint64_t next_job)
{
	unsigned p = s->blocked - 1;
	uint64_t now = shm_now_ns();
	int ms = next_job > now ? (int)((next_job - now + MS - 1) / MS) : 0;
	if (ms > WAIT_SLICE_MS)
		ms = WAIT_SLICE_MS;
	publish_all(s);
	stage_enter(&s->clock, SUP_ST_BACKPRESSURE);
	ring_wait_space(s->shm.rings[p], s->blocked_len[0], s->blocked_len[1], ms);
	stage_enter(&s->clock, SUP_ST_OTHER);
	s->blocked = 0;
	poll_once(s, -1, 0);
}

/* ---- the loop ---- */

static void note_position(struct sup *s)
{
	struct src_pos pos = {.next_seq = 0};
	s->src.ops->position(&s->src, &pos);
	s->next_seq = pos.next_seq;
	s->source_pos = pos.read;
	s->source_size = pos.size;
	if (pos.files) {
		s->files = pos;
		snprintf(s->source_file, sizeof(s->source_file), "%s", pos.file ? pos.file : "");
		s->files.file = s->source_file;
	}
}

/* Read the source until it ends, a stop is asked for, or the run fails.
 * Each turn runs the jobs that are due, takes a budget of events from the
 * source, and waits: for room in a ring, for input, or for the next job.
 * Returns 0, or -1 when the source failed. */
static int run_loop(struct sup *s)
{
	struct source *src = &s->src;
	uint64_t idle_until = 0;
	for (;;) {
		uint64_t now = shm_now_ns();
		uint64_t next = run_jobs(s, now, 0);
		if (sup_stop || s->failed)
			return 0;
		enum src_result r = SRC_IDLE;
		/* A replay's events go in between the source's. */
		int replayed = s->dead_stuck || s->blocked ? 0 : replay_feed(s, SRC_BUDGET);
		if (replayed < 0)
			return -1;
		if (!s->dead_stuck && now >= idle_until) {
			s->read_began_ns = stage_enter(&s->clock, SUP_ST_READ);
			if (!s->since_publish)
				s->unpublished_ns = s->read_began_ns;
			r = src->ops->read(src, SRC_BUDGET);
			stage_enter(&s->clock, SUP_ST_OTHER);
			note_position(s);
			flush_dead_letters(s);
			if (r == SRC_END)
				return 0;
			if (r == SRC_ERROR)
				return -1;
			if (r == SRC_IDLE) {
				int idle_ms = 0;
				src->ops->pollfd(src, &idle_ms);
				idle_until = now + (uint64_t)idle_ms * MS;
			}
		}
		if (s->blocked) {
			wait_for_room(s, next);
		} else if (r == SRC_MORE || replayed > 0) {
			poll_once(s, -1, 0);
		} else {
			int idle_ms = 0;
			int fd = src->ops->pollfd(src, &idle_ms);
			uint64_t until = idle_until > next || s->dead_stuck ? next : idle_until;
			publish_all(s);
			stage_enter(&s->clock, SUP_ST_IDLE);
			atomic_store_explicit(&s->shm.sup->waiting_input, 1, memory_order_relaxed);
			if (poll_once(s, s->dead_stuck ? -1 : fd, until))
				idle_until = 0; /* input: read at once */
			atomic_store_explicit(&s->shm.sup->waiting_input, 0, memory_order_relaxed);
			stage_enter(&s->clock, SUP_ST_OTHER);
		}
	}
}

void sup_request_stop(struct sup *s)
{
	(void)s;
	if (!sup_stop) {
		atomic_store_explicit(&first_stop_ns, shm_now_ns(), memory_order_relaxed);
		sup_stop = 1;
	}
}

void sup_fail(struct sup *s, int status)
{
	if (!s->exit_status)
		s->exit_status = status;
	sup_request_stop(s);
}

const char *sup_state_name(enum sup_state st)
{
	switch (st) {
	case SUP_STARTING:
		return "starting";
	case SUP_RUNNING:
		return "running";
	case SUP_RELOADING:
		return "reloading";
	case SUP_STOPPING:
		return "stopping";
	}
	return "?";
}

/* The end of a run: every dead letter written, unless a stop cuts it
 * short (the watermark stays below what is not). */
static int dead_letters_written(struct sup *s)
{
	flush_dead_letters(s);
	return !s->dead.len || sup_stop;
}

static int cut_ready(struct sup *s)
{
	return rsc_cut_ready(s);
}

/* Every worker gone. A second SIGINT/SIGTERM (a second request: see
 * on_stop), or stop_timeout after a stop request, kills those left. */
static int workers_gone(struct sup *s)
{
	if (!lc_alive(s))
		return 1;
	int again = sup_stop > s->stops_seen && sup_stop > 1;
	if (again || (sup_stop && shm_now_ns() > s->stop_deadline)) {
		lc_kill_all(s, again ? "stop requested twice" : "did not stop within stop_timeout");
		s->failed = 1;
		s->stop_deadline = UINT64_MAX;
		s->stops_seen = sup_stop;
	}
	return 0;
}

/* Close every ring and wait for the workers to drain, commit and exit,
 * restarting any that die meanwhile. */
static void stop_workers(struct sup *s)
{
	s->stops_seen = sup_stop;
	s->stop_deadline = shm_now_ns() + s->cfg.stop_timeout_ms * 1000000u;
	s->state = SUP_STOPPING;
	s->closing = 1;
	if (s->cut) /* systemd: the same service, back with READY=1 */
		notify_send("RELOADING=1\nSTATUS=stopping the workers at the cut to rescale");
	else if (s->rescale_to)
		notify_send("RELOADING=1\nSTATUS=draining the workers to rescale");
	else
		notify_send("STOPPING=1\nSTATUS=draining the workers");
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		ring_close(s->shm.rings[p]);
	wait_until(s, workers_gone, 20);
	sup_child = 1;
	lc_supervise(s, 1); /* reap the last */
}

/* ringmaster needs this many descriptors free at start: its stores,
 * source and files, the control socket and its connections, and what each
 * worker opens on top of what it inherits. */
#define SUP_MIN_FREE_FDS 64

static const char *limit_str(unsigned long long v, char *buf, size_t size)
{
	if (v == (unsigned long long)RLIM_INFINITY)
		return "unlimited";
	snprintf(buf, size, "%llu", v);
	return buf;
}

/* The soft limit on descriptors goes up to the hard one, as most daemons
 * do (systemd's default soft limit is 1024). A limit too low to run on is
 * refused here, with EX_OSERR and the figures, rather than found out later
 * by a store or a worker that cannot open a file. */
static int prepare_fds(void)
{
	struct fd_limit l;
	char a[32], b[32];
	if (fdlimit_raise(&l) != 0) {
		if (l.hard == 0 && l.soft == 0)
			log_warn("file descriptors: cannot read the limit: %s", strerror(l.err));
		else
			log_warn("file descriptors: cannot raise the soft limit from %s to the "
				 "hard limit %s: %s",
				 limit_str(l.soft, a, sizeof(a)), limit_str(l.hard, b, sizeof(b)),
				 strerror(l.err));
	} else if (l.soft != l.before) {
		log_info("file descriptors: soft limit raised from %s to %s (the hard limit)",
			 limit_str(l.before, a, sizeof(a)), limit_str(l.soft, b, sizeof(b)));
	} else {
		log_debug("file descriptors: limit %s (soft and hard)",
			  limit_str(l.soft, a, sizeof(a)));
	}
	long left = fdlimit_free();
	if (left < 0 || left >= SUP_MIN_FREE_FDS)
		return 0;
	long open = fdlimit_open_count();
	char n[32] = "all";
	if (open >= 0)
		snprintf(n, sizeof(n), "%ld", open);
	log_error("too few file descriptors: the limit is %s (hard limit %s) and %s are open "
		  "already; ringmaster needs %d free to start (stores, source, control socket, "
		  "workers): raise the hard limit (ulimit -Hn, systemd LimitNOFILE=)",
		  limit_str(l.soft, a, sizeof(a)), limit_str(l.hard, b, sizeof(b)), n,
		  SUP_MIN_FREE_FDS);
	return EX_OSERR;
}

/* The sources, by [source] type: a new one is a file and a line here. */
static const struct source_ops *const sources[] = {
    [CFG_SOURCE_FILE] = &src_file_ops,	 [CFG_SOURCE_GENERATE] = &src_generate_ops,
    [CFG_SOURCE_SPOOL] = &src_spool_ops, [CFG_SOURCE_ZMQ] = &src_zmq_ops,
    [CFG_SOURCE_KAFKA] = &src_kafka_ops,
};

static int open_source(struct sup *s)
{
	const struct source_ops *ops = NULL;
	if ((size_t)s->cfg.source_type < sizeof(sources) / sizeof(sources[0]))
		ops = sources[s->cfg.source_type];
	if (!ops) {
		log_error("this source type is not available in this version");
		return 1;
	}
	s->src = (struct source){.ops = ops,
				 .sup = s,
				 .cfg = &s->cfg,
				 .config = s->config,
				 .shm = &s->shm,
				 .resume_seq = s->resume_seq};
	s->src_open = 1;
	s->src_release = ops->release != NULL;
	int rc = ops->open(&s->src);
	if (rc == 0)
		note_position(s);
	return rc;
}

/* 0, or the exit status the source ends with. */
static int close_source(struct sup *s)
{
	if (!s->src_open)
		return 0;
	s->src_open = 0;
	return s->src.ops->close(&s->src);
}

/* The watermark reached the disk: a source may act on it (a spool moves
 * the files done). */
void sup_source_durable(struct sup *s)
{
	if ((s->src_open || s->src_release) && s->src.ops->durable)
		s->src.ops->durable(&s->src, s->watermark);
}

/* Start, first: are the files and directories safe to use (strict_modes),
 * the handler loadable, and this instance the only one on its run_dir and
 * data_dir? Returns 0 or an exit status. */
static int check_and_lock(struct sup *s)
{
	const struct cfg *c = &s->cfg;
	char err[2048];
	char unsafe[4096] = "";
	if (safety_check_files(c, s->config_path, unsafe, sizeof(unsafe)) != 0) {
		log_lines(LOG_LEVEL_ERROR, "", unsafe);
		return EX_CONFIG;
	}
	/* Before anything is made or chmodded in them. */
	if (safety_check_dirs(c, unsafe, sizeof(unsafe)) != 0) {
		log_lines(LOG_LEVEL_ERROR, "", unsafe);
		return EX_CANTCREAT;
	}
	if (prepare_dirs(s) != 0)
		return EX_CANTCREAT;
	if (safety_check_run_dir(c, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return EX_CANTCREAT;
	}
	/* Opened and checked once: every worker loads this descriptor. The
	 * check child is forked before we hold any lock it could keep. */
	if (handler_open(c, &s->handler_fd, err, sizeof(err)) != 0 ||
	    handler_check(c, s->handler_fd, err, sizeof(err)) != 0) {
		log_lines(LOG_LEVEL_ERROR, "", err);
		return EX_CONFIG;
	}
	log_lines(LOG_LEVEL_WARN, "", err); /* settings the handler never reads */
	if (lock_pid_file(s) != 0 || own_lock_data_dir(s) != 0)
		return EX_CANTCREAT;
	if (own_wait_for_orphans(s) != 0)
		return sup_stop ? EX_TEMPFAIL : EX_CANTCREAT;
	return 0;
}

/* Then the stores, the files the instance owns, the dead-letter file and
 * where the source resumes. */
static int prepare_state(struct sup *s)
{
	const struct cfg *c = &s->cfg;
	int rc = prepare_stores(s);
	if (rc != 0)
		return rc;
	int owned = own_files(s);
	if (owned != 0)
		return owned;
	s->dead_fd = dl_open(c->dead_letter);
	if (s->dead_fd < 0) {
		log_error("%s: [output] dead_letter = %s: cannot open the dead-letter file: %s",
			  cfg_origin(c, "output", "dead_letter"), c->dead_letter,
			  strerror(-s->dead_fd));
		return EX_CANTCREAT;
	}
	if (wm_prepare(s) != 0)
		return EX_CONFIG;
	return 0;
}

/* Then the rings, the fork server, the source, the workers and the control
 * socket. */
static int launch(struct sup *s)
{
	const struct cfg *c = &s->cfg;
	int rc = shm_create(&s->shm, c->partitions, c->ring_size);
	s->workers = calloc(c->partitions, sizeof(*s->workers));
	s->pending = calloc(c->partitions, sizeof(*s->pending));
	s->stamps = calloc(c->partitions, sizeof(*s->stamps));
	if (rc != 0 || !s->workers || !s->pending || !s->stamps) {
		log_error("cannot map %u rings of %llu bytes: %s", c->partitions,
			  (unsigned long long)c->ring_size, strerror(rc ? -rc : ENOMEM));
		return EX_OSERR;
	}
	for (unsigned p = 0; p < c->partitions; p++)
		s->workers[p].state = WK_STOPPED; /* until it is forked */
	if ((rc = sup_handler_record(s)) != 0)
		return rc;
	if (install_signals() != 0) {
		log_error("cannot install signal handlers: %s", strerror(errno));
		return EX_OSERR;
	}
	/* Before libzmq or librdkafka start threads here: a child forked while
	 * another thread holds a lock (glibc's in getaddrinfo, ASan's
	 * allocator) can hang on it. Every worker is forked by this server. */
	if ((rc = fs_start(&s->forksrv, c, &s->shm, s->handler_fd)) != 0) {
		log_error("cannot start the fork server: %s", strerror(-rc));
		return EX_OSERR;
	}
	/* Before the workers: a file that is not the one this data_dir read
	 * is refused with nothing processed. After the fork server: libzmq
	 * and librdkafka start threads. */
	if ((rc = open_source(s)) != 0)
		return rc;
	for (unsigned p = 0; p < c->partitions; p++) {
		atomic_store(&s->shm.workers[p].current_seq, SHM_NO_SEQ);
		atomic_store(&s->shm.workers[p].skip_seq, SHM_NO_SEQ);
		atomic_store(&s->shm.workers[p].good_seq, SHM_NO_SEQ);
		atomic_store(&s->shm.workers[p].durable_next, SHM_NO_SEQ);
		s->workers[p].backoff_ms = c->backoff_initial_ms;
		if (c->source_type == CFG_SOURCE_KAFKA)
			s->workers[p].state = WK_UNOWNED; /* until the group assigns it */
		else
			lc_spawn(s, p); /* a failed fork is retried with backoff */
	}
	if (control_open(s) != 0)
		return EX_CANTCREAT;
	/* A thread: after the fork server (see above). */
	if (c->http && !(s->http = http_start(c->http)))
		return EX_CANTCREAT;
	s->pfds = calloc(1 + control_max_fds(s->control), sizeof(*s->pfds));
	if (!s->pfds) {
		log_error("out of memory");
		return EX_OSERR;
	}
	return 0;
}

static int start(struct sup *s)
{
	const struct cfg *c = &s->cfg;
	int rc = check_and_lock(s);
	if (rc == 0)
		rc = prepare_state(s);
	if (rc == 0)
		rc = launch(s);
	if (rc != 0)
		return rc;
	s->state = SUP_RUNNING;
	notify_send("READY=1\nSTATUS=running, %u workers\nMAINPID=%ld", c->partitions,
		    (long)getpid());
	/* Half the interval, as sd_watchdog_enabled(3) advises; the first
	 * WATCHDOG=1 goes at the loop's first turn. */
	s->sd_watchdog_ns = notify_watchdog_usec() * 1000 / 2;
	if (s->sd_watchdog_ns)
		log_info("systemd watchdog: WATCHDOG=1 every %llu ms",
			 (unsigned long long)(s->sd_watchdog_ns / MS));
	log_info("started partitions=%u handler=%s source=%s", c->partitions, c->handler,
		 c->source_type == CFG_SOURCE_FILE    ? c->source_path
		 : c->source_type == CFG_SOURCE_SPOOL ? c->spool_dir
		 : c->source_type == CFG_SOURCE_KAFKA ? c->kafka_topic
		 : c->source_type == CFG_SOURCE_ZMQ   ? c->zmq_bind
						      : "generate");
	return 0;
}

static void cleanup(struct sup *s)
{
	sup_savepoint_free(s);
	http_stop(s->http);
	s->http = NULL;
	fs_stop(&s->forksrv);
	if (s->control)
		control_close(s);
	close_source(s);
	if (s->src_release) {
		s->src_release = 0;
		s->src.ops->release(&s->src);
	}
	dl_free(&s->dead);
	if (s->dead_fd >= 0)
		close(s->dead_fd);
	if (s->config)
		store_close(s->config);
	if (s->data_lock_fd >= 0)
		close(s->data_lock_fd);
	if (s->handler_fd >= 0)
		close(s->handler_fd);
	wm_free(s);
	replay_free(s);
	shm_destroy(&s->shm);
	free(s->workers);
	free(s->pending);
	free(s->stamps);
	free(s->pfds);
	free(s->job_next);
	if (s->pid_fd >= 0) {
		/* Ours while we hold the lock: a stale pid file misleads. */
		char path[4200];
		snprintf(path, sizeof(path), "%s/ringmaster.pid", s->cfg.run_dir);
		unlink(path);
		close(s->pid_fd);
	}
}

int sup_run(struct sup *s)
{
	s->pid_fd = s->dead_fd = s->data_lock_fd = s->handler_fd = s->forksrv.fd = -1;
	s->start_ns = shm_now_ns();
	s->job_next = calloc(N_JOBS, sizeof(*s->job_next));
	if (!s->job_next) {
		log_error("out of memory");
		return EX_OSERR;
	}
	s->progress = isatty(STDERR_FILENO) && s->cfg.source_type != CFG_SOURCE_ZMQ &&
		      s->cfg.source_type != CFG_SOURCE_KAFKA && !s->cfg.follow;
	s->state = SUP_STARTING;
	proctitle_set("ringmaster", "ringmaster: supervisor (%s)", s->cfg.name);
	int status = s->cfg.log_file ? log_open(s->cfg.log_file) : 0;
	if (status != 0) {
		log_error("%s: cannot open the log file: %s", s->cfg.log_file, strerror(-status));
		return EX_CANTCREAT;
	}
	status = prepare_fds();
	if (status == 0)
		status = start(s);
	if (status != 0) {
		if (s->workers) {
			sup_stop = 2; /* at once: no worker is restarted */
			lc_kill_all(s, "ringmaster could not start (see above), so it stops");
			stop_workers(s);
		}
		cleanup(s);
		return status;
	}
	s->clock_cost = stage_clock_cost();
	stage_start(&s->clock, &s->shm.sup->stages, SUP_ST_OTHER);
	int rc = run_loop(s);
	/* From here the supervisor waits for the workers to drain. */
	stage_enter(&s->clock, SUP_ST_BACKPRESSURE);
	/* The Kafka source leaves its group here: its workers drain and
	 * commit in the rebalance callback. */
	int closed = close_source(s);
	if (rc == 0)
		rc = closed;
	publish_all(s);
	wait_until(s, dead_letters_written, 250);
	if (s->progress)
		show_progress(s, shm_now_ns(), 1);
	if (sup_stop && !s->cut)
		log_info("stopping: letting the workers drain their rings and commit");
	if (s->cut) { /* the workers stop at barriers placed where they are */
		wait_until(s, cut_ready, 5);
		rsc_cut_place(s);
	}
	stop_workers(s);
	wait_until(s, dead_letters_written, 250);
	if (!s->cut || rsc_cut_end(s) != 0)
		wm_record(s);
	replay_end(s);
	if (!s->failed)
		sup_source_durable(s);
	/* rc > 0: stopped cleanly, but with an exit status to tell (75: Kafka
	 * offsets not committed). */
	int bad = rc < 0 || s->failed || s->failed_partitions || s->held;
	status = bad ? 1 : rc;
	if (s->exit_status)
		status = s->exit_status;
	if (!bad && !s->exit_status)
		own_clean_exit(s);
	stage_enter(&s->clock, SUP_ST_OTHER);
	summary_report(s, shm_now_ns());
	cleanup(s);
	return status;
}
