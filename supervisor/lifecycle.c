/* lifecycle.c - see lifecycle.h.
 *
 * A worker that dies is replaced by one that resumes at its ring's acked
 * position and skips what its shard already applied, so restarting is always
 * safe; the backoff only keeps a crash loop from eating the machine. The
 * delay starts at backoff_initial, doubles up to backoff_max, and starts
 * over once a worker has stayed up backoff_reset.
 *
 * A worker notes in shared memory the batch in hand and the seq it is
 * handling. A death in the handler (a crash, exit, an error, a watchdog
 * kill) bisects the batch, as stream processors "bisect batch on error":
 * the next worker takes at most half as many events per batch until it has
 * committed past the failed batch, so the good events around a poison one
 * commit and every poison event ends up alone. When workers keep dying on
 * the same seq (poison_after times), the next one moves that event to the
 * dead-letter file instead of handling it, and ends its batch there, so
 * the dead letter commits before anything after it is tried. When
 * fail_after events in a row are poison (no event finished between them),
 * the handler fails on everything: the partition is marked failed and not
 * restarted until `ringctl restart-worker`; the rest goes on.
 *
 * Workers are forked by the fork server (forksrv.h), never by the
 * supervisor itself, which runs library threads; they are its children all
 * the same. Without the server no worker can be started safely: when it
 * dies, ringmaster stops (the running workers drain and commit) and exits
 * EX_OSERR. */
#include "lifecycle.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "forksrv.h"
#include "log.h"
#include "reload.h"
#include "replay.h"
#include "supervisor.h"
#include "worker.h"

#define MS 1000000ull

static void describe_status(int status, char *buf, size_t size);

/* The fork server is gone (`how`): stop, once. */
static void forksrv_lost(struct sup *s, const char *how)
{
	if (s->forksrv_lost_logged)
		return;
	s->forksrv_lost_logged = 1;
	log_error("the fork server %s: no worker can be started safely any more (the "
		  "supervisor runs library threads, and a process forked from it can hang on "
		  "a lock one of them held), so ringmaster stops: the running workers drain "
		  "and commit, none is restarted, and it exits %d. Start it again",
		  how, EX_OSERR);
	sup_fail(s, EX_OSERR);
}

int lc_spawn(struct sup *s, unsigned p)
{
	struct sup_worker *w = &s->workers[p];
	pid_t pid = fs_spawn(&s->forksrv, p, log_fd(), sup_handler_fd(s, p));
	if (pid == -EPIPE) {
		forksrv_lost(s, "is gone");
		w->state = WK_STOPPED;
		snprintf(w->last_exit, sizeof(w->last_exit),
			 "not started: the fork server is gone");
		log_error("cannot start worker %u: the fork server is gone", p);
		return -1;
	}
	if (pid < 0) {
		log_error("cannot fork worker %u: %s; retrying in %llums", p,
			  pid == -ETIMEDOUT ? "the fork server did not answer in time"
					    : strerror((int)-pid),
			  (unsigned long long)w->backoff_ms);
		w->state = WK_BACKOFF;
		w->restart_at_ns = shm_now_ns() + w->backoff_ms * MS;
		return -1;
	}
	w->pid = pid;
	w->state = WK_RUNNING;
	w->started_ns = shm_now_ns();
	w->restart_requested = 0;
	return 0;
}

static void describe_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, size, "wait status 0x%x", status);
}

/* The handler of partition p could not finish n events in a row, the last
 * `seq`: the partition fails until `ringctl restart-worker`. */
static void handler_failed(struct sup *s, unsigned p, unsigned n, uint64_t seq)
{
	struct sup_worker *w = &s->workers[p];
	w->state = WK_FAILED;
	w->fail = FAIL_HANDLER;
	s->failed_partitions++;
	snprintf(w->last_exit, sizeof(w->last_exit),
		 "failed: the handler could not finish %u events in a row", n);
	log_error("partition %u failed: its handler could not finish %u events in a row "
		  "(fail_after), the last seq=%llu: not restarting it. Its events wait in its "
		  "ring, held back once that is full; the rest goes on. Fix the handler or its "
		  "tables, then run: ringctl restart-worker %u",
		  p, n, (unsigned long long)seq, p);
}

/* An event the handler could not finish, poison_after times: one more in
 * a row. Returns 1 when that makes fail_after: the partition fails. */
