/* kout.h - a worker's Kafka producer: its partition's changelog records
 * (with a Kafka source) and its output lines ([output] type = kafka).
 *
 * The worker creates it after fork; it shares nothing with the supervisor's
 * consumer. It is idempotent (enable.idempotence = true, so acks = all and
 * librdkafka's own retries neither duplicate nor reorder records), and
 * asynchronous: kout_produce queues a record, kout_flush waits until the
 * cluster has acknowledged every record queued so far. The worker flushes
 * before it commits a batch, so what a committed batch produced is in Kafka.
 *
 * Output records are keyed by the event's key and partitioned with murmur2
 * (Kafka's default partitioner, and ringmaster's), with the event's seq in
 * the header "seq".
 */
#ifndef RM_KOUT_H
#define RM_KOUT_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct kout;
struct rm_ctx;

enum kout_topic { KOUT_CHANGELOG, KOUT_OUTPUT };

/* Create the producer for partition `partition`. Returns 0, or -1 with a
 * message in err. */
int kout_open(struct kout **out, const struct cfg *cfg, unsigned partition, char *err,
	      size_t errlen);

/* While waiting on Kafka, keep *heartbeat_ns fresh (the watchdog), and once
 * *stop is set give the wait stop_timeout more, then give up. */
void kout_watch(struct kout *k, _Atomic uint64_t *heartbeat_ns, volatile sig_atomic_t *stop);

/* Queue one record: to the changelog's partition `partition`, or to the
 * output topic by key. `headers`: NULL-terminated name, value pairs (or
 * NULL). val NULL is a tombstone. Waits while librdkafka's queue is full.
 * Returns 0, or -1 (logged). */
int kout_produce(struct kout *k, enum kout_topic topic, const char *key, size_t key_len,
		 const void *val, size_t val_len, const char *const *headers);

/* Queue the batch's output lines (ctx->lines, kept with keep_lines). */
int kout_send_lines(struct kout *k, const struct rm_ctx *ctx);

/* Wait until every queued record is acknowledged. Returns 0; -EIO when a
 * record could not be delivered since kout_open (the batch must not
 * commit: the worker exits and its successor redoes it); -EINTR when the
 * worker was asked to stop and the wait then lasted past stop_timeout. */
int kout_flush(struct kout *k);

/* The offset after the last changelog record acknowledged since kout_open.
 * Returns 0, or -1 when there is none yet. */
int kout_changelog_next(const struct kout *k, uint64_t *next);

/* The changelog records acknowledged since the last kout_span_reset: how
 * many, and the lowest and highest of their offsets. The changelog checks
 * with it that nobody wrote between its records (see changelog.h). */
struct kout_span {
	uint64_t count;
	int64_t first, last;
};
void kout_span_reset(struct kout *k);
struct kout_span kout_changelog_span(const struct kout *k);

/* Drop what is still queued (everything was flushed at the last commit)
 * and destroy the producer. NULL is allowed. */
void kout_close(struct kout *k);

#endif
