/* changelog.h - state that follows its partition (Kafka source).
 *
 * Every batch writes each state key it changed, before the batch commits,
 * to partition P of the topic "<group>-<name>-changelog": key = the state
 * key, value = its new value (no value: deleted), and headers
 *
 *   seq  the batch's highest input offset (the applied_seq it commits)
 *   n    how many records the batch wrote, i  this record's place, 0..n-1
 *   w    the writer: a random number kept in the shard ("changelog_writer")
 *   g    the consumer-group generation under which the supervisor was
 *        assigned the partition (kafka_group_generation)
 *
 * A batch that changed no key writes one record without key or value,
 * n = 0, i = 0. The worker waits until Kafka has acknowledged them
 * (kout_flush), checks that they directly follow its previous records
 * (changelog_check_batch), and then commits the batch with
 * "changelog_next", the offset after its last record, and
 * "changelog_generation", in the same LMDB transaction. So the changelog
 * always holds every committed batch, and perhaps a batch that never
 * committed.
 *
 * Fencing. Before it reads anything, a worker writes a fence: a record
 * with the headers fence = 1, g and w (and a value saying so, for people),
 * and restores up to and including it. Whoever reads the changelog drops
 * every batch whose generation is older than the newest generation seen
 * before it (the shard's changelog_generation, then every fence and batch
 * read). The group gives a partition to a new owner only under a newer
 * generation, so once the new owner's fence is in, whatever an owner the
 * group has replaced still writes is applied by nobody, now or later. The
 * replaced owner stops too: its next batch does not land right after its
 * previous records (the fence is between), so it does not commit; and a
 * worker whose restore finds a newer generation than its own is fenced:
 * it says so in shared memory (kafka_fenced_by) and processes nothing.
 * A batch without g (written by a ringmaster from before fencing, say
 * during a rolling upgrade) is applied as before: it cannot be fenced.
 *
 * Restoring. When a worker starts, it looks at the changelog past its
 * shard's changelog_next (the whole changelog for a new shard), up to its
 * fence. Records are grouped into batches; a batch with a record missing
 * (a worker died while writing it, or a fence came between) is ignored, and
 * so is a batch of a fenced writer and a batch whose seq is at or below what
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

/* For `shard` of `partition`, writing through `kout` under the group
 * generation `generation`. Reads (or makes and keeps) the shard's writer
 * id. Returns 0, or -1 with a message in err. */
int changelog_open(struct changelog **out, const struct cfg *cfg, unsigned partition,
		   struct store_env *shard, struct kout *kout, int32_t generation, char *err,
		   size_t errlen);

/* As kout_watch, for the restore's reads. */
void changelog_watch(struct changelog *c, _Atomic uint64_t *heartbeat_ns,
		     volatile sig_atomic_t *stop);

/* Write the fence, then bring the shard up to the changelog if it is
 * behind (see above), keeping `output_len` as the shard's output length.
 * Sets st->restoring and st->restore_pct while it works. Returns 0;
 * STORE_MAP_FULL (grow the map and call again: what was committed stays);
 * -EINTR on a stop request; -ESTALE when the worker is fenced (logged,
 * st->kafka_fenced_by set); another negative value on an error (logged). */
int changelog_restore(struct changelog *c, uint64_t output_len, struct shm_worker *st);

/* Queue the batch's changed keys, with `seq` the batch's highest seq.
 * Returns 0, or -1 (logged). */
int changelog_put_batch(struct changelog *c, const struct rm_ctx *ctx, uint64_t seq);

/* After kout_flush: did the batch's records land right after this worker's
 * previous ones (its fence or its last batch)? Returns 0, or -ESTALE
 * (logged) when another writer's records came between: the partition has
 * a new owner and the batch must not commit. */
int changelog_check_batch(struct changelog *c);

/* Record the changelog position in the batch's transaction (before
 * store_shard_commit). Returns 0 or a store error. */
int changelog_put_position(struct changelog *c, struct store_txn *txn);

void changelog_close(struct changelog *c);

#endif
