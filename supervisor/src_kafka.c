/* src_kafka.c - the Kafka source: the supervisor is a member of the
 * consumer group [source] group on [source] topic, and keeps one worker per
 * partition the group assigns it.
 *
 * An event's seq is its offset in its partition, and it goes to the worker
 * of the partition it was read from (sup_dispatch), whatever its key
 * hashes to: offsets of two partitions must never meet in one shard.
 * Producers that use Kafka's default partitioner (murmur2) put a key where
 * ringmaster's partitioner would anyway; a key that is elsewhere is warned
 * about once per partition.
 *
 * Assignment. The partitions are assigned paused, at the group's committed
 * offset, and each gets its worker (sup_part_acquire), which first rebuilds its
 * shard from the changelog if the shard is missing or behind it (see
 * worker/changelog.h), then says in shared memory that it is ready and what
 * it has applied. Only then is the partition sought to the later of the
 * shard's applied_seq + 1 and the committed offset, and resumed.
 *
 * Revocation. The partitions' rings are closed and their workers commit
 * the batch in hand and exit (sup_part_release); we wait for that inside the
 * rebalance callback, so the group gives them to no one else meanwhile (up
 * to stop_timeout, then the workers are killed). What they had not
 * committed, in their rings or not yet read, their next owner reads from
 * Kafka. Then the partitions' offsets are committed and they are
 * unassigned.
 *
 * Fencing. An assignment is made under a group generation, which the
 * worker gets in shared memory and writes on everything it puts in the
 * changelog (worker/changelog.h: a later owner's fence makes whatever an
 * earlier one still writes void). When librdkafka says the assignment was
 * lost (the session expired: the group may have handed the partitions on
 * already, without waiting for us), the workers are told (kafka_lost) and
 * stop without committing, and nothing is committed for them. A worker
 * that finds itself fenced (kafka_fenced_by) first is not restarted, and
 * its partition is paused and no longer stored, until the group takes it.
 *
 * Offsets. enable.auto.offset.store is off: the offset stored for a
 * partition is the seq of the oldest record its worker has not acked (acks
 * come after commits), or, with its ring empty, the offset after the last
 * message read. So Kafka's committed offsets, and lag tools, never run ahead
 * of what the shards hold. librdkafka commits the stored offsets every
 * auto.commit.interval.ms; a revocation commits at once.
 *
 * A message with a key is the event (key, value); one without is a line,
 * key<delimiter>payload, as the file source reads them.
 *
 * Stopping. Everything a stop does (the workers' release, the commit,
 * leaving the group) shares one deadline, stop_timeout from the stop
 * request; then the client is destroyed without further talk to the
 * brokers, in a thread given STOP_GRACE_MS more, and left behind if even
 * that hangs (brokers gone: librdkafka's threads may wait on sockets that
 * never answer). Offsets whose commit did not succeed are logged; when the
 * brokers did not answer at all the exit status is 75 (EX_TEMPFAIL).
 * Nothing is lost: the next owner of those partitions reads them again
 * from the last committed offsets and this instance's shards skip what
 * they applied.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "cfg.h"
#include "kafka.h"
#include "log.h"
#include "partition.h"
#include "ring.h"
#include "shm.h"
#include "source.h"

#define POLL_MS 10
#define STORE_EVERY_NS 100000000ull
#define BROKER_TIMEOUT_MS 10000
#define RELEASE_POLL_MS 20
#define STOP_GRACE_MS 3000
#define WATERMARK_TIMEOUT_MS 2000
/* A cluster answers these at once; librdkafka's mock never does (it has no
 * controller), and a start should not wait long on it: the check of an
 * existing changelog, at every start, gets 1 s (and only a warning if it
 * gets no answer); creating it, once, 5 s. */
#define CREATE_TIMEOUT_MS 5000
#define DESCRIBE_TIMEOUT_MS 1000

/* KP_FENCED: the worker found another owner's fence: read nothing more. */
enum kpart_phase { KP_UNOWNED, KP_RESTORING, KP_FEEDING, KP_FENCED };

struct kpart {
	enum kpart_phase phase;
	int32_t generation; /* of the group, when it was assigned */
	int64_t start;	    /* where it was assigned: committed or logical */
	int64_t committed;  /* the group's committed offset then, -1 if none */
	int64_t next;	    /* the offset after the last message taken, -1 */
	int64_t stored;	    /* the last offset stored, -1 */
	int warned;	    /* a key from another partition was seen */
	/* The revocation's commit: asked, confirmed by the commit callback,
	 * or the error it got. */
	int64_t commit_asked, commit_done;
	rd_kafka_resp_err_t commit_err;
};

struct ksrc {
	struct source *src;
	const struct cfg *cfg; /* the running configuration */
	struct sup *s;	       /* the host */
	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;  /* the consumer queue, which wakes `wake` */
	int wake[2];		  /* a pipe: readable when messages came */
	rd_kafka_message_t *held; /* read, not handed over: its ring was full */
	struct kpart *parts;	  /* [partitions] */
	struct src_joined joined; /* key<delimiter>value of a keyed message */
	uint64_t next_store_ns;
	uint64_t stop_by; /* the stop's deadline, 0 until a stop */
	int failed;
	int left_behind; /* the client hung in its destruction: do not free */
};

