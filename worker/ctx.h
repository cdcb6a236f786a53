/* ctx.h - the worker's side of the handler ABI: struct rm_ctx, which holds a
 * batch's view of the stores, its state changes, its output and its counts
 * until the worker commits them all in one transaction. */
#ifndef RM_CTX_H
#define RM_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "ringmaster.h"
#include "shm.h"
#include "store.h"

struct cfg;
struct cfg_kv;

/* How much a worker keeps of its state and of the reference tables (keys,
 * values, slots). Past it the state cache is dropped at the end of the
 * batch, and table rows are read from the config environment again. */
#define CTX_STATE_BYTES (64u << 20)
#define CTX_TABLE_BYTES (64u << 20)
/* Distinct table names a worker keeps rows of; lookups in more tables go to
 * the config environment every time. */
#define CTX_TABLES_MAX 16

/* One state key this worker has seen: its committed value (what the
 * shard holds, kept across batches) and, while a batch changes it, the
 * batch's value. */
struct ctx_entry {
	uint64_t hash;
	char *mem; /* malloc'd: the key, then the committed value (cap bytes) */
	uint32_t key_len;
	uint8_t used;	   /* the slot holds a key */
	uint8_t known;	   /* the committed value is here (else: read the shard) */
	uint8_t present;   /* as the handler sees it; 0: absent or deleted */
	uint8_t committed; /* the shard has a value */
	uint32_t epoch;	   /* == rm_ctx.epoch: the batch changed it, val is the batch's */
	const char *val;   /* the committed value (mem) or the batch's (arena) */
	size_t val_len;
	size_t com_len, cap; /* the committed value in mem, and room for it */
};

/* One reference table row this worker looked up in the current generation
 * of the config environment: its value, or that there is none. */
struct ctx_row {
	uint64_t hash;
	const char *key; /* in the table arena, the value right after it */
	size_t val_len;
	uint32_t key_len;
	uint16_t table; /* index in tables[] */
	uint8_t used, found;
};

struct ctx_arena_block;

/* An entry the batch changed, with the first 16 bytes of its key (zero
 * padded, big-endian): the sort at commit compares those integers, and
 * reads the keys themselves only when they are equal. */
struct ctx_dirty {
	uint64_t hi, lo;
	struct ctx_entry *e;
};

/* Where one output line of the batch came from, for an output that keys
 * lines by their event (Kafka). The key points into the ring record, valid
 * until the batch is acked. */
struct ctx_line {
	size_t off, len; /* in out, without the '\n' */
	uint64_t seq;
	const char *key;
	uint32_t key_len;
};

struct rm_ctx {
	const struct cfg *cfg;
	unsigned partition;
	unsigned partitions;
	struct store_txn *cfg_txn;   /* read txn on the config env (this batch) */
	struct store_txn *shard_txn; /* write txn on the shard (this batch) */

	uint64_t hash_seed; /* random: keys come from the input */

	/* State: open addressing, power-of-two size. Entries outlive the batch
	 * (the worker is the shard's only writer) up to CTX_STATE_BYTES. */
	struct ctx_entry *entries;
	size_t n_entries, cap_entries;
	size_t state_bytes;
	struct ctx_entry *last_entry; /* the last one looked up, or NULL */
	struct ctx_dirty *dirty;      /* the entries this batch changed */
	size_t n_dirty, cap_dirty;
	struct ctx_dirty *sort_tmp; /* the write-back's radix sort */
	size_t cap_sort_tmp;
	uint32_t epoch;		       /* the batch's: a new one at each commit or reset */
	struct ctx_arena_block *arena; /* the batch's values */

	/* Reference tables: rows as looked up in generation tables_gen, up to
	 * CTX_TABLE_BYTES; then lookups go to the config environment. */
	uint64_t tables_gen;
	int tables_valid;
	char *tables[CTX_TABLES_MAX]; /* their names */
	size_t n_tables;
	struct ctx_row *rows;
	size_t n_rows, cap_rows;
	size_t rows_bytes;
	struct ctx_arena_block *rows_arena;

	char *out; /* output lines of the batch */
	size_t out_len, out_cap;

	int keep_lines;		/* fill lines[] (set by the worker) */
	struct ctx_line *lines; /* one per emitted line, when keep_lines */
	size_t n_lines, cap_lines;
	uint64_t ev_seq; /* the event the handler is on (ctx_set_event) */
	const char *ev_key;
	uint32_t ev_key_len;
	int ev_hashed;	  /* ev_hash is the hash of ev_key */
	uint64_t ev_hash; /* one hash of the key serves its state and its rows */
	/* Tables the handler looked up by the event's key (bit = index in
	 * tables[]): their rows are prefetched with the state (ctx_prefetch). */
	uint32_t evkey_tables;
	int evkey_state; /* and the state (set by any lookup by the event's key) */

	struct {
		const char *name; /* as the handler passed it */
		uint64_t n;
	} counts[SHM_OUTCOMES];
	size_t n_counts;

	const struct cfg_kv *params; /* live [handler] params; NULL: cfg's */
	size_t n_params;

