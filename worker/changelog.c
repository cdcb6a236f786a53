/* changelog.c - state that follows its partition (see changelog.h).
 *
 * The restore first writes its fence and waits for Kafka's offset of it,
 * then reads with librdkafka's simple consumer (no group: it reads one
 * partition from an offset and commits nothing), in two passes over the
 * part of the changelog the shard has not seen, up to and including the
 * fence: the first only decides (is there a batch by another writer?) and
 * stops at the first such batch; the second applies. Both drop the batches
 * of fenced writers as they read (cl_complete). Applied batches are
 * committed every RESTORE_TXN_RECORDS records, at a batch boundary, so a
 * restore cut short goes on from there next time.
 */
#include "changelog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "ctx.h"
#include "kafka.h"
#include "kout.h"
#include "log.h"
#include "shm.h"
#include "stall.h"
#include "store.h"

#define META_NEXT "changelog_next"
#define META_GENERATION "changelog_generation"
#define META_WRITER "changelog_writer"
#define RESTORE_TXN_RECORDS 50000
#define READ_SLICE_MS 500
#define READ_IDLE_LIMIT_NS (120 * 1000000000ull)
#define BROKER_TIMEOUT_MS 10000

struct changelog {
	const struct cfg *cfg;
	unsigned partition;
	struct store_env *shard;
	struct kout *kout;
	char topic[512];
	uint64_t writer;
	char writer_str[24];
	int32_t generation; /* of the assignment this worker writes under */
	char generation_str[16];
	int64_t expect;	    /* where this worker's next record must land, -1 */
	uint64_t queued;    /* records the batch being written queued */
	struct stall stall; /* while reading: a stop request ends it at once */
};

/* One record of a batch being read: offsets into the batch's buffer. */
struct cl_rec {
	size_t key_off, key_len, val_off, val_len;
	int present;
};

struct cl_batch {
	int open;
	uint64_t seq, n, next_i, writer, generation;
	int has_generation; /* no: written before fencing existed */
	int64_t first_offset, last_offset;
	struct cl_rec *recs;
	size_t cap_recs;
	char *buf;
	size_t buf_len, buf_cap;
};

/* Reading a stretch of the changelog: the batch being put together, and
 * the newest generation seen so far (fences and batches alike), which
 * every later batch must not be older than. */
struct cl_read {
	struct cl_batch b;
	uint64_t newest;
	uint64_t skipped; /* batches of fenced writers dropped */
	int quiet;	  /* count them, do not log them (the deciding pass) */
};

/* A complete batch. Returns 0 to go on, > 0 to stop reading, < 0 on error. */
typedef int (*cl_batch_fn)(struct changelog *c, const struct cl_batch *b, void *arg);

static uint64_t new_writer_id(void)
{
	uint64_t id = 0;
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
		id = shm_now_ns() ^ ((uint64_t)getpid() << 32);
	return id ? id : 1;
}

int changelog_open(struct changelog **out, const struct cfg *cfg, unsigned partition,
		   struct store_env *shard, struct kout *kout, int32_t generation, char *err,
		   size_t errlen)
{
	struct changelog *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c) {
		snprintf(err, errlen, "out of memory for the changelog");
		return -1;
	}
	*c = (struct changelog){.cfg = cfg, .partition = partition, .shard = shard, .kout = kout};
	c->generation = generation;
	c->expect = -1;
	stall_init(&c->stall, 0, 0);
	kafka_changelog_topic(cfg, c->topic, sizeof(c->topic));
	if (store_meta_get_u64(shard, META_WRITER, &c->writer) != 0) {
		c->writer = new_writer_id();
		int rc = store_meta_put_u64(shard, META_WRITER, c->writer);
		if (rc != 0) {
			snprintf(err, errlen,
				 "partition %u: cannot record the changelog writer: %s", partition,
				 strerror(-rc));
			free(c);
			return -1;
		}
	}
	snprintf(c->writer_str, sizeof(c->writer_str), "%llu", (unsigned long long)c->writer);
	snprintf(c->generation_str, sizeof(c->generation_str), "%d", (int)generation);
	*out = c;
	return 0;
}