/* A client being destroyed in a thread of its own; freed by that thread,
 * or never if it hangs (the process exits without it). */
struct kdestroy {
	rd_kafka_t *rk;
	int done; /* __atomic */
};

static const char *partition_list(const rd_kafka_topic_partition_list_t *l, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (int i = 0; i < l->cnt && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%d", i ? "," : "",
					 l->elems[i].partition);
	return buf;
}

/* Has partition p's worker found itself fenced? Then the partition is
 * ours no longer, whatever librdkafka says yet: stop reading it and never
 * store an offset for it again. Returns 1 when it is fenced. */
static int ksrc_fenced(struct ksrc *k, unsigned p)
{
	struct kpart *kp = &k->parts[p];
	int64_t by = atomic_load(&k->src->shm->workers[p].kafka_fenced_by);
	if (kp->phase == KP_FENCED)
		return 1;
	if (!by || (kp->phase != KP_RESTORING && kp->phase != KP_FEEDING))
		return 0;
	kp->phase = KP_FENCED;
	log_warn("kafka: partition %u: fenced: another instance wrote generation %lld to its "
		 "changelog, newer than ours (%d): it owns the partition now; not reading it "
		 "until the group takes it from this instance (if this lasts, the group was "
		 "deleted and made again, which starts generations over: see ringmaster.ini(5))",
		 p, (long long)by, (int)kp->generation);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, k->cfg->kafka_topic, (int32_t)p);
	rd_kafka_resp_err_t e = rd_kafka_pause_partitions(k->rk, l);
	if (e)
		log_warn("kafka: cannot pause partition %u: %s", p, rd_kafka_err2str(e));
	rd_kafka_topic_partition_list_destroy(l);
	return 1;
}

/* The offset below which partition p's events are all committed by its
 * worker and on disk (its last sync covered them), or -1 when nothing is
 * known yet. */
static int64_t ksrc_done_offset(struct ksrc *k, unsigned p)
{
	struct shm_worker *st = &k->src->shm->workers[p];
	struct ring *r = k->src->shm->rings[p];
	uint64_t oldest;
	int64_t done;
	if (ring_oldest_seq(r, &oldest) == 0)
		done = (int64_t)oldest;
	else if (sup_dead_pending(k->s))
		return -1; /* source-side dead letters not on disk yet */
	else
		done = k->parts[p].next;
	if (atomic_load(&st->durable_pos) >= ring_write_pos(r))
		return done; /* everything it was given is durable */
	if (!atomic_load(&st->has_durable))
		return -1;
	int64_t durable = (int64_t)atomic_load(&st->durable_seq) + 1;
	return durable < done ? durable : done;
}

/* Store the offsets of the feeding partitions that moved on. */
static void ksrc_store(struct ksrc *k)
{
	const char *topic = k->cfg->kafka_topic;
	rd_kafka_topic_partition_list_t *todo = rd_kafka_topic_partition_list_new(4);
	for (unsigned p = 0; p < k->cfg->partitions; p++) {
		struct kpart *kp = &k->parts[p];
		if (kp->phase != KP_FEEDING || ksrc_fenced(k, p))
			continue;
		int64_t done = ksrc_done_offset(k, p);
		if (done < 0 || done <= kp->stored)
			continue;
		rd_kafka_topic_partition_list_add(todo, topic, (int32_t)p)->offset = done;
		kp->stored = done;
	}
	if (todo->cnt) {
		rd_kafka_resp_err_t e = rd_kafka_offsets_store(k->rk, todo);
		if (e)
			log_warn("kafka: cannot store offsets: %s", rd_kafka_err2str(e));
	}
	rd_kafka_topic_partition_list_destroy(todo);
}

/* Where a partition without a committed offset starts: auto.offset.reset
 * (ringmaster's default: earliest). */
static int64_t ksrc_reset_offset(struct ksrc *k)
{
	char v[32];
	size_t len = sizeof(v);
	if (rd_kafka_conf_get(rd_kafka_conf(k->rk), "auto.offset.reset", v, &len) !=
	    RD_KAFKA_CONF_OK)
		return RD_KAFKA_OFFSET_BEGINNING;
	if (!strcmp(v, "latest") || !strcmp(v, "largest") || !strcmp(v, "end"))
		return RD_KAFKA_OFFSET_END;
	if (!strcmp(v, "error"))
		return RD_KAFKA_OFFSET_INVALID;
	return RD_KAFKA_OFFSET_BEGINNING;
}

/* The committed offsets of `l`, asked from the group coordinator, into
 * l's offsets (RD_KAFKA_OFFSET_INVALID where there is none). */