	/* Time in state and table reads: about one call in STAGE_SAMPLE is
	 * timed (read_begin), scaled up here, and handed to the worker's stage
	 * counters. */
	uint64_t reads_rng;		     /* xorshift state */
	uint32_t reads_left;		     /* calls to the next timed one */
	uint32_t reads_left_next, reads_gap; /* the gap drawn, and the one timed now stands for */
	uint64_t reads_ns;
	uint64_t clock_cost; /* stage_clock_cost */

	char reject_reason[64];
	int failed; /* -errno from a call that could not be done */
	/* The handler failed on the event and rejected it for that (a Lua
	 * error, not a business rule): it counts towards fail_after. */
	int event_failed;
};

int ctx_init(struct rm_ctx *c, const struct cfg *cfg, unsigned partition);
void ctx_free(struct rm_ctx *c);

/* The [handler] params rm_param serves from now on (after a reload). */
void ctx_set_params(struct rm_ctx *c, const struct cfg_kv *params, size_t n);

/* Forget the batch's output and counts, and its state changes unless
 * ctx_committed said they were committed (after commit or abort). State
 * values the shard holds stay cached for the next batches. */
void ctx_reset(struct rm_ctx *c);

/* The batch's state changes are committed to the shard: keep them as the
 * cached values. Without this call ctx_reset reads those keys again from the
 * shard the next time, which is right either way. */
void ctx_committed(struct rm_ctx *c);

/* Forget every state value kept in memory: whoever writes the shard other
 * than through this context (a restore, a replay) calls it before the next
 * batch, which then reads what it needs from the shard. */
void ctx_forget_state(struct rm_ctx *c);

/* Write every state change of the batch into c->shard_txn, in key order
 * (sorted puts keep LMDB's page splits local). Returns 0 or a negative
 * store error (STORE_MAP_FULL, -EFBIG: grow the map and call again on a new
 * txn). */
int ctx_write_back(struct rm_ctx *c);

/* The event the handler is about to see: emitted lines are recorded as
 * coming from it (keep_lines). */
void ctx_set_event(struct rm_ctx *c, uint64_t seq, const char *key, size_t key_len);

/* Ask for an event's state and rows before the handler needs them: they
 * are random reads over all the keys, each a cache miss, and a worker sees
 * its batch ahead. ctx_prefetch, some events ahead, hashes the key and asks
 * for the slots it starts at (the state's, and those of the tables the
 * handler looks up by the event's key); ctx_prefetch_near, a few events
 * later, when those slots have come, asks for the key and value they point
 * to. ctx_set_event_hashed is ctx_set_event with the hash already made.
 * Hints only: nothing changes, whatever the order of the calls. */
uint64_t ctx_prefetch(struct rm_ctx *c, const char *key, size_t key_len);
void ctx_prefetch_near(const struct rm_ctx *c, uint64_t hash);
void ctx_set_event_hashed(struct rm_ctx *c, uint64_t seq, const char *key, size_t key_len,
			  uint64_t hash);

/* All of it for a batch's events, one call before each: event i + 24's
 * record (key and payload), i + 12's ctx_prefetch, i + 5's
 * ctx_prefetch_near. The events are an array of `stride`-byte elements
 * that each hold, from `first` (the first one's key field) on, these four
 * fields (struct ctx_evref's layout: CTX_EVREF_OK). Returns event i's hash
 * for ctx_set_event_hashed (0: not made). Calls may start anywhere and
 * skip: a call that does not follow the last one starts over; zero the
 * struct for another array. */
#define CTX_AHEAD_RING 32
struct ctx_ahead {
	uint64_t hash[CTX_AHEAD_RING];
	size_t tag[CTX_AHEAD_RING]; /* the event each hash is of */
	size_t last;
	int primed;
};
struct ctx_evref {
	const char *key, *payload;
	uint32_t key_len, payload_len;
};
#define CTX_EVREF_OK(type)                                                                         \
	(offsetof(type, payload) == offsetof(type, key) + offsetof(struct ctx_evref, payload) &&   \
	 offsetof(type, key_len) == offsetof(type, key) + offsetof(struct ctx_evref, key_len) &&   \
	 offsetof(type, payload_len) ==                                                            \
	     offsetof(type, key) + offsetof(struct ctx_evref, payload_len))
uint64_t ctx_ahead(struct rm_ctx *c, struct ctx_ahead *a, const void *first, size_t stride,
		   size_t i, size_t n);

/* Call fn on every key the batch changed: present = 0 for a deleted key
 * (val NULL). Stops at, and returns, the first non-zero fn result.
 * ctx_changed_count says how many calls that makes. */
typedef int (*ctx_change_fn)(void *arg, const char *key, size_t key_len, const void *val,
			     size_t val_len, int present);
size_t ctx_changed_count(const struct rm_ctx *c);
int ctx_changed_foreach(const struct rm_ctx *c, ctx_change_fn fn, void *arg);

/* Add the batch's outcome counts to the shared counters (after commit). */
void ctx_publish_counts(struct rm_ctx *c, struct shm_worker *w);

#endif
