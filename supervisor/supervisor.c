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
#include "durable.h"
#include "fdlimit.h"
#include "handler.h"
#include "lifecycle.h"
#include "log.h"
#include "notify.h"
#include "owner.h"
#include "partition.h"
#include "proctitle.h"
#include "reload.h"
#include "safety.h"
#include "store.h"
#include "summary.h"

#define WAIT_SLICE_MS 100

volatile sig_atomic_t sup_stop;
volatile sig_atomic_t sup_child;
volatile sig_atomic_t sup_hup;

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
	for (unsigned p = 0; p < c->partitions; p++) {
		struct store_env *shard;
		rc = store_shard_open(c->data_dir, p, c->partitions, c->map_size,
				      (enum store_sync)c->sync, 0, &shard, err);
		if (rc != 0)
			return store_failed(s, rc, err);
		store_close(shard);
	}
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

static void publish_all(struct sup *s)
{
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		if (s->pending[p]) {
			ring_publish(s->shm.rings[p]);
			s->pending[p] = 0;
		}
	}
	s->since_publish = 0;
}

int sup_dead_letter(struct sup *s, uint64_t seq, const char *reason, const char *line, size_t len)
{
	return sup_dead_letter_cut(s, seq, reason, line, len, len);
}

int sup_dead_letter_cut(struct sup *s, uint64_t seq, const char *reason, const char *line,
			size_t len, uint64_t total)
{
	s->dead_lettered++;
	if (dl_add_cut(&s->dead, seq, reason, line, len, total) != 0) {
		log_error("out of memory for dead letters");
		return -1;
	}
	return 0;
}

/* The ring is full: wait for the worker, publishing first so it has work,
 * and keep an eye on signals and children while waiting. -ENOLINK when the
 * partition failed meanwhile. A Kafka partition that is ours no longer
 * (lost, or its worker fenced) gives -ECANCELED: its worker will not make
 * room, and its next owner reads the event. */
static int wait_for_room(struct sup *s, unsigned p, size_t key_len, size_t payload_len)
{
	struct shm_worker *st = &s->shm.workers[p];
	for (;;) {
		if (s->workers[p].state == WK_FAILED)
			return -ENOLINK;
		if (atomic_load(&st->kafka_lost) || atomic_load(&st->kafka_fenced_by))
			return -ECANCELED;
		publish_all(s);
		int rc = ring_wait_space(s->shm.rings[p], key_len, payload_len, WAIT_SLICE_MS);
		if (rc == 0)
			return 0;
		if (rc == -EMSGSIZE)
			return rc;
		if (sup_tick(s) != 0)
			return -1;
	}
}

int sup_dispatch(struct sup *s, uint64_t seq, const char *key, size_t key_len, const char *payload,
		 size_t payload_len, const char *line, size_t line_len)
{
	return sup_dispatch_to(s, partition_of(key, key_len, s->cfg.partitions), seq, key, key_len,
			       payload, payload_len, line, line_len);
}

/* Not dispatched, because the partition failed: redone at the next start,
 * the watermark stays below it. Once one event of a partition is held, all
 * its later ones are too, or the first would be skipped as applied. */
static int hold(struct sup *s, unsigned p, uint64_t seq)
{
	struct sup_worker *w = &s->workers[p];
	if (!w->held++)
		w->first_held = seq;
	s->held++;
	return 0;
}

int sup_dispatch_to(struct sup *s, unsigned p, uint64_t seq, const char *key, size_t key_len,
		    const char *payload, size_t payload_len, const char *line, size_t line_len)
{
	struct ring *r = s->shm.rings[p];
	struct sup_worker *w = &s->workers[p];
	if (w->held || (w->state == WK_FAILED && w->fail == FAIL_SYNC))
		return hold(s, p, seq);
	int rc = ring_put(r, seq, key, key_len, payload, payload_len);
	if (rc == -EAGAIN) {
		/* A failed handler's ring waits for restart-worker: no room
		 * comes, and the others go on. */
		rc = w->state == WK_FAILED ? -ENOLINK : wait_for_room(s, p, key_len, payload_len);
		if (rc == 0)
			rc = ring_put(r, seq, key, key_len, payload, payload_len);
	}
	if (rc == -ENOLINK)
		return hold(s, p, seq);
	if (rc == -EMSGSIZE)
		return sup_dead_letter(s, seq, "too_long", line, line_len);
	if (rc == -ECANCELED)
		return 0; /* not ours any more: dropped (see wait_for_room) */
	if (rc != 0)
		return -1;
	s->dispatched++;
	s->pending[p]++;
	/* Publish often enough that workers never wait on a half-full ring. */
	if (++s->since_publish >= 256)
		publish_all(s);
	return 0;
}

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
	fprintf(stderr, "\r  %s%12llu events  %8.2f M events/s  %llu dead-lettered   %s", where,
		(unsigned long long)s->lines, rate / 1e6, (unsigned long long)s->dead_lettered,
		final ? "\n" : "");
}

static void housekeeping(struct sup *s, int closing);

/* Dead letters that cannot be written (a full or read-only file system)
 * stop the source: the lines are kept, the failure is logged with the file
 * and the reason every few seconds, the control socket keeps answering, and
 * reading resumes as soon as a write succeeds. The watermark never passes
 * the first unwritten line (wm_record), so a stop here loses nothing. */
static void flush_dead_letters(struct sup *s)
{
	uint64_t next_log = 0;
	while (s->dead.len) {
		int rc = dl_flush(&s->dead, s->dead_fd);
		if (rc == 0) {
			if (s->dead_unsynced == 0)
				s->dead_unsynced = 1; /* wm_record syncs before passing them */
			return;
		}
		uint64_t now = shm_now_ns();
		if (now >= next_log) {
			log_error("%s: cannot write dead letters: %s; not reading the source until "
				  "it can",
				  s->cfg.dead_letter, strerror(-rc));
			next_log = now + 5000000000ull;
		}
		if (sup_stop)
			return;
		housekeeping(s, 0);
		if (s->control)
			control_poll(s, 250);
		else
			usleep(250000);
	}
}