static void ksrc_committed(struct ksrc *k, rd_kafka_topic_partition_list_t *l)
{
	rd_kafka_resp_err_t e = rd_kafka_committed(k->rk, l, BROKER_TIMEOUT_MS);
	if (e) {
		log_warn("kafka: cannot read the group's committed offsets (%s): starting from "
			 "the shards' positions or auto.offset.reset",
			 rd_kafka_err2str(e));
		for (int i = 0; i < l->cnt; i++)
			l->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
	}
}

static void ksrc_assign(struct ksrc *k, rd_kafka_topic_partition_list_t *parts, int coop)
{
	const struct cfg *c = k->cfg;
	char names[512], why[KAFKA_ERR_LEN];
	int32_t generation;
	rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_copy(parts);
	if (kafka_group_generation(k->rk, &generation, why) != 0) {
		log_error("kafka: cannot take the assignment: %s", why);
		k->failed = 1;
		goto out;
	}
	ksrc_committed(k, at);
	for (int i = 0; i < at->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &at->elems[i];
		if (tp->partition < 0 || (unsigned)tp->partition >= c->partitions) {
			log_error("kafka: assigned partition %d of %s, but partitions = %u: the "
				  "topic has grown; restart with partitions = its count",
				  tp->partition, tp->topic, k->cfg->partitions);
			k->failed = 1;
			goto out;
		}
		struct kpart *kp = &k->parts[tp->partition];
		int64_t committed = tp->offset >= 0 ? tp->offset : -1;
		if (tp->offset < 0)
			tp->offset = ksrc_reset_offset(k);
		*kp = (struct kpart){.phase = KP_RESTORING,
				     .start = tp->offset,
				     .committed = committed,
				     .next = -1,
				     .stored = -1,
				     .commit_asked = -1,
				     .commit_done = -1,
				     .warned = kp->warned};
		kp->generation = generation;
		atomic_store(&k->src->shm->workers[tp->partition].kafka_generation, generation);
	}
	rd_kafka_error_t *err = coop ? rd_kafka_incremental_assign(k->rk, at) : NULL;
	rd_kafka_resp_err_t e = coop ? 0 : rd_kafka_assign(k->rk, at);
	if (err || e) {
		log_error("kafka: cannot take the assignment: %s",
			  err ? rd_kafka_error_string(err) : rd_kafka_err2str(e));
		if (err)
			rd_kafka_error_destroy(err);
		k->failed = 1;
		goto out;
	}
	/* Nothing is read until the worker is ready and says where to start
	 * (should the pause fail, what comes meanwhile is dropped, and read
	 * again after the seek). */
	if ((e = rd_kafka_pause_partitions(k->rk, at)) != 0)
		log_warn("kafka: cannot pause the new partitions: %s", rd_kafka_err2str(e));
	for (int i = 0; i < at->cnt; i++)
		sup_part_acquire(k->s,
				 (unsigned)at->elems[i].partition); /* a failed fork is retried */
	log_info("kafka: assigned partitions %s of %s (group generation %d)",
		 partition_list(at, names, sizeof(names)), k->cfg->kafka_topic, (int)generation);
out:
	rd_kafka_topic_partition_list_destroy(at);
}

static int ksrc_releasing(const struct ksrc *k, const rd_kafka_topic_partition_list_t *parts)
{
	for (int i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		if (p >= 0 && (unsigned)p < k->cfg->partitions && sup_part_owned(k->s, (unsigned)p))
			return 1;
	}
	return 0;
}

/* Wait for the workers of `parts` to drain, commit and exit, inside the
 * rebalance callback (the group must not hand the partitions on before):
 * the one nested wait, serving the control socket meanwhile; they are
 * killed after stop_timeout or a second stop request. */
static void ksrc_wait_released(struct ksrc *k, const rd_kafka_topic_partition_list_t *parts)
{
	uint64_t deadline = shm_now_ns() + k->cfg->stop_timeout_ms * 1000000u;
	if (k->stop_by && k->stop_by < deadline)
		deadline = k->stop_by; /* one deadline for the whole stop */
	while (ksrc_releasing(k, parts)) {
		sup_wait_nested(k->s, RELEASE_POLL_MS);
		if (sup_stopping() > 1 || shm_now_ns() > deadline) {
			for (int i = 0; i < parts->cnt; i++)
				sup_part_kill(k->s, (unsigned)parts->elems[i].partition,
					      sup_stopping() > 1 ? "stop requested twice"
								 : "did not release its partition "
								   "within stop_timeout");
			deadline = UINT64_MAX;
		}
	}
}

