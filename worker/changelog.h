/* changelog.h - state that follows its partition (Kafka source).
 *
 * Every batch that changes state writes each changed key, before the batch
 * commits, to partition P of the topic "<group>-<name>-changelog": key =
 * the state key, value = its new value (no value: deleted), and headers
 *
 *   seq  the batch's highest input offset (the applied_seq it commits)
 *   n    how many records the batch wrote, i  this record's place, 0..n-1
 *   w    the writer: a random number kept in the shard ("changelog_writer")
 *
 * The worker waits until Kafka has acknowledged them (kout_flush) and then
 * commits the batch with "changelog_next", the offset after its last
 * record, in the same LMDB transaction. So the changelog always holds every
 * committed batch, and perhaps a batch that never committed.
 *
 * Restoring. When a worker starts, it looks at the changelog past its
 * shard's changelog_next (the whole changelog for a new shard). Records are
 * grouped into batches; a batch with a record missing (a worker died while
 * writing it) is ignored, and so is a batch whose seq is at or below what
 * the shard has applied already. If some remaining batch was written by
 * another writer (another instance owned the partition meanwhile), every
 * remaining batch is applied in order and committed with its seq as
 * applied_seq: the shard is then what the changelog says, as of that seq,
 * and the worker skips every event at or below it. If all of them are this
 * shard's own (its worker died between writing a batch and committing it)
 * nothing is applied: the events are still in the ring or in Kafka, and
 * redoing them also rewrites their output, which restoring would not.
 * While it reads, shared memory says "restoring" and how far it is.
 *
 * Why whole batches: a batch's values were computed from the state as of the
 * batch before it, so applying batches whole, in order, and never going back
 * to a lower seq, gives the state as of the last one applied. The changelog
 * must therefore keep every record: cleanup.policy = delete with
 * retention.ms = -1 (compaction would break batches apart).
 */
#ifndef RM_CHANGELOG_H
#define RM_CHANGELOG_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct changelog;
struct kout;
struct rm_ctx;
struct shm_worker;
struct store_env;
struct store_txn;

/* For `shard` of `partition`, writing through `kout`. Reads (or makes and
 * keeps) the shard's writer id. Returns 0, or -1 with a message in err. */
int changelog_open(struct changelog **out, const struct cfg *cfg, unsigned partition,
		   struct store_env *shard, struct kout *kout, char *err, size_t errlen);

/* As kout_watch, for the restore's reads. */
void changelog_watch(struct changelog *c, _Atomic uint64_t *heartbeat_ns,
		     volatile sig_atomic_t *stop);

/* Bring the shard up to the changelog if it is behind (see above), keeping
 * `output_len` as the shard's output length. Sets st->restoring and
 * st->restore_pct while it works. Returns 0; STORE_MAP_FULL (grow the map
 * and call again: what was committed stays); -EINTR on a stop request;
 * another negative value on an error (logged). */
int changelog_restore(struct changelog *c, uint64_t output_len, struct shm_worker *st);

/* Queue the batch's changed keys, with `seq` the batch's highest seq.
 * Returns 0, or -1 (logged). */
int changelog_put_batch(struct changelog *c, const struct rm_ctx *ctx, uint64_t seq);

/* Record the changelog position in the batch's transaction (before
 * store_shard_commit). Returns 0 or a store error. */
int changelog_put_position(struct changelog *c, struct store_txn *txn);

void changelog_close(struct changelog *c);

#endif
