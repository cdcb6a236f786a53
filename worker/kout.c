/* kout.c - a worker's Kafka producer (see kout.h).
 *
 * A delivery report that fails marks the producer failed for good: the
 * batch that was waiting on it does not commit, the worker exits, and the
 * one that replaces it (with a new producer) redoes the batch. That is what
 * makes the changelog and the output at-least-once rather than lossy.
 */
#include "kout.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ctx.h"
#include "kafka.h"
#include "log.h"
#include "stall.h"

#define QUEUE_FULL_WAIT_MS 100
#define WARM_TIMEOUT_MS 2000

/* Per-message opaque: which topic a delivery report is about. */
static char tag_changelog, tag_output;

struct kout {
	rd_kafka_t *rk;
	const struct cfg *cfg;
	unsigned partition;
	char changelog[512];
	rd_kafka_resp_err_t failed; /* the first failed delivery */
	int has_next;
	uint64_t changelog_next;
	struct kout_span span; /* changelog records since kout_span_reset */
	struct stall stall;    /* while Kafka acknowledges nothing */
};

static void kout_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kout *k = opaque;
	(void)rk;
	if (m->err) {
		if (!k->failed)
			log_error("partition %u: kafka could not take a record for %s: %s",
				  k->partition, rd_kafka_topic_name(m->rkt),
				  rd_kafka_err2str(m->err));
		k->failed = m->err;
		return;
	}
	if (m->_private != &tag_changelog || m->offset < 0)
		return;
	if (!k->has_next || (uint64_t)m->offset + 1 > k->changelog_next) {
		k->changelog_next = (uint64_t)m->offset + 1;
		k->has_next = 1;
	}
	if (!k->span.count || m->offset < k->span.first)
		k->span.first = m->offset;
	if (!k->span.count || m->offset > k->span.last)
		k->span.last = m->offset;
	k->span.count++;
}

/* Ask at once for the changelog topic's metadata (and the output topic's):
 * a producer learns of a topic it has not seen only at its next topic
 * scan, a second later, which would hold the fence, the worker's first
 * write. What fails here is tried again by the produce itself. */
static void kout_warm(struct kout *k)
{
	const char *topics[] = {k->cfg->source_type == CFG_SOURCE_KAFKA ? k->changelog : NULL,
				k->cfg->output_type == CFG_OUTPUT_KAFKA ? k->cfg->output_topic
									: NULL};
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		if (!topics[i])
			continue;
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, topics[i], NULL);
		const struct rd_kafka_metadata *md = NULL;
		if (rkt && rd_kafka_metadata(k->rk, 0, rkt, &md, WARM_TIMEOUT_MS) == 0)
			rd_kafka_metadata_destroy(md);
		if (rkt)
			rd_kafka_topic_destroy(rkt);
	}
}

/* Waiting on Kafka, the worker's heartbeat goes on for one watchdog
 * period, no longer (see stall.h). */
static void kout_stall_init(struct kout *k)
{
	stall_init(&k->stall, k->cfg->stop_timeout_ms * 1000000u, k->cfg->watchdog_ms * 1000000u);
	stall_say(&k->stall, STALL_SLOW,
		  "partition %u: kafka has acknowledged nothing for %d s: waiting (the batch "
		  "commits once it has)",
		  k->partition, STALL_WARN_SLICES * STALL_SLICE_MS / 1000);
	stall_say(&k->stall, STALL_GIVE_UP,
		  "partition %u: kafka acknowledges nothing and the worker must stop: giving the "
		  "batch up (it is redone at the next start)",
		  k->partition);
	stall_say(&k->stall, STALL_SILENT,
		  "partition %u: kafka has acknowledged nothing for the whole watchdog period: no "
		  "more heartbeats, so the watchdog restarts this worker",
		  k->partition);
}

int kout_open(struct kout **out, const struct cfg *cfg, unsigned partition, char *err,
	      size_t errlen)
{
	char why[KAFKA_ERR_LEN], id[300];
	struct kout *k = calloc(1, sizeof(*k));
	*out = NULL;
	if (!k) {
		snprintf(err, errlen, "out of memory for the kafka producer");
		return -1;
	}
	k->cfg = cfg;
	k->partition = partition;
	kafka_changelog_topic(cfg, k->changelog, sizeof(k->changelog));
	kout_stall_init(k);
	snprintf(id, sizeof(id), "%s-p%u", cfg->name, partition);
	const char *defaults[] = {"client.id", id, NULL};
	const char *forced[] = {"enable.idempotence", "true", "partitioner", "murmur2_random",
				NULL};
	const struct kafka_hooks hooks = {.opaque = k, .delivered = kout_delivered};
	k->rk = kafka_client_new(RD_KAFKA_PRODUCER, cfg, defaults, forced, &hooks, why,
				 "partition %u: cannot create the kafka producer", partition);
	if (!k->rk) {
		snprintf(err, errlen, "%s", why);
		free(k);
		return -1;
	}
	kout_warm(k);
	*out = k;
	return 0;
}