static void ksrc_commit(struct ksrc *k, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts->cnt);
	for (int i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		if (p < 0 || (unsigned)p >= k->cfg->partitions || ksrc_fenced(k, (unsigned)p))
			continue; /* its ring holds what nobody processed */
		struct kpart *kp = &k->parts[p];
		int64_t done = ksrc_done_offset(k, (unsigned)p);
		if (done < kp->stored)
			done = kp->stored;
		if (done >= 0) {
			rd_kafka_topic_partition_list_add(l, parts->elems[i].topic, p)->offset =
			    done;
			kp->commit_asked = done;
			kp->commit_err = RD_KAFKA_RESP_ERR_NO_ERROR;
		}
	}
	/* Asynchronous: the group waits for it before it goes on, and a
	 * cluster that is gone cannot hold the stop. A commit that fails
	 * (librdkafka logs it) costs nothing but re-reading: the next owner
	 * starts from its shard or the changelog, whichever is further. */
	if (l->cnt) {
		rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, l, 1);
		if (e)
			log_warn("kafka: cannot commit the offsets of the revoked partitions: %s",
				 rd_kafka_err2str(e));
	}
	rd_kafka_topic_partition_list_destroy(l);
}

static void ksrc_revoke(struct ksrc *k, rd_kafka_topic_partition_list_t *parts, int coop)
{
	char names[512];
	int lost = rd_kafka_assignment_lost(k->rk);
	partition_list(parts, names, sizeof(names));
	if (lost)
		log_warn("kafka: partitions %s lost: this instance's group membership expired, "
			 "and the group may have given them to another instance already: their "
			 "workers stop without committing",
			 names);
	else
		log_info("kafka: partitions %s revoked: letting their workers drain and commit",
			 names);
	for (int i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		if (p < 0 || (unsigned)p >= k->cfg->partitions || k->parts[p].phase == KP_UNOWNED)
			continue;
		if (lost)
			atomic_store(&k->src->shm->workers[p].kafka_lost, 1);
		sup_part_release(k->s, (unsigned)p);
	}
	ksrc_wait_released(k, parts);
	if (!lost)
		ksrc_commit(k, parts);
	for (int i = 0; i < parts->cnt; i++) {
		int32_t p = parts->elems[i].partition;
		if (p >= 0 && (unsigned)p < k->cfg->partitions)
			k->parts[p].phase = KP_UNOWNED;
	}
	rd_kafka_error_t *err = coop ? rd_kafka_incremental_unassign(k->rk, parts) : NULL;
	rd_kafka_resp_err_t e = coop ? 0 : rd_kafka_assign(k->rk, NULL);
	if (err || e) {
		log_error("kafka: cannot give partitions %s up: %s", names,
			  err ? rd_kafka_error_string(err) : rd_kafka_err2str(e));
		if (err)
			rd_kafka_error_destroy(err);
	}
	log_info("kafka: partitions %s released", names);
}

static void ksrc_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			   rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct ksrc *k = opaque;
	const char *proto = rd_kafka_rebalance_protocol(rk);
	int coop = proto && strcmp(proto, "COOPERATIVE") == 0;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		ksrc_assign(k, parts, coop);
	} else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
		ksrc_revoke(k, parts, coop);
	} else {
		log_error("kafka: rebalance failed: %s", rd_kafka_err2str(err));
		ksrc_revoke(k, parts, coop);
	}
}

static const char *offset_name(int64_t at, char *buf, size_t len)
{
	if (at == RD_KAFKA_OFFSET_BEGINNING)
		return "beginning";
	if (at == RD_KAFKA_OFFSET_END)
		return "end";
	snprintf(buf, len, "%lld", (long long)at);
	return buf;
}

/* Is partition p's resume position `*at` below its log start? Then Kafka
 * deleted (retention) events this group never processed: say so, count
 * them, and fail the partition (returns 1), unless on_data_loss = continue
 * or restart-worker accepted the loss: then *at becomes the log start.
 * A logical *at (no position: a new group) starts at the log start, and
 * that is said too. Returns -1 when the log start cannot be read (try
 * again later), else 0. */
static int ksrc_check_loss(struct ksrc *k, unsigned p, int64_t *at)
{
	int64_t low, high;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
	    k->rk, k->cfg->kafka_topic, (int32_t)p, &low, &high, WATERMARK_TIMEOUT_MS);
	if (e) {
		log_warn("kafka: partition %u: cannot read its log start (%s): trying again", p,
			 rd_kafka_err2str(e));
		return -1;
	}
	if (*at == RD_KAFKA_OFFSET_BEGINNING) {
		log_info("kafka: partition %u: no committed offset and nothing applied: starting "
			 "at its log start, offset %lld (auto.offset.reset = earliest)",
			 p, (long long)low);
		return 0;
	}
	if (*at < 0 || *at >= low)
		return 0;
	uint64_t lost = (uint64_t)(low - *at);
	int accepted = sup_part_lost(k->s, p, lost);
	log_error("kafka: partition %u: offsets %lld..%lld were deleted by the topic's retention "
		  "before this group processed them: %llu events lost",
		  p, (long long)*at, (long long)(low - 1), (unsigned long long)lost);
	if (accepted || k->cfg->on_data_loss == CFG_DATA_LOSS_CONTINUE) {
		log_warn("kafka: partition %u: going on from its log start, offset %lld (%s)", p,
			 (long long)low,
			 accepted ? "ringctl restart-worker accepted the loss"
				  : "[source] on_data_loss = continue");
		*at = low;
		return 0;
	}
	log_error("kafka: partition %u failed: not reading it ([source] on_data_loss = stop); "
		  "the other partitions go on. To accept the loss and go on from offset %lld: "
		  "ringctl restart-worker %u",
		  p, (long long)low, p);
	sup_part_fail_data_loss(k->s, p);
	return 1;
}