void changelog_watch(struct changelog *c, _Atomic uint64_t *heartbeat_ns,
		     volatile sig_atomic_t *stop)
{
	stall_watch(&c->stall, heartbeat_ns, stop);
}

void changelog_close(struct changelog *c)
{
	free(c);
}

/* ---- writing ---- */

struct cl_put {
	struct changelog *c;
	char seq[24], n[24], i[24];
	uint64_t next_i;
};

static int put_one(void *arg, const char *key, size_t key_len, const void *val, size_t val_len,
		   int present)
{
	struct cl_put *p = arg;
	snprintf(p->i, sizeof(p->i), "%llu", (unsigned long long)p->next_i++);
	const char *headers[] = {KAFKA_H_SEQ,
				 p->seq,
				 KAFKA_H_COUNT,
				 p->n,
				 KAFKA_H_INDEX,
				 p->i,
				 KAFKA_H_WRITER,
				 p->c->writer_str,
				 KAFKA_H_GENERATION,
				 p->c->generation_str,
				 NULL};
	p->c->queued++;
	return kout_produce(p->c->kout, KOUT_CHANGELOG, key, key_len, present ? val : NULL, val_len,
			    headers);
}

int changelog_put_batch(struct changelog *c, const struct rm_ctx *ctx, uint64_t seq)
{
	size_t n = ctx_changed_count(ctx);
	struct cl_put p = {.c = c};
	snprintf(p.seq, sizeof(p.seq), "%llu", (unsigned long long)seq);
	snprintf(p.n, sizeof(p.n), "%zu", n);
	kout_span_reset(c->kout);
	c->queued = 0;
	/* A batch that changed nothing still says so (one record, n = 0, no
	 * key): its seq is progress another owner must see, and the record
	 * is what proves, before the commit, that the partition is still
	 * ours (changelog_check_batch). */
	if (!n)
		return put_one(&p, NULL, 0, NULL, 0, 0) ? -1 : 0;
	return ctx_changed_foreach(ctx, put_one, &p) ? -1 : 0;
}

int changelog_check_batch(struct changelog *c)
{
	struct kout_span s = kout_changelog_span(c->kout);
	if (c->expect >= 0 && s.count == c->queued && s.first == c->expect &&
	    s.last - s.first + 1 == (int64_t)s.count) {
		c->expect = s.last + 1;
		return 0;
	}
	log_error("partition %u: fenced: another writer's records are in %s [%u] between this "
		  "worker's (its batch of %llu records should have landed at offset %lld, they "
		  "are at %lld..%lld): another instance owns the partition now, or one the "
		  "group replaced still writes; giving the batch up without committing it (the "
		  "next worker's restore tells which)",
		  c->partition, c->topic, c->partition, (unsigned long long)c->queued,
		  (long long)c->expect, (long long)s.first, (long long)s.last);
	return -ESTALE;
}

int changelog_put_position(struct changelog *c, struct store_txn *txn)
{
	uint64_t next;
	if (kout_changelog_next(c->kout, &next) != 0)
		return 0; /* nothing written since the start: the position stands */
	int rc = store_shard_meta_put_u64(txn, META_NEXT, next);
	return rc ? rc : store_shard_meta_put_u64(txn, META_GENERATION, (uint64_t)c->generation);
}

/* Write this worker's fence, the first thing it writes, and wait until
 * Kafka has it; *at: its offset. Every batch this worker writes must
 * follow it directly (changelog_check_batch). */
static int cl_fence(struct changelog *c, int64_t *at)
{
	const char *headers[] = {
	    KAFKA_H_FENCE, "1", KAFKA_H_GENERATION, c->generation_str, KAFKA_H_WRITER,
	    c->writer_str, NULL};
	char text[96];
	int len = snprintf(text, sizeof(text), "fence: generation %s, writer %s", c->generation_str,
			   c->writer_str);
	kout_span_reset(c->kout);
	if (kout_produce(c->kout, KOUT_CHANGELOG, NULL, 0, text, (size_t)len, headers) != 0)
		return -EIO;
	int rc = kout_flush(c->kout);
	struct kout_span s = kout_changelog_span(c->kout);
	if (rc == 0 && s.count != 1)
		rc = -EIO;
	if (rc != 0) {
		if (rc != -EINTR)
			log_error("partition %u: cannot write its fence to %s", c->partition,
				  c->topic);
		return rc;
	}
	*at = s.last;
	c->expect = s.last + 1;
	log_info("partition %u: fence of generation %s written to %s [%u] at offset %lld",
		 c->partition, c->generation_str, c->topic, c->partition, (long long)s.last);
	return 0;
}

