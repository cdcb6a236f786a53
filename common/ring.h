/* ring.h - single-producer, single-consumer ring of variable-length records
 * in memory shared across fork().
 *
 * The supervisor produces, one worker consumes. The ring holds no pointers,
 * only offsets, so the same mapping works in every process that inherited it.
 *
 * Positions are 64-bit byte counters that only grow; the byte at position p is
 * at data[p & mask]. Three positions matter:
 *
 *   tail   what the producer has published (shared, release/acquire);
 *   read   how far the consumer has looked (consumer-local, not shared);
 *   acked  what the consumer has committed (shared): the producer reclaims
 *          space only up to acked, so records between acked and tail survive
 *          a consumer that dies, and a new consumer starts at acked
 *          (ring_rewind).
 *
 * A record is a 16-byte header (total length, key length, flags, seq) followed
 * by the key and the payload, padded to 8 bytes. A record never wraps: when it
 * would cross the end of the buffer the producer writes a padding record to
 * the end and starts again at offset 0. A record may take at most a quarter
 * of the capacity.
 *
 * Waiting is spin-then-futex. A side that is about to sleep raises its waiter
 * flag and re-checks; the other side wakes it only when the flag is up, so the
 * fast path makes no system call. The futex is shared (not private) because
 * the two sides are different processes.
 *
 * None of these functions is safe to call from two producers or two consumers
 * at once; that is the contract, not an oversight.
 */
#ifndef RM_RING_H
#define RM_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_MIN_CAPACITY 4096u
#define RING_MAX_CAPACITY (1u << 30)
#define RING_ALIGN 8u
#define RING_HDR_SIZE 16u
#define RING_KEY_MAX 255u

struct ring; /* opaque; lives in the shared mapping */

/* Counters readable from any process that maps the ring (ring_stats). */
struct ring_stats {
	uint64_t capacity;	 /* bytes in the data area */
	uint64_t depth;		 /* bytes published but not acked (tail - acked) */
	uint64_t high_water;	 /* largest depth the producer has seen */
	uint64_t records;	 /* records published since creation */
	uint64_t bytes;		 /* record bytes published (headers included) */
	uint64_t producer_waits; /* times the producer slept on a full ring */
	uint64_t consumer_waits; /* times the consumer slept on an empty ring */
	uint64_t tail;		 /* positions, for tests and inspection */
	uint64_t acked;
};

/* One record as the consumer sees it: pointers into the shared buffer, valid
 * until the consumer acks past `end`. */
struct ring_rec {
	uint64_t seq;
	const char *key;
	const char *payload;
	uint32_t key_len;
	uint32_t payload_len;
	uint64_t end; /* ring position just past this record: pass to ring_ack */
};

/* Bytes of shared memory a ring of `capacity` data bytes needs (header
 * included). `capacity` must be a power of two in
 * [RING_MIN_CAPACITY, RING_MAX_CAPACITY]; returns 0 otherwise. */
size_t ring_footprint(size_t capacity);

/* Lay out a ring in `mem` (ring_footprint(capacity) bytes, 128-byte aligned,
 * zeroed or not). Returns the ring, or NULL with errno = EINVAL when capacity
 * is not a valid power of two or mem is misaligned. */
struct ring *ring_init(void *mem, size_t capacity);

/* Convenience: mmap(MAP_SHARED|MAP_ANONYMOUS) a ring of `capacity` bytes, so
 * that it is shared with children forked afterwards. Returns NULL and sets
 * errno on failure. Free with ring_destroy. */
struct ring *ring_create(size_t capacity);
void ring_destroy(struct ring *r);

/* Largest key_len + payload_len a single record may carry in this ring. */
size_t ring_max_record(const struct ring *r);

/* Bytes a record with these lengths occupies (header and padding included). */
size_t ring_record_size(size_t key_len, size_t payload_len);

/* ---- producer ---- */

/* Copy one record in without publishing it. Returns 0; -EMSGSIZE when the
 * record is larger than ring_max_record or key_len is 0 or over RING_KEY_MAX;
 * -EAGAIN when there is no room right now (nothing is written). Records
 * written with ring_put become visible to the consumer at ring_publish, all at
 * once, with one release store. */
int ring_put(struct ring *r, uint64_t seq, const void *key, size_t key_len, const void *payload,
	     size_t payload_len);