/* Start the partitions whose workers are ready: seek each to the later of
 * its shard's applied_seq + 1 and the group's committed offset (or where it
 * was assigned when neither is known), after ksrc_check_loss, and resume
 * it. */
static void ksrc_start_ready(struct ksrc *k)
{
	for (unsigned p = 0; p < k->cfg->partitions; p++) {
		struct kpart *kp = &k->parts[p];
		struct shm_worker *st = &k->src->shm->workers[p];
		if (kp->phase != KP_RESTORING || !sup_part_running(k->s, p) ||
		    atomic_load(&st->restoring))
			continue;
		int64_t at = kp->committed;
		if (atomic_load(&st->has_applied) &&
		    (int64_t)atomic_load(&st->applied_seq) + 1 > at)
			at = (int64_t)atomic_load(&st->applied_seq) + 1;
		if (at < 0)
			at = kp->start;
		if (ksrc_check_loss(k, p, &at) != 0)
			continue; /* failed, or try again at the next tick */
		char name[24];
		rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(l, k->cfg->kafka_topic, (int32_t)p)->offset = at;
		rd_kafka_error_t *err = rd_kafka_seek_partitions(k->rk, l, BROKER_TIMEOUT_MS);
		if (!err && l->elems[0].err == 0 && rd_kafka_resume_partitions(k->rk, l) == 0 &&
		    l->elems[0].err == 0) {
			kp->phase = KP_FEEDING;
			kp->next = at >= 0 ? at : -1;
			log_info("kafka: partition %u: reading from offset %s", p,
				 offset_name(at, name, sizeof(name)));
		} else {
			log_warn("kafka: partition %u: cannot seek to offset %s (%s): trying again",
				 p, offset_name(at, name, sizeof(name)),
				 err ? rd_kafka_error_string(err)
				     : rd_kafka_err2str(l->elems[0].err));
		}
		if (err)
			rd_kafka_error_destroy(err);
		rd_kafka_topic_partition_list_destroy(l);
	}
}

static void ksrc_check_route(struct ksrc *k, unsigned p, const char *key, size_t key_len)
{
	unsigned want = partition_of(key, key_len, k->cfg->partitions);
	if (want == p || k->parts[p].warned)
		return;
	k->parts[p].warned = 1;
	log_warn("kafka: partition %u holds key %.*s, which murmur2 puts in partition %u: the "
		 "producer does not use Kafka's default partitioner. Its events are processed "
		 "with the state of the partition they are in",
		 p, (int)(key_len > 64 ? 64 : key_len), key, want);
}

/* Hand a message over: 0, -EAGAIN when its ring is full (nothing taken),
 * -1 when the run must stop. */
static int ksrc_message(struct ksrc *k, rd_kafka_message_t *m)
{
	if (m->err) {
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			return 0;
		log_warn("kafka: %s", rd_kafka_message_errstr(m));
		return m->err == RD_KAFKA_RESP_ERR__FATAL ? -1 : 0;
	}
	int32_t p = m->partition;
	if (p < 0 || (unsigned)p >= k->cfg->partitions)
		return 0; /* never assigned: see ksrc_assign */
	struct kpart *kp = &k->parts[p];
	/* Not started yet (the seek reads it again), read twice, or no longer
	 * ours (fenced). */
	if (kp->phase != KP_FEEDING || (kp->next >= 0 && m->offset < kp->next) ||
	    ksrc_fenced(k, (unsigned)p))
		return 0;
	const char *val = m->payload ? m->payload : "";
	size_t len = m->payload ? m->len : 0;
	int rc;
	if (m->key) {
		ksrc_check_route(k, (unsigned)p, m->key, m->key_len);
		rc = src_pair(k->src, &k->joined, p, (uint64_t)m->offset, m->key, m->key_len, val,
			      len);
	} else {
		if (len && val[len - 1] == '\n')
			len--;
		const char *tab = memchr(val, k->cfg->delimiter, len);
		if (tab && tab > val)
			ksrc_check_route(k, (unsigned)p, val, (size_t)(tab - val));
		size_t whole = len;
		if (len > src_line_limit(k->src))
			len = src_line_limit(k->src);
		rc = src_line(k->src, p, (uint64_t)m->offset, val, len, whole);
	}
	if (rc == 0)
		kp->next = m->offset + 1;
	return rc;
}