static int note_unfinished(struct sup *s, unsigned p, uint64_t seq)
{
	struct sup_worker *w = &s->workers[p];
	uint64_t good = atomic_load(&s->shm.workers[p].good_seq);
	/* A replayed seq and a source one say nothing of their order: the
	 * handler finished one since, as far as we know. */
	int same = replay_is(good) == replay_is(w->last_fail_seq);
	if (w->fails_in_row && (good == SHM_NO_SEQ || (same && good < w->last_fail_seq)))
		w->fails_in_row++;
	else
		w->fails_in_row = 1; /* the handler finished one since */
	w->last_fail_seq = seq;
	if (w->fails_in_row < s->cfg.fail_after)
		return 0;
	handler_failed(s, p, w->fails_in_row, seq);
	return 1;
}

/* A worker died. If it died in the handler, bisect the batch it had, count
 * the death against the event, and after poison_after deaths on one event
 * tell the next worker to dead-letter it. Returns 1 when the partition
 * failed (note_unfinished). */
static int note_death(struct sup *s, unsigned p)
{
	struct sup_worker *w = &s->workers[p];
	struct shm_worker *st = &s->shm.workers[p];
	uint64_t seq = atomic_load(&st->current_seq);
	atomic_store(&st->current_seq, SHM_NO_SEQ);
	if (seq == SHM_NO_SEQ) {
		w->poison_deaths = 0;
		return 0; /* not in the handler: not the events' fault */
	}
	uint32_t n = atomic_load(&st->batch_n), limit = n > 1 ? n / 2 : 1;
	if (n > 1)
		log_warn("worker %u died on seq=%llu in a batch of %u events (the last seq=%llu): "
			 "retrying them %u at a time",
			 p, (unsigned long long)seq, n,
			 (unsigned long long)atomic_load(&st->batch_last_seq), limit);
	atomic_store(&st->limit_until, atomic_load(&st->batch_last_seq));
	atomic_store(&st->batch_limit, limit);
	if (w->poison_deaths && seq == w->poison_seq) {
		w->poison_deaths++;
	} else {
		w->poison_seq = seq;
		w->poison_deaths = 1;
	}
	if (w->poison_deaths < s->cfg.poison_after)
		return 0;
	w->poison_deaths = 0;
	if (note_unfinished(s, p, seq))
		return 1;
	log_error("event seq=%llu killed worker %u %u times: moving it to the "
		  "dead-letter file as poison",
		  (unsigned long long)seq, p, s->cfg.poison_after);
	atomic_store(&st->skip_why, SHM_SKIP_POISON);
	atomic_store(&st->skip_seq, seq);
	w->backoff_ms = 0; /* progress: the next try starts from backoff_initial */
	return 0;
}

static uint64_t next_delay(struct sup *s, struct sup_worker *w, uint64_t now)
{
	const struct cfg *c = &s->cfg;
	if (w->backoff_ms == 0 || now - w->started_ns >= c->backoff_reset_ms * MS)
		w->backoff_ms = c->backoff_initial_ms;
	uint64_t delay = w->backoff_ms;
	w->backoff_ms = delay * 2 > c->backoff_max_ms ? c->backoff_max_ms : delay * 2;
	return delay;
}