/* The watermark is recorded four times a second: a restart redoes at most
 * that much of the source (the workers skip what they applied anyway). */
#define WATERMARK_EVERY_NS 250000000ull

static void housekeeping(struct sup *s, int closing)
{
	lc_supervise(s, closing);
	uint64_t now = shm_now_ns();
	if (now >= s->next_watermark_ns) {
		wm_record(s);
		s->next_watermark_ns = now + WATERMARK_EVERY_NS;
	}
	if (sup_hup) {
		char msg[8192];
		sup_hup = 0;
		sup_reload(s, msg, sizeof(msg));
	}
}

int sup_tick(struct sup *s)
{
	publish_all(s);
	flush_dead_letters(s);
	housekeeping(s, 0);
	if (s->control)
		control_poll(s, 0);
	if (s->progress) {
		uint64_t now = shm_now_ns();
		if (now >= s->next_progress_ns) {
			show_progress(s, now, 0);
			s->next_progress_ns = now + 250000000u;
		}
	}
	return sup_stop || s->failed ? -1 : 0;
}

int sup_idle(struct sup *s, int timeout_ms)
{
	publish_all(s);
	if (s->control) {
		control_poll(s, timeout_ms);
	} else {
		struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	return sup_tick(s);
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

/* Close every ring and wait for the workers to drain, commit and exit,
 * restarting any that die meanwhile. A second SIGINT/SIGTERM (a second
 * request: see on_stop), or stop_timeout after a stop request, ends the
 * wait with SIGKILL. */
static void stop_workers(struct sup *s)
{
	int stops_seen = sup_stop;
	uint64_t deadline = shm_now_ns() + s->cfg.stop_timeout_ms * 1000000u;
	s->state = SUP_STOPPING;
	notify_send("STOPPING=1\nSTATUS=draining the workers");
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		ring_close(s->shm.rings[p]);
	while (lc_alive(s)) {
		housekeeping(s, 1);
		if (s->control)
			control_poll(s, 20);
		else
			usleep(20000);
		int again = sup_stop > stops_seen && sup_stop > 1;
		if (again || (sup_stop && shm_now_ns() > deadline)) {
			lc_kill_all(s, again ? "stop requested twice"
					     : "did not stop within stop_timeout");
			s->failed = 1;
			deadline = UINT64_MAX;
			stops_seen = sup_stop;
		}
	}
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

static int start(struct sup *s)
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
	if (lock_pid_file(s) != 0 || own_lock_data_dir(s) != 0)
		return EX_CANTCREAT;
	if (own_wait_for_orphans(s) != 0)
		return sup_stop ? EX_TEMPFAIL : EX_CANTCREAT;
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
	/* Before the workers: a file that is not the one this data_dir read
	 * is refused with nothing processed. */
	if (c->source_type == CFG_SOURCE_FILE && (rc = src_file_open(s)) != 0)
		return rc;
	rc = shm_create(&s->shm, c->partitions, c->ring_size);
	s->workers = calloc(c->partitions, sizeof(*s->workers));
	s->pending = calloc(c->partitions, sizeof(*s->pending));
	if (rc != 0 || !s->workers || !s->pending) {
		log_error("cannot map %u rings of %llu bytes: %s", c->partitions,
			  (unsigned long long)c->ring_size, strerror(rc ? -rc : ENOMEM));
		return EX_OSERR;
	}
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
	s->state = SUP_RUNNING;
	notify_send("READY=1\nSTATUS=running, %u workers\nMAINPID=%ld", c->partitions,
		    (long)getpid());
	log_info("started partitions=%u handler=%s source=%s", c->partitions, c->handler,
		 c->source_type == CFG_SOURCE_FILE    ? c->source_path
		 : c->source_type == CFG_SOURCE_KAFKA ? c->kafka_topic
		 : c->source_type == CFG_SOURCE_ZMQ   ? c->zmq_bind
						      : "generate");
	return 0;
}

static void cleanup(struct sup *s)
{
	fs_stop(&s->forksrv);
	if (s->control)
		control_close(s);
	src_file_close(s);
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
	shm_destroy(&s->shm);
	free(s->workers);
	free(s->pending);
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
	int rc;
	switch (s->cfg.source_type) {
	case CFG_SOURCE_FILE:
		rc = src_file_run(s);
		break;
	case CFG_SOURCE_GENERATE:
		rc = src_generate_run(s);
		break;
	case CFG_SOURCE_ZMQ:
		rc = src_zmq_run(s);
		break;
	case CFG_SOURCE_KAFKA:
		rc = src_kafka_run(s);
		break;
	default:
		log_error("this source type is not available in this version");
		rc = -1;
	}
	publish_all(s);
	flush_dead_letters(s);
	if (s->progress)
		show_progress(s, shm_now_ns(), 1);
	if (sup_stop)
		log_info("stopping: letting the workers drain their rings and commit");
	stop_workers(s);
	flush_dead_letters(s);
	wm_record(s);
	/* rc > 0: stopped cleanly, but with an exit status to tell (75: Kafka
	 * offsets not committed). */
	int bad = rc < 0 || s->failed || s->failed_partitions || s->held;
	status = bad ? 1 : rc;
	if (s->exit_status)
		status = s->exit_status;
	if (!bad && !s->exit_status)
		own_clean_exit(s);
	summary_report(s, shm_now_ns());
	cleanup(s);
	return status;
}
