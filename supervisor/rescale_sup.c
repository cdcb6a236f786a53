/* rescale_sup.c - recover, check and run a rescale at start (see
 * rescale_sup.h). */
#include "rescale_sup.h"
#include "savepoint.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "durable.h"
#include "log.h"
#include "proto.h"
#include "reload.h"
#include "rescale.h"
#include "ring.h"
#include "shm.h"
#include "store.h"
#include "supervisor.h"

static int state_dir(const struct sup *s, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, "%s/state", s->cfg.data_dir) < size)
		return 0;
	log_error("%s/state: path too long", s->cfg.data_dir);
	return -1;
}

static int recover(struct sup *s)
{
	char err[RESCALE_ERR_LEN];
	enum rescale_recovery what;
	if (rescale_recover(s->cfg.data_dir, &what, err) != 0) {
		log_error("%s; cannot put right an interrupted re-split", err);
		return EX_CANTCREAT;
	}
	if (what == RESCALE_ROLLED_BACK)
		log_warn("%s: a re-split was interrupted before its new state was complete: "
			 "rolled back, the state is the one from before it (start with --rescale "
			 "to re-split again)",
			 s->cfg.data_dir);
	else if (what == RESCALE_FINISHED)
		log_warn("%s: a re-split was interrupted after its new state was durable: "
			 "finished, the state is the re-split one",
			 s->cfg.data_dir);
	return 0;
}

/* Refuse a data_dir whose shards are ahead of its resume position, or one
 * that sync = none left without a clean stop. */
static int stopped_cleanly(struct sup *s, const struct rescale_info *info)
{
	uint64_t wm = 0, dirty = 0;
	int rc = store_meta_get_u64(s->config, "watermark", &wm);
	if (rc && rc != -ENOENT) {
		log_error("%s: cannot read the resume position: %s", s->cfg.data_dir,
			  strerror(-rc));
		return -1;
	}
	store_meta_get_u64(s->config, "dirty_boot", &dirty);
	if (dirty) {
		log_error("--rescale: %s was not stopped cleanly (sync = none, and no clean stop "
			  "recorded): start it once with partitions = %u and stop it with SIGTERM "
			  "(or let the run end), then rescale",
			  s->cfg.data_dir, info->partitions);
		return -1;
	}
	if (info->has_applied && info->max_applied >= wm) {
		log_error("--rescale: %s was not stopped cleanly: partition %u applied events up "
			  "to seq %llu, at or past the recorded resume position %llu (a crash, "
			  "kill -9 or a failed partition left it so). Start it once with "
			  "partitions = %u and let the run end, or stop it with SIGTERM, then "
			  "rescale",
			  s->cfg.data_dir, info->max_applied_p,
			  (unsigned long long)info->max_applied, (unsigned long long)wm,
			  info->partitions);
		return -1;
	}
	return 0;
}

static int rescale(struct sup *s)
{
	const struct cfg *c = &s->cfg;
	char dir[4200], err[RESCALE_ERR_LEN];
	struct rescale_info info;
	if (c->source_type == CFG_SOURCE_KAFKA) {
		log_error("--rescale: with a Kafka source the partition count is the topic's: its "
			  "records stay in the partitions they were written to, so ringmaster "
			  "cannot re-split their state. Keep partitions = the topic's count");
		return EX_CONFIG;
	}
	if (state_dir(s, dir, sizeof(dir)) != 0)
		return EX_CANTCREAT;
	int rc = rescale_inspect(dir, &info, err);
	if (rc == -ENOENT) {
		log_error("--rescale: %s holds no state yet (%s), so there is nothing to re-split: "
			  "start without --rescale",
			  c->data_dir, err);
		return EX_CONFIG;
	}
	if (rc) {
		log_error("--rescale: %s", err);
		return EX_CONFIG;
	}
	/* own_wait_for_orphans looked at the new count's shards only. */
	for (unsigned p = 0; p < info.partitions; p++) {
		char lock[4300];
		snprintf(lock, sizeof(lock), "%s/p%u/owner.lock", dir, p);
		pid_t holder = dur_lock_holder(lock);
		if (holder > 0) {
			log_error("--rescale: worker pid %ld of a previous instance still writes "
				  "partition %u: let it exit, then start again",
				  (long)holder, p);
			return EX_TEMPFAIL;
		}
	}
	if (info.partitions == c->partitions) {
		log_info("--rescale: %s is made for %u partitions already: nothing to re-split",
			 c->data_dir, c->partitions);
		return 0;
	}
	if (stopped_cleanly(s, &info) != 0)
		return EX_CONFIG;
	log_info("rescaling %s from %u to %u partitions (%llu keys)", c->data_dir, info.partitions,
		 c->partitions, (unsigned long long)info.keys);
	rc = rescale_data_dir(c->data_dir, info.partitions, c->partitions, 0, err);
	if (rc) {
		log_error("--rescale: %s; the state is the one from before (%u partitions)", err,
			  info.partitions);
		return rc == -ENOMEM ? EX_OSERR : EX_CANTCREAT;
	}
	return 0;
}