static void worker_exited(struct sup *s, unsigned p, int status, int closing)
{
	struct sup_worker *w = &s->workers[p];
	uint64_t now = shm_now_ns();
	pid_t pid = w->pid;
	w->pid = 0;
	describe_status(status, w->last_exit, sizeof(w->last_exit));
	int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == WRK_EXIT_NO_FDS) {
		/* A new one would fare no better: stop, and say why. */
		w->state = WK_STOPPED;
		w->releasing = 0;
		if (!s->exit_status)
			log_error(
			    "worker %u (pid %ld) cannot start: out of file descriptors (see "
			    "above): stopping ringmaster (exit %d); raise the limit, then start "
			    "it again",
			    p, (long)pid, WRK_EXIT_NO_FDS);
		sup_fail(s, EX_OSERR);
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == WRK_EXIT_HANDLER_FAILED && !w->releasing) {
		/* Failures it survived (Lua errors), fail_after in a row. */
		struct shm_worker *st = &s->shm.workers[p];
		handler_failed(s, p, atomic_exchange(&st->handler_fails, 0),
			       atomic_exchange(&st->current_seq, SHM_NO_SEQ));
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == WRK_EXIT_SWITCH_FAILED && !w->releasing) {
		sup_switch_failed(s, p);
		return;
	}
	if ((WIFEXITED(status) && WEXITSTATUS(status) == WRK_EXIT_SYNC_FAILED) ||
	    atomic_load(&s->shm.workers[p].sync_failed)) {
		/* Not even when releasing: the pages are suspect wherever they go. */
		w->state = WK_FAILED;
		w->fail = FAIL_SYNC;
		w->fail_on_exit = 0;
		w->releasing = 0;
		s->failed_partitions++; /* the rest goes on; the run ends 1 */
		log_error("partition %u failed: worker pid %ld could not fsync its files (see "
			  "above), so it is not restarted; its events are held back and the "
			  "resume position stays below them: fix the disk, then restart ringmaster",
			  p, (long)pid);
		return;
	}
	if (w->fail_on_exit && !w->releasing) {
		w->fail_on_exit = 0;
		w->state = WK_FAILED;
		s->failed_partitions++;
		log_info("worker %u (pid %ld) stopped: its partition failed (%s)", p, (long)pid,
			 w->last_exit);
		snprintf(w->last_exit, sizeof(w->last_exit), "failed: data lost to retention");
		return;
	}
	w->fail_on_exit = 0;
	if (w->releasing) {
		/* What it did not commit, the partition's next owner redoes. */
		w->releasing = 0;
		w->state = WK_UNOWNED;
		log_info("worker %u (pid %ld) released its partition: %s", p, (long)pid,
			 w->last_exit);
		return;
	}
	/* Drained, or stopped at a rescale's cut with the rest left to it. */
	const struct shm_worker *st = &s->shm.workers[p];
	if (clean && closing &&
	    (ring_drained(s->shm.rings[p]) ||
	     (atomic_load(&st->barrier_kind) == SHM_BARRIER_STOP &&
	      atomic_load(&st->barrier_done) == atomic_load(&st->barrier_id)))) {
		w->state = WK_STOPPED;
		return;
	}
	int64_t fenced_by = atomic_load(&s->shm.workers[p].kafka_fenced_by);
	if (fenced_by) {
		/* Another instance owns the partition: a new worker would find
		 * the same. The group takes it from us (lc_release). */
		w->state = WK_STOPPED;
		log_warn(
		    "worker %u (pid %ld) ended: %s; partition %u is fenced by generation %lld: "
		    "not restarting it",
		    p, (long)pid, w->last_exit, p, (long long)fenced_by);
		return;
	}
	if (sup_stop > 1) { /* stop at once: no restarts */
		w->state = WK_STOPPED;
		log_warn("worker %u (pid %ld) ended: %s", p, (long)pid, w->last_exit);
		return;
	}
	w->restarts++;
	if (WIFEXITED(status) && WEXITSTATUS(status) == WRK_EXIT_RELOAD) {
		log_info("worker %u (pid %ld) stopped at its barrier to load handler version "
			 "%016llx: starting it again",
			 p, (long)pid,
			 (unsigned long long)atomic_load(&s->shm.workers[p].barrier_what));
		w->backoff_ms = 0;
		lc_spawn(s, p);
		return;
	}
	if (clean && w->restart_requested) {
		log_info("worker %u (pid %ld) stopped for a restart: starting it again", p,
			 (long)pid);
		w->backoff_ms = 0;
		lc_spawn(s, p);
		return;
	}
	if (note_death(s, p))
		return;
	uint64_t delay = next_delay(s, w, now);
	log_warn("worker %u (pid %ld) ended: %s; restarting it in %llums (restart %u)", p,
		 (long)pid, w->last_exit, (unsigned long long)delay, w->restarts);
	w->state = WK_BACKOFF;
	w->restart_at_ns = now + delay * MS;
}

static void reap(struct sup *s, int closing)
{
	int status;
	pid_t pid;
	sup_child = 0;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (fs_reaped(&s->forksrv, pid)) {
			char how[160], desc[96];
			describe_status(status, desc, sizeof(desc));
			snprintf(how, sizeof(how), "(pid %ld) ended: %s", (long)pid, desc);
			forksrv_lost(s, how);
			continue;
		}
		/* A pid that is no worker's is a process a worker left
		 * behind, reparented here (we are a subreaper), or one the
		 * fork server started too late (fs_spawn killed it). */
		for (unsigned p = 0; p < s->cfg.partitions; p++) {
			if (s->workers[p].pid == pid) {
				worker_exited(s, p, status, closing);
				break;
			}
		}
	}
}

/* A worker with events waiting and no progress for `watchdog` is hung (or
 * stopped): kill it; the reaper restarts it. Progress is an event finished
 * (the seq in the handler changes) or a heartbeat (a batch begun, or a
 * wait on an output that is still alive), so a slow but healthy handler
 * is never killed, however large its batches. */