void kout_watch(struct kout *k, _Atomic uint64_t *heartbeat_ns, volatile sig_atomic_t *stop)
{
	stall_watch(&k->stall, heartbeat_ns, stop);
}

static rd_kafka_headers_t *make_headers(const char *const *kv)
{
	size_t n = 0;
	while (kv && kv[2 * n])
		n++;
	if (!n)
		return NULL;
	rd_kafka_headers_t *h = rd_kafka_headers_new(n);
	for (size_t i = 0; h && i < n; i++)
		rd_kafka_header_add(h, kv[2 * i], -1, kv[2 * i + 1], -1);
	return h;
}

int kout_produce(struct kout *k, enum kout_topic topic, const char *key, size_t key_len,
		 const void *val, size_t val_len, const char *const *headers)
{
	int changelog = topic == KOUT_CHANGELOG;
	const char *name = changelog ? k->changelog : k->cfg->output_topic;
	int32_t part = changelog ? (int32_t)k->partition : RD_KAFKA_PARTITION_UA;
	for (;;) {
		rd_kafka_headers_t *h = make_headers(headers);
		rd_kafka_resp_err_t e = rd_kafka_producev(
		    k->rk, RD_KAFKA_V_TOPIC(name), RD_KAFKA_V_PARTITION(part),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, key_len),
		    RD_KAFKA_V_VALUE((void *)val, val ? val_len : 0), RD_KAFKA_V_HEADERS(h),
		    RD_KAFKA_V_OPAQUE(changelog ? &tag_changelog : &tag_output), RD_KAFKA_V_END);
		if (!e) {
			stall_begin(&k->stall);
			return 0;
		}
		if (h)
			rd_kafka_headers_destroy(h);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			log_error("partition %u: cannot produce to %s: %s", k->partition, name,
				  rd_kafka_err2str(e));
			return -1;
		}
		rd_kafka_poll(k->rk, QUEUE_FULL_WAIT_MS);
		if (stall_check(&k->stall, STALL_SHORT) != 0)
			return -1;
	}
}

int kout_send_lines(struct kout *k, const struct rm_ctx *ctx)
{
	char seq[24];
	const char *headers[] = {KAFKA_H_SEQ, seq, NULL};
	for (size_t i = 0; i < ctx->n_lines; i++) {
		const struct ctx_line *l = &ctx->lines[i];
		snprintf(seq, sizeof(seq), "%llu", (unsigned long long)l->seq);
		if (kout_produce(k, KOUT_OUTPUT, l->key, l->key_len, ctx->out + l->off, l->len,
				 headers) != 0)
			return -1;
	}
	return 0;
}

int kout_flush(struct kout *k)
{
	stall_begin(&k->stall);
	while (!k->failed && rd_kafka_outq_len(k->rk) > 0) {
		rd_kafka_flush(k->rk, STALL_SLICE_MS);
		if (k->failed || rd_kafka_outq_len(k->rk) == 0)
			break;
		if (stall_check(&k->stall, STALL_SLICE) != 0)
			return -EINTR;
	}
	if (k->failed) {
		char why[256];
		if (rd_kafka_fatal_error(k->rk, why, sizeof(why)))
			log_error("partition %u: the kafka producer failed for good: %s",
				  k->partition, why);
		return -EIO;
	}
	return 0;
}

int kout_changelog_next(const struct kout *k, uint64_t *next)
{
	if (!k->has_next)
		return -1;
	*next = k->changelog_next;
	return 0;
}

void kout_span_reset(struct kout *k)
{
	k->span = (struct kout_span){0};
}

struct kout_span kout_changelog_span(const struct kout *k)
{
	return k->span;
}

void kout_close(struct kout *k)
{
	if (!k)
		return;
	rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(k->rk, 0); /* the purged records' reports */
	rd_kafka_destroy(k->rk);
	free(k);
}