/* ---- reading ---- */

static int cl_batch_add(struct cl_batch *b, const rd_kafka_message_t *m)
{
	size_t need = b->buf_len + m->key_len + (m->payload ? m->len : 0);
	if (need > b->buf_cap) {
		size_t cap = b->buf_cap ? b->buf_cap : 64 * 1024;
		while (cap < need)
			cap *= 2;
		char *buf = realloc(b->buf, cap);
		if (!buf)
			return -ENOMEM;
		b->buf = buf;
		b->buf_cap = cap;
	}
	if (b->next_i >= b->cap_recs) {
		size_t cap = b->cap_recs ? b->cap_recs * 2 : 256;
		struct cl_rec *r = realloc(b->recs, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		b->recs = r;
		b->cap_recs = cap;
	}
	struct cl_rec *r = &b->recs[b->next_i++];
	r->key_off = b->buf_len;
	r->key_len = m->key_len;
	memcpy(b->buf + b->buf_len, m->key, m->key_len);
	b->buf_len += m->key_len;
	r->present = m->payload != NULL;
	r->val_off = b->buf_len;
	r->val_len = m->payload ? m->len : 0;
	if (r->val_len)
		memcpy(b->buf + b->buf_len, m->payload, r->val_len);
	b->buf_len += r->val_len;
	b->last_offset = m->offset;
	return 0;
}

/* A batch is complete: drop it if a newer generation came before it (its
 * writer had been fenced when it wrote it), else hand it to fn. A batch
 * without a generation (from a ringmaster that did not fence yet, say
 * during a rolling upgrade) is applied as it always was. */
static int cl_complete(struct changelog *c, struct cl_read *r, cl_batch_fn fn, void *arg)
{
	const struct cl_batch *b = &r->b;
	if (!b->has_generation)
		return fn(c, b, arg);
	if (b->generation < r->newest) {
		r->skipped++;
		if (!r->quiet)
			log_warn(
			    "partition %u: skipping the batch seq=%llu of writer %llu (%s offsets "
			    "%lld..%lld): its generation %llu is older than generation %llu, "
			    "whose fence came before it: it was written after its writer had "
			    "lost the partition",
			    c->partition, (unsigned long long)b->seq, (unsigned long long)b->writer,
			    c->topic, (long long)b->first_offset, (long long)b->last_offset,
			    (unsigned long long)b->generation, (unsigned long long)r->newest);
		return 0;
	}
	r->newest = b->generation;
	return fn(c, b, arg);
}

static int cl_is_record(const rd_kafka_message_t *m, uint64_t n, uint64_t i)
{
	if (n == 0) /* a batch that changed nothing: one record, no key */
		return i == 0 && !m->key;
	return m->key && m->key_len && i < n;
}

/* Fold one record into the batch being read; call fn when it completes. A
 * record that does not continue the open batch ends it unfinished, and so
 * does a fence. */
static int cl_take(struct changelog *c, struct cl_read *r, rd_kafka_message_t *m, cl_batch_fn fn,
		   void *arg)
{
	struct cl_batch *b = &r->b;
	uint64_t seq, n, i, writer, generation = 0, fence;
	int has_generation = kafka_header_u64(m, KAFKA_H_GENERATION, &generation) == 0;
	if (kafka_header_u64(m, KAFKA_H_FENCE, &fence) == 0 && has_generation) {
		b->open = 0;
		log_debug("partition %u: %s offset %lld: fence of generation %llu", c->partition,
			  c->topic, (long long)m->offset, (unsigned long long)generation);
		if (generation > r->newest)
			r->newest = generation;
		return 0;
	}
	if (kafka_header_u64(m, KAFKA_H_SEQ, &seq) || kafka_header_u64(m, KAFKA_H_COUNT, &n) ||
	    kafka_header_u64(m, KAFKA_H_INDEX, &i) ||
	    kafka_header_u64(m, KAFKA_H_WRITER, &writer) || !cl_is_record(m, n, i)) {
		log_warn("%s [%u] offset %lld: not a ringmaster changelog record: ignored",
			 c->topic, c->partition, (long long)m->offset);
		b->open = 0;
		return 0;
	}
	if (i == 0) {
		*b = (struct cl_batch){.open = 1,
				       .seq = seq,
				       .n = n,
				       .writer = writer,
				       .recs = b->recs,
				       .cap_recs = b->cap_recs,
				       .buf = b->buf,
				       .buf_cap = b->buf_cap};
		b->generation = generation;
		b->has_generation = has_generation;
		b->first_offset = b->last_offset = m->offset;
	} else if (!b->open || seq != b->seq || n != b->n || writer != b->writer ||
		   generation != b->generation || i != b->next_i) {
		b->open = 0;
		return 0;
	}
	if (n > 0) {
		int rc = cl_batch_add(b, m);
		if (rc || b->next_i < b->n)
			return rc;
	}
	b->open = 0;
	return cl_complete(c, r, fn, arg);
}

/* A simple consumer of the changelog, for [from, to). */
static rd_kafka_t *cl_reader(struct changelog *c, rd_kafka_topic_t **rkt)
{
	char err[KAFKA_ERR_LEN], id[300];
	snprintf(id, sizeof(id), "%s-p%u-restore", c->cfg->name, c->partition);
	const char *defaults[] = {"client.id", id, NULL};
	const char *forced[] = {
	    "enable.auto.commit", "false", "enable.partition.eof", "true", "auto.offset.reset",
	    "earliest",		  NULL};
	rd_kafka_t *rk =
	    kafka_client_new(RD_KAFKA_CONSUMER, c->cfg, defaults, forced, NULL, err,
			     "partition %u: cannot create the changelog reader", c->partition);
	if (!rk) {
		log_error("%s", err);
		return NULL;
	}
	*rkt = rd_kafka_topic_new(rk, c->topic, NULL);
	if (!*rkt) {
		log_error("%s: %s", c->topic, rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_destroy(rk);
		return NULL;
	}
	return rk;
}

static void cl_progress(struct shm_worker *st, int64_t from, int64_t at, int64_t to)
{
	if (st && to > from)
		atomic_store(&st->restore_pct, (uint32_t)((at - from) * 100 / (to - from)));
}

/* Read the changelog's records [from, to), calling fn on each complete
 * batch that is not dropped (r: the newest generation as of `from`, and
 * what the reading found). Returns 0, fn's positive stop value, or a
 * negative error. */
static int cl_scan(struct changelog *c, int64_t from, int64_t to, cl_batch_fn fn, void *arg,
		   struct shm_worker *st, struct cl_read *r)
{
	rd_kafka_topic_t *rkt = NULL;
	rd_kafka_t *rk = cl_reader(c, &rkt);
	int rc = -EIO, started = 0;
	if (!rk)
		return -EIO;
	int32_t part = (int32_t)c->partition;
	if (rd_kafka_consume_start(rkt, part, from) != 0) {
		log_error("%s [%u]: cannot read from offset %lld: %s", c->topic, c->partition,
			  (long long)from, rd_kafka_err2str(rd_kafka_last_error()));
		goto out;
	}
	started = 1;
	uint64_t last_news = shm_now_ns();
	for (int64_t at = from; at < to;) {
		if ((rc = stall_check(&c->stall, STALL_SHORT)) != 0)
			goto out;
		rd_kafka_message_t *m = rd_kafka_consume(rkt, part, READ_SLICE_MS);
		if (!m) {
			if (shm_now_ns() - last_news > READ_IDLE_LIMIT_NS) {
				log_error("%s [%u]: nothing to read at offset %lld for %llu s",
					  c->topic, c->partition, (long long)at,
					  (unsigned long long)(READ_IDLE_LIMIT_NS / 1000000000ull));
				rc = -EIO;
				goto out;
			}
			continue;
		}
		last_news = shm_now_ns();
		rc = 0;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (m->offset >= to)
				at = to;
		} else if (m->err) {
			log_warn("%s [%u]: %s", c->topic, c->partition, rd_kafka_message_errstr(m));
		} else if (m->offset >= at) {
			at = m->offset + 1;
			rc = m->offset < to ? cl_take(c, r, m, fn, arg) : 0;
			cl_progress(st, from, at, to);
		}
		rd_kafka_message_destroy(m);
		if (rc != 0)
			goto out;
	}
	rc = 0;
out:
	if (started)
		rd_kafka_consume_stop(rkt, part);
	free(r->b.recs);
	free(r->b.buf);
	r->b = (struct cl_batch){0};
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	return rc;
}

/* ---- restoring ---- */

struct cl_decide {
	int has;
	uint64_t applied;
	int own;
};

static int cl_decide_batch(struct changelog *c, const struct cl_batch *b, void *arg)
{
	struct cl_decide *d = arg;
	if (d->has && b->seq <= d->applied)
		return 0;
	if (b->writer == c->writer) {
		d->own = 1;
		return 0;
	}
	return 1; /* another writer's: restore */
}

struct cl_apply {
	const struct cl_read *read; /* the newest generation, recorded too */
	struct store_txn *txn;
	int has;
	uint64_t applied, output_len;
	uint64_t next; /* changelog_next to record with the applied batches */
	size_t in_txn;
	uint64_t batches;
};

static int cl_commit(struct changelog *c, struct cl_apply *a)
{
	int rc = store_shard_meta_put_u64(a->txn, META_NEXT, a->next);
	if (rc == 0)
		rc = store_shard_meta_put_u64(a->txn, META_GENERATION, a->read->newest);
	if (rc == 0)
		rc = store_shard_commit(a->txn, a->applied, a->output_len);
	else
		store_txn_abort(a->txn);
	a->txn = NULL;
	a->in_txn = 0;
	if (rc)
		log_error("partition %u: cannot commit the restored state: %s", c->partition,
			  strerror(-rc));
	return rc;
}

static int cl_apply_batch(struct changelog *c, const struct cl_batch *b, void *arg)
{
	struct cl_apply *a = arg;
	int rc = 0;
	if (a->has && b->seq <= a->applied)
		return 0;
	if (!a->txn && (rc = store_shard_begin(c->shard, &a->txn)) != 0)
		return rc;
	for (uint64_t i = 0; i < b->n && rc == 0; i++) {
		const struct cl_rec *r = &b->recs[i];
		const char *key = b->buf + r->key_off;
		if (r->present)
			rc = store_state_put(a->txn, key, r->key_len, b->buf + r->val_off,
					     r->val_len);
		else if ((rc = store_state_del(a->txn, key, r->key_len)) == -ENOENT)
			rc = 0;
	}
	if (rc) {
		store_txn_abort(a->txn);
		a->txn = NULL;
		return rc;
	}
	a->has = 1;
	a->applied = b->seq;
	a->next = (uint64_t)b->last_offset + 1;
	a->in_txn += b->n;
	a->batches++;
	return a->in_txn >= RESTORE_TXN_RECORDS ? cl_commit(c, a) : 0;
}

/* The part of the changelog this shard has not seen, up to and including
 * this worker's fence at `fence`: [*from, *to). */
static int cl_range(struct changelog *c, int has_pos, uint64_t pos, int64_t fence, int64_t *from,
		    int64_t *to)
{
	rd_kafka_topic_t *rkt = NULL;
	rd_kafka_t *rk = cl_reader(c, &rkt);
	int64_t low, high;
	if (!rk)
		return -EIO;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
	    rk, c->topic, (int32_t)c->partition, &low, &high, BROKER_TIMEOUT_MS);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	if (e) {
		log_error("%s [%u]: cannot ask for its offsets: %s", c->topic, c->partition,
			  rd_kafka_err2str(e));
		return -EIO;
	}
	*from = has_pos ? (int64_t)pos : low;
	*to = fence + 1;
	if (has_pos && (int64_t)pos > high)
		log_warn("%s [%u] ends at %lld, before the %llu this shard has seen: was the topic "
			 "made again? the shard is kept as it is",
			 c->topic, c->partition, (long long)high, (unsigned long long)pos);
	if (*from < low) {
		log_error(
		    "%s [%u] starts at %lld: records this shard has not seen (from %lld) were "
		    "deleted, so the state may lack changes (set retention.ms = -1 on the "
		    "changelog)",
		    c->topic, c->partition, (long long)low, (long long)*from);
		*from = low;
	}
	return 0;
}