/* Make every record written by ring_put so far visible, and wake the consumer
 * if it sleeps. Cheap when there is nothing new. */
void ring_publish(struct ring *r);

/* Zero-copy form: reserve room for one record and get pointers to fill in.
 * Returns 0, -EMSGSIZE or -EAGAIN as ring_put. The record is invisible until
 * ring_commit (which publishes it, together with anything ring_put wrote). */
struct ring_slot {
	char *key;
	char *payload;
	uint64_t pos; /* internal */
};
int ring_reserve(struct ring *r, uint64_t seq, size_t key_len, size_t payload_len,
		 struct ring_slot *slot);
void ring_commit(struct ring *r, const struct ring_slot *slot);

/* Block until a record of key_len + payload_len bytes fits, spinning first,
 * then sleeping on the futex. timeout_ms < 0 waits forever. Returns 0 when
 * there is room, -ETIMEDOUT, -EINTR when a signal arrived (so the caller can
 * look at its flags), or -EMSGSIZE when the record can never fit. Publishes
 * pending records before it sleeps so the consumer can make progress.
 * -EINTR needs the signal's handler installed without SA_RESTART (with it,
 * the kernel restarts the sleep), and a signal that arrives while the caller
 * is still spinning is noticed only at the next wake-up or timeout. */
int ring_wait_space(struct ring *r, size_t key_len, size_t payload_len, int timeout_ms);

/* ring_put + ring_publish, waiting for room as long as it takes (or until a
 * signal: then -EINTR and nothing was written). */
int ring_push(struct ring *r, uint64_t seq, const void *key, size_t key_len, const void *payload,
	      size_t payload_len);

/* Tell the consumer no more records will come (after publishing what is
 * pending). A consumer sees -EPIPE from ring_wait_data once it has read
 * everything. */
void ring_close(struct ring *r);

/* The seq of the oldest record not yet acked, published or not: what the
 * supervisor's low watermark is made of. Producer side only (it reads its own
 * write position). Returns 0, or -ENOENT when every record is acked. The
 * bytes between acked and the write position are stable while the producer
 * is not writing, so reading them races with nothing. */
int ring_oldest_seq(const struct ring *r, uint64_t *seq);

/* The producer's write position: the end of every record put so far,
 * published or not (what ring_rec.end of the last one will be). Producer
 * side only. */
uint64_t ring_write_pos(const struct ring *r);

/* The first record at or after position `from` (a record's start, at or
 * after acked) whose seq is min_seq or more: 0 with its start in *pos and
 * its seq, or -ENOENT with *pos the write position. Producer side only,
 * while it writes nothing (a rescale's cut places its barriers so). */
int ring_find_seq(const struct ring *r, uint64_t from, uint64_t min_seq, uint64_t *pos,
		  uint64_t *seq);

/* The consumer's acked position (anyone may read it). */
uint64_t ring_acked_pos(const struct ring *r);

/* True when every published record has been acked. */
int ring_drained(const struct ring *r);

/* ---- consumer ---- */

/* Fill `out` with up to `max` records after the consumer's read position,
 * without copying and without waiting, and move the read position past them.
 * Padding records are skipped. Returns how many records were filled. */
size_t ring_peek(struct ring *r, struct ring_rec *out, size_t max);

/* Block until at least one record is readable, spinning first, then sleeping.
 * timeout_ms < 0 waits forever. Returns 0 when data is there, -ETIMEDOUT,
 * -EINTR on a signal (as for ring_wait_space), or -EPIPE when the ring is
 * closed and fully read. */
int ring_wait_data(struct ring *r, int timeout_ms);

/* Release every record up to ring position `up_to` (a ring_rec.end) to the
 * producer, and wake it if it waits for room. */
void ring_ack(struct ring *r, uint64_t up_to);

/* The seq of the first published record at or after position `pos`
 * (padding skipped): 0, or -ENOENT when nothing is published there yet.
 * Consumer side, for a pos at or after acked (the producer does not touch
 * those bytes). */
int ring_seq_at(const struct ring *r, uint64_t pos, uint64_t *seq);

/* Restart reading at acked: what a new consumer calls first, so records a
 * dead consumer read but never acked are seen again. */
void ring_rewind(struct ring *r);

/* ---- anyone ---- */

void ring_stats(const struct ring *r, struct ring_stats *st);

#endif