static void watchdog(struct sup *s, uint64_t now)
{
	uint64_t limit = s->cfg.watchdog_ms * MS;
	if (!limit)
		return;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		struct sup_worker *w = &s->workers[p];
		struct shm_worker *st = &s->shm.workers[p];
		/* A Kafka worker that is restoring (or not ready yet) has work
		 * too, with an empty ring: its partition waits for it. */
		int restoring = atomic_load(&st->restoring) != 0;
		if (w->state != WK_RUNNING || (ring_drained(s->shm.rings[p]) && !restoring))
			continue;
		uint64_t seq = atomic_load(&st->current_seq);
		if (seq != w->wd_seq) {
			w->wd_seq = seq;
			w->wd_seen_ns = now;
		}
		uint64_t beat = atomic_load(&st->heartbeat_ns);
		if (beat < w->wd_seen_ns)
			beat = w->wd_seen_ns;
		if (beat < w->started_ns)
			beat = w->started_ns; /* still starting: count from the fork */
		/* The worker may have beaten after `now` was read. */
		if (beat >= now || now - beat < limit)
			continue;
		log_error("worker %u (pid %ld) has %s and made no progress for %llums: killing it",
			  p, (long)w->pid, restoring ? "not got ready" : "events waiting",
			  (unsigned long long)((now - beat) / MS));
		kill(w->pid, SIGKILL);
		w->started_ns = now; /* one kill per watchdog period */
	}
}

void lc_sample_rates(struct sup *s, uint64_t now)
{
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		struct sup_worker *w = &s->workers[p];
		unsigned i = w->rate_next % SUP_RATE_SAMPLES;
		w->rate_processed[i] = atomic_load(&s->shm.workers[p].processed);
		w->rate_ns[i] = now;
		w->rate_next++;
	}
}

double sup_worker_rate(const struct sup *s, unsigned p)
{
	const struct sup_worker *w = &s->workers[p];
	if (w->rate_next < 2)
		return 0;
	unsigned newest = (w->rate_next - 1) % SUP_RATE_SAMPLES;
	unsigned oldest = w->rate_next >= SUP_RATE_SAMPLES ? w->rate_next % SUP_RATE_SAMPLES : 0;
	uint64_t dt = w->rate_ns[newest] - w->rate_ns[oldest];
	if (!dt)
		return 0;
	return (double)(w->rate_processed[newest] - w->rate_processed[oldest]) * 1e9 / (double)dt;
}

void lc_supervise(struct sup *s, int closing)
{
	if (sup_child)
		reap(s, closing);
	uint64_t now = shm_now_ns();
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		struct sup_worker *w = &s->workers[p];
		if (w->state == WK_BACKOFF && now >= w->restart_at_ns) {
			log_info("starting worker %u again", p);
			lc_spawn(s, p);
		}
	}
	watchdog(s, now);
	sup_handler_swap_step(s);
}

unsigned lc_alive(const struct sup *s)
{
	unsigned n = 0;
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		n += s->workers[p].state == WK_RUNNING || s->workers[p].state == WK_BACKOFF;
	return n;
}

void lc_kill(struct sup *s, unsigned p, const char *why)
{
	struct sup_worker *w = &s->workers[p];
	if (w->state == WK_BACKOFF)
		w->state = w->releasing ? WK_UNOWNED : WK_STOPPED;
	if (w->state != WK_RUNNING || w->pid <= 0) /* never kill(0): our own group */
		return;
	log_warn("worker %u (pid %ld): %s: killing it", p, (long)w->pid, why);
	kill(w->pid, SIGKILL);
}

void lc_fail(struct sup *s, unsigned p, int why)
{
	struct sup_worker *w = &s->workers[p];
	w->fail = (enum sup_fail)why;
	if (w->state == WK_RUNNING) {
		w->fail_on_exit = 1; /* worker_exited marks it failed */
		kill(w->pid, SIGTERM);
	} else if (w->state != WK_FAILED) {
		w->state = WK_FAILED;
		s->failed_partitions++;
	}
}

void lc_kill_all(struct sup *s, const char *why)
{
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		lc_kill(s, p, why);
}