/* `topic` must have exactly `want` partitions. */
static int ksrc_check_topic(struct ksrc *k, const char *topic, const char *what, int want)
{
	char err[KAFKA_ERR_LEN];
	int n;
	int rc = kafka_partition_count(k->rk, topic, BROKER_TIMEOUT_MS, &n, err);
	if (rc == -ENOENT) {
		log_error("%s topic %s does not exist: create it with %d partitions", what, topic,
			  want);
		return -1;
	}
	if (rc != 0) {
		log_error("%s: [source] brokers = %s: %s", cfg_origin(k->cfg, "source", "brokers"),
			  k->cfg->kafka_brokers, err);
		return -1;
	}
	if (n != want) {
		log_error("%s topic %s has %d partitions, and [ringmaster] partitions = %d: they "
			  "must be equal (one worker per Kafka partition)",
			  what, topic, n, want);
		return -1;
	}
	return 0;
}

/* The result of a commit (librdkafka's offset commit callback). */
static void ksrc_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			   rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	struct ksrc *k = opaque;
	(void)rk;
	for (int i = 0; offsets && i < offsets->cnt; i++) {
		const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
		if (tp->partition < 0 || (unsigned)tp->partition >= k->cfg->partitions)
			continue;
		struct kpart *kp = &k->parts[tp->partition];
		rd_kafka_resp_err_t e = err ? err : tp->err;
		if (e)
			kp->commit_err = e;
		else if (tp->offset > kp->commit_done)
			kp->commit_done = tp->offset;
	}
}

/* The changelog topic must keep every record until ringmaster's restore
 * has read it: created here as Kafka Streams creates its internal topics,
 * or checked when it exists. A cluster that implements neither request
 * (librdkafka's mock) gets a warning, and the topic is used as it is. */
static int ksrc_changelog(struct ksrc *k, const char *topic, int want)
{
	static const char *const settings[] = {"cleanup.policy", "delete", "retention.ms", "-1",
					       NULL};
	char err[KAFKA_ERR_LEN], value[64];
	int n, rc = kafka_partition_count(k->rk, topic, BROKER_TIMEOUT_MS, &n, err);
	if (rc == 0)
		rc = -EEXIST;
	else if (rc == -ENOENT)
		rc = kafka_create_topic(k->rk, topic, want, settings, CREATE_TIMEOUT_MS, err);
	else
		return ksrc_check_topic(k, topic, "the changelog", want); /* says why */
	if (rc == 0) {
		log_info("kafka: created the changelog topic %s: %d partitions, "
			 "cleanup.policy=delete, retention.ms=-1",
			 topic, want);
		/* A new topic takes a moment to show in the metadata. */
		uint64_t until = shm_now_ns() + BROKER_TIMEOUT_MS * 1000000ull;
		while (kafka_partition_count(k->rk, topic, BROKER_TIMEOUT_MS, &n, err) == -ENOENT &&
		       shm_now_ns() < until && !sup_stopping())
			usleep(100000);
	} else if (rc == -ENOTSUP || rc == -ETIMEDOUT) {
		/* librdkafka's mock cluster has no controller: its CreateTopics
		 * times out "waiting for controller". */
		log_warn("kafka: the cluster cannot create topics (%s): using the changelog topic "
			 "%s as it is (it must have %d partitions, cleanup.policy=delete and "
			 "retention.ms=-1)",
			 err, topic, want);
	} else if (rc != -EEXIST) {
		log_error("kafka: cannot create the changelog topic %s: %s", topic, err);
		return -1;
	}
	if (ksrc_check_topic(k, topic, "the changelog", want) != 0)
		return -1;
	if (rc != -EEXIST)
		return 0;
	for (size_t i = 0; settings[i]; i += 2) {
		int r = kafka_topic_config(k->rk, topic, settings[i], value, sizeof(value),
					   DESCRIBE_TIMEOUT_MS, err);
		if (r == -ENOTSUP || r == -ETIMEDOUT) {
			log_warn(
			    "kafka: the cluster cannot describe topics (%s): the changelog topic "
			    "%s is used as it is; it must have cleanup.policy=delete and "
			    "retention.ms=-1",
			    err, topic);
			return 0;
		}
		if (r != 0) {
			log_error("kafka: cannot read the settings of the changelog topic %s: %s",
				  topic, err);
			return -1;
		}
		if (strcmp(value, settings[i + 1]) != 0) {
			log_error(
			    "kafka: the changelog topic %s has %s=%s, not %s: a restore could "
			    "miss records it deleted; change it (kafka-configs --alter "
			    "--entity-type topics --entity-name %s --add-config %s=%s) or use "
			    "another [source] group",
			    topic, settings[i], value, settings[i + 1], topic, settings[i],
			    settings[i + 1]);
			return -1;
		}
	}
	return 0;
}