int rsc_prepare(struct sup *s)
{
	int rc = recover(s);
	if (!rc && s->rescale)
		rc = rescale(s);
	return rc;
}

int rsc_layout(struct sup *s)
{
	char dir[4200], err[RESCALE_ERR_LEN];
	struct rescale_info info;
	uint64_t recorded = 0;
	if (state_dir(s, dir, sizeof(dir)) != 0)
		return EX_CANTCREAT;
	if (rescale_inspect(dir, &info, err) != 0) {
		log_error("%s", err);
		return EX_CONFIG;
	}
	s->cfg.output_layout = info.layout;
	if (store_meta_get_u64(s->config, "layout", &recorded) == 0 && recorded == info.layout)
		return 0;
	if (store_meta_put_u64(s->config, "layout", info.layout) != 0) {
		log_error("%s: cannot record the output layout", s->cfg.data_dir);
		return EX_CANTCREAT;
	}
	return 0;
}

/* The cut's request, in one turn of the loop: the source's position then
 * bounds it (nothing is read after), and a stop barrier, its position to be
 * chosen, goes to every partition: each worker reports where it is between
 * two batches and waits (rsc_cut_place). */
static void cut(struct sup *s)
{
	struct src_pos pos = {.next_seq = 0};
	s->cut_ns = shm_now_ns();
	s->src.ops->position(&s->src, &pos);
	s->cut_pos = pos.next_seq;
	s->cut_restarts = 0;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		struct shm_worker *st = &s->shm.workers[p];
		uint64_t v = atomic_load(&st->barrier_what);
		s->cut_restarts += s->workers[p].restarts;
		atomic_store(&st->barrier_pos, SHM_CUT_PENDING);
		atomic_store(&st->barrier_from, v);
		atomic_store(&st->barrier_kind, SHM_BARRIER_STOP);
		/* Not a handler switch: a worker that cannot start is no
		 * switch failure (wrk_main counts them so). */
		atomic_fetch_add(&st->barrier_savepoints, 1);
		atomic_fetch_add_explicit(&st->barrier_id, 1, memory_order_release);
	}
	s->cut = 1;
}

static unsigned restarts(const struct sup *s)
{
	unsigned n = 0;
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		n += s->workers[p].restarts;
	return n;
}

int rsc_cut_ready(struct sup *s)
{
	if (!s->cut || s->cut_placed)
		return 1;
	if (s->failed || s->failed_partitions || restarts(s) != s->cut_restarts ||
	    shm_now_ns() > s->cut_ns + s->cfg.stop_timeout_ms * 1000000u)
		return 1; /* rsc_cut_place gives the cut up */
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct shm_worker *st = &s->shm.workers[p];
		if (atomic_load_explicit(&st->cut_ready, memory_order_acquire) !=
		    atomic_load(&st->barrier_id))
			return 0;
	}
	return 1;
}

/* Give the cut up: every barrier at what its worker acked, so each stops
 * at its next batch boundary (a restarted one at once), and rsc_cut_end
 * abandons the rescale; the watermark is then recorded as at any stop, and
 * the next start redoes what is past it. */
static void cut_give_up(struct sup *s, const char *why)
{
	s->cut_failed = 1;
	snprintf(s->cut_why, sizeof(s->cut_why), "%s", why);
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		atomic_store_explicit(&s->shm.workers[p].barrier_pos,
				      ring_acked_pos(s->shm.rings[p]), memory_order_release);
	log_warn("rescale: the cut is given up: %s; every worker stops at its next batch "
		 "boundary",
		 why);
}