int lc_acquire(struct sup *s, unsigned p)
{
	struct sup_worker *w = &s->workers[p];
	struct shm_worker *st = &s->shm.workers[p];
	if (w->state != WK_UNOWNED)
		return -1;
	/* No process uses the ring now: start it empty, so nothing read
	 * under an earlier assignment is handed to the new worker. */
	if (!ring_init(s->shm.rings[p], s->cfg.ring_size))
		return -1; /* cannot be: it was laid out with the same size */
	s->pending[p] = 0;
	atomic_store(&st->current_seq, SHM_NO_SEQ);
	atomic_store(&st->skip_seq, SHM_NO_SEQ);
	atomic_store(&st->batch_limit, 0);
	atomic_store(&st->good_seq, SHM_NO_SEQ);
	atomic_store(&st->has_applied, 0);
	atomic_store(&st->has_durable, 0);
	atomic_store(&st->durable_pos, 0);
	atomic_store(&st->durable_next, SHM_NO_SEQ);
	atomic_store(&st->restore_pct, 0);
	atomic_store(&st->restoring, 1); /* the worker clears it when it is ready */
	atomic_store(&st->kafka_lost, 0);
	atomic_store(&st->kafka_fenced_by, 0);
	w->backoff_ms = s->cfg.backoff_initial_ms;
	w->poison_deaths = 0;
	w->fails_in_row = 0;
	atomic_store(&st->handler_fails, 0);
	w->releasing = 0;
	sup_barrier_settle(s, p);
	return lc_spawn(s, p);
}

void lc_release(struct sup *s, unsigned p)
{
	struct sup_worker *w = &s->workers[p];
	if (w->state == WK_BACKOFF || w->state == WK_STOPPED) {
		w->state = WK_UNOWNED;
		return;
	}
	if (w->state != WK_RUNNING)
		return;
	w->releasing = 1;
	/* Nothing more comes, and the worker commits the batch in hand and
	 * exits 0 (SIGTERM). Not the whole ring: it may hold seconds of work,
	 * and the group's rebalance waits on us; what is left there is not
	 * committed, so its next owner reads it again from Kafka. */
	ring_close(s->shm.rings[p]);
	kill(w->pid, SIGTERM);
}

int sup_restart_worker(struct sup *s, unsigned p, char *msg, size_t len)
{
	if (p >= s->cfg.partitions) {
		snprintf(msg, len, "no partition %u: there are %u", p, s->cfg.partitions);
		return -1;
	}
	struct sup_worker *w = &s->workers[p];
	if (w->state == WK_FAILED && w->fail == FAIL_SYNC) {
		snprintf(msg, len,
			 "partition %u failed on an fsync: its pages cannot be trusted; fix the "
			 "disk, then restart ringmaster",
			 p);
		return -1;
	}
	if (w->state == WK_FAILED) {
		/* The handler or its tables were fixed (we trust the operator):
		 * resume where it failed, one event at a time at first. */
		w->state = WK_STOPPED;
		if (w->fail == FAIL_DATA_LOSS) {
			/* The Kafka source goes on from the log start
			 * (src_kafka.c), once the worker is ready. */
			w->accept_loss = 1;
			atomic_store(&s->shm.workers[p].restoring, 1);
		}
		w->fail = FAIL_NONE;
		w->fails_in_row = w->poison_deaths = 0;
		atomic_store(&s->shm.workers[p].handler_fails, 0);
		w->backoff_ms = 0;
		s->failed_partitions--;
		sup_barrier_settle(s, p);
		if (lc_spawn(s, p) != 0) {
			snprintf(msg, len, "cannot start worker %u (see the log)", p);
			return -1;
		}
		log_warn("partition %u resumed by restart-worker (worker pid %ld)", p,
			 (long)w->pid);
		if (w->held)
			snprintf(
			    msg, len,
			    "worker %u (pid %ld) resumes partition %u; %llu of its events were "
			    "held back while it failed: they are redone at the next start of "
			    "ringmaster, and until then its new events are held back too",
			    p, (long)w->pid, p, (unsigned long long)w->held);
		else
			snprintf(msg, len, "worker %u (pid %ld) resumes partition %u", p,
				 (long)w->pid, p);
		return 0;
	}
	if (w->state != WK_RUNNING) {
		snprintf(msg, len, "worker %u is not running (%s)", p, sup_wstate_name(w->state));
		return -1;
	}
	/* SIGTERM: the worker finishes its batch, commits and exits 0. */
	w->restart_requested = 1;
	if (kill(w->pid, SIGTERM) != 0) {
		snprintf(msg, len, "cannot signal worker %u: %s", p, strerror(errno));
		return -1;
	}
	snprintf(msg, len, "worker %u (pid %ld) is restarting", p, (long)w->pid);
	return 0;
}

const char *sup_wstate_name(enum sup_wstate st)
{
	switch (st) {
	case WK_RUNNING:
		return "running";
	case WK_BACKOFF:
		return "backoff";
	case WK_STOPPED:
		return "stopped";
	case WK_UNOWNED:
		return "unowned";
	case WK_FAILED:
		return "failed";
	}
	return "?";
}