static int ksrc_open(struct ksrc *k)
{
	char err[KAFKA_ERR_LEN], changelog[512];
	if (kafka_generation_check(err) != 0) {
		log_error("%s", err);
		return -1;
	}
	const char *defaults[] = {"auto.offset.reset", "earliest", "client.id", k->cfg->name, NULL};
	const char *forced[] = {"group.id", k->cfg->kafka_group,    "enable.auto.offset.store",
				"false",    "enable.partition.eof", "false",
				NULL};
	if (kafka_changelog_topic(k->cfg, changelog, sizeof(changelog)) != 0) {
		log_error("%s: [source] group = %s: the changelog topic's name is too long",
			  cfg_origin(k->cfg, "source", "group"), k->cfg->kafka_group);
		return -1;
	}
	const struct kafka_hooks hooks = {
	    .opaque = k, .rebalance = ksrc_rebalance, .committed = ksrc_commit_cb};
	k->rk = kafka_client_new(RD_KAFKA_CONSUMER, k->cfg, defaults, forced, &hooks, err,
				 "cannot create the kafka consumer");
	if (!k->rk) {
		log_error("%s", err);
		return -1;
	}
	rd_kafka_poll_set_consumer(k->rk);
	int want = (int)k->cfg->partitions;
	if (ksrc_check_topic(k, k->cfg->kafka_topic, "[source]", want) != 0)
		return -1;
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, k->cfg->kafka_topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(k->rk, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (e) {
		log_error("cannot subscribe to %s: %s", k->cfg->kafka_topic, rd_kafka_err2str(e));
		return -1;
	}
	/* While the group forms (librdkafka's threads join it; nothing is
	 * assigned before the first poll), the changelog topic is made or
	 * checked: its admin requests overlap the join instead of adding to
	 * it. */
	if (ksrc_changelog(k, changelog, want) != 0)
		return -1;
	log_info("kafka source: group %s on topic %s (changelog %s) brokers=%s",
		 k->cfg->kafka_group, k->cfg->kafka_topic, changelog,
		 k->cfg->kafka_brokers ? k->cfg->kafka_brokers : "[kafka] bootstrap.servers");
	return 0;
}

/* After the stop: say which revoked partitions' offsets were not
 * committed. Returns how many got no answer at all (the brokers are gone);
 * a commit the cluster refused (a rebalance in progress) only costs the
 * next owner some re-reading, and is a warning. */
static int ksrc_report_uncommitted(struct ksrc *k)
{
	char list[1024];
	size_t used = 0;
	int n = 0, unanswered = 0;
	list[0] = '\0';
	for (unsigned p = 0; p < k->cfg->partitions; p++) {
		const struct kpart *kp = &k->parts[p];
		if (kp->commit_asked < 0 || kp->commit_done >= kp->commit_asked)
			continue;
		n++;
		unanswered += !kp->commit_err;
		if (used < sizeof(list))
			used += (size_t)snprintf(
			    list + used, sizeof(list) - used, "%s%u (offset %lld: %s)",
			    n > 1 ? ", " : "", p, (long long)kp->commit_asked,
			    kp->commit_err ? rd_kafka_err2str(kp->commit_err) : "no answer");
	}
	if (n)
		log_write(unanswered ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN,
			  "kafka: offsets not committed for partitions %s: the group's next owner "
			  "of these partitions reads them again from the last committed offsets "
			  "(this instance's shards skip what they applied)",
			  list);
	return unanswered;
}

static void *ksrc_destroy_thread(void *arg)
{
	struct kdestroy *d = arg;
	rd_kafka_destroy_flags(d->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	__atomic_store_n(&d->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Destroy the client without talking to the brokers again, within
 * STOP_GRACE_MS; a client that hangs even so (its threads stuck on a
 * cluster that is gone) is left behind: the process exits without it. */
static void ksrc_destroy(struct ksrc *k)
{
	pthread_t t;
	struct kdestroy *d = malloc(sizeof(*d));
	if (d)
		*d = (struct kdestroy){k->rk, 0};
	if (!d || pthread_create(&t, NULL, ksrc_destroy_thread, d) != 0) {
		free(d);
		rd_kafka_destroy_flags(k->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
		return;
	}
	uint64_t until = shm_now_ns() + STOP_GRACE_MS * 1000000ull;
	while (!__atomic_load_n(&d->done, __ATOMIC_ACQUIRE) && shm_now_ns() < until &&
	       sup_stopping() < 3)
		usleep(10000);
	if (__atomic_load_n(&d->done, __ATOMIC_ACQUIRE)) {
		pthread_join(t, NULL);
		free(d);
		return;
	}
	pthread_detach(t); /* d stays: the thread may yet write to it */
	k->left_behind = 1;
	log_warn("kafka: the client did not shut down within %d ms more (the brokers do not "
		 "answer): exiting without it",
		 STOP_GRACE_MS);
}

/* Leave the group: the revoke callback stops every worker after its batch
 * and commits their offsets. All of it within the stop's deadline: a
 * cluster that does not answer gets no more (a second stop request cuts it
 * short); the workers still running then are stopped the usual way
 * (sup_run). Returns EX_TEMPFAIL when offsets were not committed, else 0. */
static int ksrc_close(struct ksrc *k)
{
	int status = 0;
	if (!k->rk)
		goto out;
	if (!k->stop_by)
		k->stop_by = shm_now_ns() + k->cfg->stop_timeout_ms * 1000000u;
	rd_kafka_queue_t *q = rd_kafka_queue_new(k->rk);
	rd_kafka_error_t *err = rd_kafka_consumer_close_queue(k->rk, q);
	if (err) {
		log_warn("kafka: cannot leave the group: %s", rd_kafka_error_string(err));
		rd_kafka_error_destroy(err);
	}
	int gave_up = 0;
	while (!err && !rd_kafka_consumer_closed(k->rk)) {
		rd_kafka_queue_poll_callback(q, POLL_MS * 10); /* runs the rebalance callback */
		if (shm_now_ns() > k->stop_by || sup_stopping() > 1) {
			log_warn("kafka: leaving the group takes longer than %s: giving up (the "
				 "group notices at session.timeout.ms)",
				 sup_stopping() > 1 ? "a second stop request allows"
						    : "stop_timeout");
			gave_up = 1;
			break;
		}
	}
	rd_kafka_queue_poll_callback(q, 0); /* the last commit results */
	rd_kafka_queue_destroy(q);
	if (ksrc_report_uncommitted(k))
		status = EX_TEMPFAIL;
	for (unsigned p = 0; gave_up && p < k->cfg->partitions; p++)
		if (k->parts[p].phase != KP_UNOWNED) {
			log_error("kafka: partition %u was not revoked before the stop gave up: "
				  "its last offset commit is the periodic one; the next owner "
				  "reads on from there",
				  p);
			status = EX_TEMPFAIL;
		}
	ksrc_destroy(k);
out:
	if (!k->left_behind) {
		free(k->joined.buf);
		free(k->parts);
	}
	return status;
}

static void ksrc_tick(struct ksrc *k)
{
	uint64_t now = shm_now_ns();
	for (unsigned p = 0; p < k->cfg->partitions; p++)
		ksrc_fenced(k, p);
	ksrc_start_ready(k);
	if (now >= k->next_store_ns) {
		ksrc_store(k);
		k->next_store_ns = now + STORE_EVERY_NS;
	}
}

static enum src_result kafka_read(struct source *src, unsigned budget)
{
	struct ksrc *k = src->priv;
	char drain[64];
	while (read(k->wake[0], drain, sizeof(drain)) > 0)
		;
	for (unsigned n = 0; n < budget; n++) {
		rd_kafka_message_t *m = k->held ? k->held : rd_kafka_consumer_poll(k->rk, 0);
		k->held = NULL;
		if (!m)
			return k->failed ? SRC_ERROR : n ? SRC_MORE : SRC_IDLE;
		int rc = ksrc_message(k, m);
		if (rc == -EAGAIN) {
			k->held = m;
			return SRC_FULL;
		}
		rd_kafka_message_destroy(m);
		if (rc != 0 || k->failed)
			return SRC_ERROR;
	}
	return SRC_MORE;
}

static int kafka_pollfd(struct source *src, int *idle_ms)
{
	struct ksrc *k = src->priv;
	*idle_ms = POLL_MS;
	return k->wake[0];
}

static void kafka_tick(struct source *src)
{
	ksrc_tick(src->priv);
}

static void kafka_position(const struct source *src, struct src_pos *pos)
{
	(void)src; /* the group's offsets are the positions (ksrc_store) */
	*pos = (struct src_pos){.next_seq = 0};
}

static int kafka_open(struct source *src)
{
	struct ksrc *k = calloc(1, sizeof(*k));
	if (!k) {
		log_error("out of memory");
		return 1;
	}
	src->priv = k;
	*k = (struct ksrc){.src = src, .cfg = src->cfg, .s = src->sup, .wake = {-1, -1}};
	k->parts = calloc(src->cfg->partitions, sizeof(*k->parts));
	if (!k->parts) {
		log_error("out of memory");
		return 1;
	}
	if (ksrc_open(k) != 0)
		return 1;
	/* The loop sleeps on the pipe: librdkafka writes to it when a
	 * message (or a rebalance) comes to the empty consumer queue. */
	if (pipe2(k->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		log_error("kafka: cannot make a pipe: %s", strerror(errno));
		return 1;
	}
	k->queue = rd_kafka_queue_get_consumer(k->rk);
	if (k->queue)
		rd_kafka_queue_io_event_enable(k->queue, k->wake[1], "1", 1);
	return 0;
}

static int kafka_close(struct source *src)
{
	struct ksrc *k = src->priv;
	if (!k)
		return 0;
	if (k->held)
		rd_kafka_message_destroy(k->held);
	if (k->queue) {
		rd_kafka_queue_io_event_enable(k->queue, -1, NULL, 0);
		rd_kafka_queue_destroy(k->queue);
	}
	for (int i = 0; i < 2; i++)
		if (k->wake[i] >= 0)
			close(k->wake[i]);
	int status = ksrc_close(k);
	if (!k->left_behind)
		free(k);
	src->priv = NULL;
	return status;
}

const struct source_ops src_kafka_ops = {
    .name = "kafka",
    .open = kafka_open,
    .pollfd = kafka_pollfd,
    .read = kafka_read,
    .tick = kafka_tick,
    .position = kafka_position,
    .close = kafka_close,
};