void rsc_cut_place(struct sup *s)
{
	unsigned parts = s->cfg.partitions;
	if (!s->cut || s->cut_placed)
		return;
	s->cut_placed = 1;
	if (s->failed || s->failed_partitions) {
		cut_give_up(s, "the stop was not clean (see above)");
		return;
	}
	if (restarts(s) != s->cut_restarts) {
		cut_give_up(s, "a worker ended during the cut (see above)");
		return;
	}
	/* P: past every event a shard applied and every one the source
	 * dead-lettered, and at an event still in a ring (the earliest such),
	 * else the source's position: every ring then holds its events below
	 * P before its barrier and none after, the source none below P. */
	uint64_t floor = s->dead_next, p_seq = s->cut_pos;
	for (unsigned p = 0; p < parts; p++) {
		const struct shm_worker *st = &s->shm.workers[p];
		if (atomic_load(&st->cut_ready) != atomic_load(&st->barrier_id)) {
			char why[128];
			snprintf(why, sizeof(why),
				 "partition %u did not reach a batch boundary within stop_timeout",
				 p);
			cut_give_up(s, why);
			return;
		}
		uint64_t next = atomic_load(&st->cut_next);
		if (next > floor)
			floor = next;
	}
	for (unsigned p = 0; p < parts; p++) {
		uint64_t pos, seq;
		if (ring_find_seq(s->shm.rings[p], atomic_load(&s->shm.workers[p].cut_committed),
				  floor, &pos, &seq) == 0 &&
		    seq < p_seq)
			p_seq = seq;
	}
	uint64_t left = 0;
	for (unsigned p = 0; p < parts; p++) {
		struct shm_worker *st = &s->shm.workers[p];
		uint64_t pos, seq;
		ring_find_seq(s->shm.rings[p], atomic_load(&st->cut_committed), p_seq, &pos, &seq);
		left += ring_write_pos(s->shm.rings[p]) - pos;
		atomic_store_explicit(&st->barrier_pos, pos, memory_order_release);
	}
	s->cut_pos = p_seq;
	log_info("rescale: cut at seq=%llu, %.3f s after the request: a barrier in every ring, "
		 "%llu bytes of events after them are left to be read again",
		 (unsigned long long)p_seq, (double)(shm_now_ns() - s->cut_ns) / 1e9,
		 (unsigned long long)left);
}

int rsc_request(struct sup *s, unsigned n, struct proto_buf *b)
{
	const struct cfg *c = &s->cfg;
	const char *why = NULL;
	if (c->source_type == CFG_SOURCE_KAFKA)
		why = "with a Kafka source the partition count is the topic's: its records stay in "
		      "the partitions they were written to, so ringmaster cannot re-split their "
		      "state";
	else if (c->source_type == CFG_SOURCE_FILE && strcmp(c->source_path, "-") == 0)
		why = "a stdin source cannot be read again from a position: what was read ahead "
		      "would be lost when ringmaster starts again";
	else if (n == c->partitions)
		why = "the instance runs that many partitions already";
	else if (s->state != SUP_RUNNING || s->rescale_to)
		why = "the instance is not running (starting, reloading, stopping, or rescaling "
		      "already): try again once it runs";
	else if (s->failed_partitions || s->held)
		why = "a partition failed (ringctl workers): its events are held back, so the "
		      "state cannot be cut cleanly; fix it and ringctl restart-worker first";
	else if (s->swap_active)
		why = "a handler swap is going on: try again once every partition runs the new "
		      "version";
	else if (sup_savepoint_active(s))
		why = "a savepoint is being taken: try again once it is written";
	else if (s->replay)
		why = "a replay is being sent (ringctl replay): try again once it is";
	for (unsigned p = 0; !why && c->source_type != CFG_SOURCE_ZMQ && p < c->partitions; p++) {
		const struct shm_worker *st = &s->shm.workers[p];
		/* A barrier's fields hold one barrier: the cut waits for the last. */
		if (atomic_load(&st->barrier_id) != atomic_load(&st->barrier_done))
			why =
			    "a partition has not passed its last barrier yet (a handler switch, or "
			    "a savepoint that failed): try again in a moment";
	}
	if (why) {
		proto_buf_printf(b, "rescale to %u refused: %s\n", n, why);
		return -1;
	}
	s->rescale_to = n;
	if (c->source_type == CFG_SOURCE_ZMQ) {
		/* Its events cannot be read again: the rings are drained. */
		log_info("control: rescale from %u to %u partitions requested: the zmq source "
			 "stops, the workers drain their rings (its events cannot be read again) "
			 "and stop, then the state is re-split and ringmaster starts again",
			 c->partitions, n);
	} else {
		cut(s);
		log_info("control: rescale from %u to %u partitions requested: the source stops "
			 "at seq=%llu, the workers stop at a cut placed where they are, then the "
			 "state is re-split and ringmaster starts again, reading from the cut",
			 c->partitions, n, (unsigned long long)s->cut_pos);
	}
	sup_request_stop(s);
	proto_buf_printf(b,
			 "rescaling from %u to %u partitions: the source pauses, the workers "
			 "%s, the state is re-split, and ringmaster goes on with %u workers "
			 "(the same pid; ringctl status shows partitions %u once it runs); set "
			 "partitions = %u in %s too, or its next start is refused\n",
			 c->partitions, n,
			 s->cut ? "stop at a barrier in their rings" : "drain their rings", n, n, n,
			 c->file ? c->file : "the INI file");
	return 0;
}

