/* replay.h - the seqs of replayed dead letters, and what the config
 * environment records about each replay (supervisor/replay.c writes it,
 * the workers read it).
 *
 * A replay is numbered (1, 2, ...) and its events get the seqs
 *
 *   SEQ_REPLAY + (number << 40) + index
 *
 * where index is the line's index in the dead-letter file (0 for the first
 * line). Those seqs are above every source's, so a shard keeps the highest
 * one it applied apart from the source's (meta replay_applied): a shard
 * skips a replayed event at or below it, and a later replay, having a
 * higher number, is never taken for one already applied.
 *
 * In the config environment's "meta" database:
 *
 *   replay_next       the next number to hand out (absent: 1)
 *   replay_open       the number of the replay not yet known to be durable
 *                     in every shard (absent or 0: none)
 *   replay/N          the original seq of each line of replay N, 8 bytes
 *                     little-endian a line, by index (REPLAY_NO_SEQ for a
 *                     line that was not sent)
 *   replay/N/file     what was replayed: struct replay_file, then the path
 *
 * A replayed event reaches the handler with its original seq (the worker
 * looks it up in replay/N), so its output is what it would have been had it
 * not failed the first time. */
#ifndef RM_REPLAY_H
#define RM_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define SEQ_REPLAY (1ull << 63)
#define REPLAY_INDEX_BITS 40
#define REPLAY_INDEX_MAX ((1ull << REPLAY_INDEX_BITS) - 1)
/* The numbers that fit below 2^64 with 40 bits of index. */
#define REPLAY_NUMBER_MAX ((1ull << (63 - REPLAY_INDEX_BITS)) - 1)
#define REPLAY_NO_SEQ UINT64_MAX

#define REPLAY_NAME_LEN 48

/* The seq of line `index` of replay `number` (1..REPLAY_NUMBER_MAX). */
static inline uint64_t replay_seq(uint64_t number, uint64_t index)
{
	return SEQ_REPLAY + (number << REPLAY_INDEX_BITS) + index;
}

static inline int replay_is(uint64_t seq)
{
	return seq >= SEQ_REPLAY;
}

static inline uint64_t replay_number(uint64_t seq)
{
	return (seq - SEQ_REPLAY) >> REPLAY_INDEX_BITS;
}

static inline uint64_t replay_index(uint64_t seq)
{
	return (seq - SEQ_REPLAY) & REPLAY_INDEX_MAX;
}

/* "replay/N" and "replay/N/file". */
void replay_seqs_name(char name[REPLAY_NAME_LEN], uint64_t number);
void replay_file_name(char name[REPLAY_NAME_LEN], uint64_t number);

/* The head of replay/N/file; the path follows it (not NUL-terminated). */
struct replay_file {
	uint64_t hash;	 /* replay_hash of the file's first `len` bytes */
	uint64_t len;	 /* bytes of the file that were replayed */
	uint64_t lines;	 /* lines in those bytes */
	uint64_t first;	 /* index of the first line sent (the ones before were
			  * an earlier replay's) */
	uint64_t prefix; /* that earlier replay's number, 0 if none */
};

/* FNV-1a 64, streamed: replay_hash(REPLAY_HASH_INIT, ...) then on. A
 * corruption and identity check, not a signature. */
#define REPLAY_HASH_INIT 0xcbf29ce484222325ull
uint64_t replay_hash(uint64_t h, const void *data, size_t len);

struct store_txn;
/* The original seq of the replayed event `seq`, from replay/N in the
 * config environment (a worker's batch transaction). 0, or -ENOENT when
 * the config environment does not know it (then the replay seq stands). */
int replay_orig_seq(struct store_txn *cfg_txn, uint64_t seq, uint64_t *orig);

#endif