/* Commit the end of the restore: the last batches and the position. */
static int cl_finish(struct changelog *c, struct cl_apply *a, int64_t to)
{
	if (!a->has)
		return 0; /* nothing applied, ever: no position to keep either */
	a->next = (uint64_t)to;
	if (!a->txn) {
		int rc = store_shard_begin(c->shard, &a->txn);
		if (rc)
			return rc;
	}
	return cl_commit(c, a);
}

/* The changelog holds a generation newer than this worker's: another
 * instance was given the partition after this one, and fenced it. */
static int cl_fenced(struct changelog *c, struct shm_worker *st, uint64_t newest)
{
	log_warn("partition %u: fenced: %s [%u] holds generation %llu, newer than generation %s "
		 "this instance was given the partition under: another instance owns it now; "
		 "stopping without processing (the group takes the partition from this instance)",
		 c->partition, c->topic, c->partition, (unsigned long long)newest,
		 c->generation_str);
	atomic_store(&st->kafka_fenced_by, (int64_t)newest);
	return -ESTALE;
}

int changelog_restore(struct changelog *c, uint64_t output_len, struct shm_worker *st)
{
	int has, has_pos;
	uint64_t applied, out_len, pos = 0, newest = 0;
	int64_t fence, from, to;
	int rc = store_shard_progress(c->shard, &has, &applied, &out_len);
	if (rc)
		return rc;
	has_pos = store_meta_get_u64(c->shard, META_NEXT, &pos) == 0;
	if (has_pos && store_meta_get_u64(c->shard, META_GENERATION, &newest) != 0)
		newest = 0; /* written before fencing existed */
	if ((rc = cl_fence(c, &fence)) != 0 ||
	    (rc = cl_range(c, has_pos, pos, fence, &from, &to)) != 0 || from >= to)
		return rc;
	struct cl_decide d = {has, applied, 0};
	struct cl_read r = {.newest = newest, .quiet = 1};
	rc = cl_scan(c, from, to, cl_decide_batch, &d, NULL, &r);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		if (r.newest > (uint64_t)c->generation)
			return cl_fenced(c, st, r.newest);
		if (r.skipped)
			log_info("partition %u: %s offsets %lld..%lld hold %llu batches written by "
				 "fenced writers: ignored",
				 c->partition, c->topic, (long long)from, (long long)to - 1,
				 (unsigned long long)r.skipped);
		if (d.own)
			log_info("partition %u: the changelog holds a batch this shard wrote but "
				 "never committed: redoing its events instead",
				 c->partition);
		return 0;
	}
	log_info("partition %u: restoring state from %s offsets %lld..%lld (shard at %s%llu)",
		 c->partition, c->topic, (long long)from, (long long)to - 1,
		 has ? "seq " : "nothing, ", (unsigned long long)(has ? applied : 0));
	atomic_store(&st->restore_pct, 0);
	atomic_store(&st->restoring, 1);
	r = (struct cl_read){.newest = newest};
	struct cl_apply a = {.read = &r, .has = has, .applied = applied, .output_len = output_len};
	uint64_t t0 = shm_now_ns();
	rc = cl_scan(c, from, to, cl_apply_batch, &a, st, &r);
	if (rc == 0)
		rc = cl_finish(c, &a, to);
	else if (a.txn)
		store_txn_abort(a.txn);
	if (rc == 0)
		log_info("partition %u: restored %llu batches in %.2f s: applied_seq=%llu%s",
			 c->partition, (unsigned long long)a.batches,
			 (double)(shm_now_ns() - t0) / 1e9, (unsigned long long)a.applied,
			 r.skipped ? " (batches of fenced writers skipped)" : "");
	if (rc == 0 && r.newest > (uint64_t)c->generation)
		return cl_fenced(c, st, r.newest);
	return rc;
}