int rsc_cut_end(struct sup *s)
{
	char why[512] = "";
	if (s->cut_failed)
		snprintf(why, sizeof(why), "%s", s->cut_why);
	else if (s->failed || s->failed_partitions || s->held)
		snprintf(why, sizeof(why), "the stop was not clean (see above)");
	else if (restarts(s) != s->cut_restarts)
		snprintf(why, sizeof(why), "a worker ended during the cut (see above)");
	for (unsigned p = 0; !why[0] && p < s->cfg.partitions; p++) {
		const struct shm_worker *st = &s->shm.workers[p];
		const struct sup_worker *w = &s->workers[p];
		/* Drained: it had nothing past the cut when its ring closed. */
		if (w->state != WK_STOPPED ||
		    (atomic_load(&st->barrier_done) != atomic_load(&st->barrier_id) &&
		     !ring_drained(s->shm.rings[p])))
			snprintf(why, sizeof(why), "partition %u did not stop at its barrier (%s)",
				 p, w->last_exit[0] ? w->last_exit : sup_wstate_name(w->state));
	}
	if (!why[0] && wm_record_at(s, s->cut_pos) != 0)
		snprintf(why, sizeof(why), "the cut's resume position could not be recorded");
	if (why[0]) {
		s->cut_failed = 1;
		log_error("rescale to %u abandoned: %s, so the state cannot be re-split; the "
			  "instance starts again with %u partitions",
			  s->rescale_to, why, s->cfg.partitions);
		return -1;
	}
	log_info("rescale: every worker stopped at its barrier; the resume position is the cut, "
		 "seq=%llu (%.3f s after the request)",
		 (unsigned long long)s->cut_pos, (double)(shm_now_ns() - s->cut_ns) / 1e9);
	return 0;
}

int rsc_exec(struct sup *s, int status, int argc, char **argv)
{
	char count[64];
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	if (!args) {
		log_error("rescale: out of memory");
		return EX_OSERR;
	}
	int n = 0;
	for (int i = 0; i < argc; i++)
		args[n++] = argv[i];
	if (status == 0 && !s->cut_failed) {
		snprintf(count, sizeof(count), "ringmaster.partitions=%u", s->rescale_to);
		args[n++] = "-o";
		args[n++] = count;
		args[n++] = "--rescale";
		log_info("rescale: the workers stopped cleanly; starting again with %u partitions",
			 s->rescale_to);
	} else if (!s->cut_failed) { /* else rsc_cut_end said why */
		log_error("rescale to %u abandoned: the stop was not clean (see above), so the "
			  "state cannot be re-split; starting again with %u partitions",
			  s->rescale_to, s->cfg.partitions);
	}
	args[n] = NULL;
	execv("/proc/self/exe", args);
	log_error("rescale: cannot start ringmaster again: %s", strerror(errno));
	free(args);
	return EX_OSERR;
}
