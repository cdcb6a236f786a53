/* stage.h - where the time goes: each process charges its wall time to one
 * stage at a time, reading the clock only when it changes stage (a few
 * times a batch, never once an event), so the accounting costs well under
 * 1% of the throughput. What is too fine to time at every change (parsing
 * a line, a state read) is timed for one event in STAGE_SAMPLE and scaled
 * up, and taken out of the stage it happened in when shares are computed.
 *
 * The counters live in the shared mapping (shm.h): the worker's in its
 * struct shm_worker, the supervisor's in struct shm_sup. Only their owner
 * writes them; anyone reads them (ringctl top, metrics, the summary).
 *
 * Also here: the heavy hitters of a partition (space-saving, bounded
 * memory) and the verdict that says in one line what the bottleneck is. */
#ifndef RM_STAGE_H
#define RM_STAGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"

/* The supervisor's stages. PARSE and PARTITION are sampled estimates that
 * happened inside READ (the source's read call). */
enum sup_stage {
	SUP_ST_READ,	     /* the source: I/O, generating, splitting lines */
	SUP_ST_PARSE,	     /* key and payload out of a line (sampled) */
	SUP_ST_PARTITION,    /* hashing the key and copying into the ring (sampled) */
	SUP_ST_BACKPRESSURE, /* waiting for room in a full ring */
	SUP_ST_IDLE,	     /* waiting for input */
	SUP_ST_OTHER,	     /* the control socket, periodic jobs, supervision */
	SUP_STAGES
};

/* A worker's stages. READS is a sampled estimate that happened inside
 * HANDLER. With sync = batch the commit's own fsyncs (LMDB syncs inside
 * its commit) count as FSYNC. */
enum wrk_stage {
	WRK_ST_WAIT,	/* ring empty while the supervisor was reading: starved */
	WRK_ST_HANDLER, /* running the handler (minus its state and table reads) */
	WRK_ST_READS,	/* rm_state_get and rm_table_get (sampled) */
	WRK_ST_COMMIT,	/* the LMDB commit */
	WRK_ST_FSYNC,	/* making the output, dead letters and state durable */
	WRK_ST_OUTPUT,	/* writing the output and dead letters, changelog sends */
	WRK_ST_IDLE,	/* ring empty while the supervisor had no input either */
	WRK_ST_OTHER,	/* opening and closing transactions, acks, barriers */
	WRK_STAGES
};

#define STAGE_MAX 8
#define STAGE_SAMPLE 64 /* one event in this many is timed for the sampled stages */

/* The nanoseconds of one process, by stage (enum sup_stage or wrk_stage). */
struct stage_acct {
	_Atomic uint64_t ns[STAGE_MAX];
};

/* The owner's running clock: the stage it is in and since when. */
struct stage_timer {
	struct stage_acct *acct;
	unsigned cur;
	uint64_t since;
};

/* Start charging to `stage` from now. */
void stage_start(struct stage_timer *t, struct stage_acct *acct, unsigned stage);

/* Charge the time since the last change to the current stage and move to
 * `stage`. Returns the time read. */
static inline uint64_t stage_enter(struct stage_timer *t, unsigned stage)
{
	uint64_t now = shm_now_ns();
	if (t->acct)
		atomic_fetch_add_explicit(&t->acct->ns[t->cur], now - t->since,
					  memory_order_relaxed);
	t->since = now;
	t->cur = stage;
	return now;
}

/* Charge the time running now to `stage` instead (decided after the fact:
 * a wait that turns out to have been idle). No clock read. */
static inline void stage_relabel(struct stage_timer *t, unsigned stage)
{
	t->cur = stage;
}

/* Add a sampled duration, already scaled, to `stage`. */
static inline void stage_add(struct stage_acct *a, unsigned stage, uint64_t ns)
{
	atomic_fetch_add_explicit(&a->ns[stage], ns, memory_order_relaxed);
}

/* Whether the event at `seq` is one of the sampled ones: a hash of the seq,
 * so that the supervisor's parts agree without sharing a counter, and a
 * regular pattern of seqs (a file's byte offsets) is not aliased. */
static inline int stage_sampled(uint64_t seq)
{
	return ((seq * 0x9E3779B97F4A7C15ull) >> 58) == 0; /* 1 in 64 */
}

/* What one shm_now_ns costs here (the least of a few back-to-back reads):
 * taken off each sampled duration, which is often not much longer. */
uint64_t stage_clock_cost(void);

/* A sampled duration is cut at this: one that long was preempted (two
 * cores, many processes), and scaled up STAGE_SAMPLE times it would
 * outweigh thousands of true ones. */
#define STAGE_SAMPLE_CAP_NS 50000u

/* A sampled duration of `d` ns, scaled up, the clock's cost taken off. */
static inline uint64_t stage_scale(uint64_t d, uint64_t clock_cost)
{
	if (d > STAGE_SAMPLE_CAP_NS)
		d = STAGE_SAMPLE_CAP_NS;
	return d > clock_cost ? (d - clock_cost) * STAGE_SAMPLE : 0;
}

/* The same from t0 to now. */
static inline uint64_t stage_sample_ns(uint64_t t0, uint64_t clock_cost)
{
	return stage_scale(shm_now_ns() - t0, clock_cost);
}

/* Seconds by stage from a stage_acct: the sampled stages taken out of the
 * ones they happened in (never below 0). `worker` picks the stage set.
 * Returns the total. */
double stage_seconds(const struct stage_acct *a, int worker, double out[STAGE_MAX]);

/* The stage names ("read", "parse", ..., "handler", ...) and their count. */
const char *stage_name(int worker, unsigned stage);
unsigned stage_count(int worker);

/* ---- end-to-end latency ---- */

/* Before it publishes records to a ring, the supervisor stamps the ring's
 * write position with the time the oldest read call with records not yet
 * published began: the records up to that position were read at or after
 * it. The worker looks its batch's oldest record up at commit, so a latency
 * is an upper bound, by one read call (at most SRC_BUDGET events) and the
 * spacing of the stamps (STAGE_STAMP_EVERY of the ring, or 1 ms). */
#define STAGE_STAMPS 512	  /* per partition: two rings' worth at least, or 0.5 s */
#define STAGE_STAMP_EVERY 256	  /* a stamp when 1/this of the ring is new */
#define STAGE_STAMP_NS 1000000ull /* ... or when a millisecond has passed */

struct stage_stamp {
	_Atomic uint64_t pos;
	_Atomic uint64_t ns;
};

struct stage_stamps {
	_Atomic uint64_t n; /* stamps written; the newest is at (n - 1) % STAGE_STAMPS */
	struct stage_stamp s[STAGE_STAMPS];
};

/* Producer: note that the ring's records end at `pos` and the read call
 * that put them began at `ns`. */
void stage_stamp(struct stage_stamps *st, uint64_t pos, uint64_t ns);

/* Consumer: the time the record ending at `end` was read, at the earliest
 * (past the newest stamp: that one's); 0 when it is older than every
 * stamp kept (a worker far behind), or there is none yet. */
uint64_t stage_read_ns(const struct stage_stamps *st, uint64_t end);

/* ---- heavy hitters ---- */

#define HOT_KEY_MAX 48 /* bytes of a key kept (longer ones are cut) */
#define HOT_SHOWN 8    /* the top keys a partition publishes */
#define HOT_SLOTS 64   /* counters a worker keeps (space-saving) */

/* Space-saving (Metwally et al.): HOT_SLOTS counters; an unseen key takes
 * the smallest one's place and inherits its count as its error. Any key
 * with more than total / HOT_SLOTS events is among the counters. Private
 * to a worker. */
struct hot_slot {
	uint64_t count, error, hash;
	uint8_t len;
	char key[HOT_KEY_MAX];
};

struct hot_table {
	struct hot_slot slot[HOT_SLOTS];
	unsigned used;
	uint64_t total; /* events counted */
};

/* Count one event of `key`. */
void hot_add(struct hot_table *h, const char *key, size_t len, uint64_t weight);

/* The published top keys of one partition, read by anyone: a seqlock
 * (odd while being written). */
struct hot_pub {
	_Atomic uint32_t seq;
	uint32_t n;
	uint64_t total;
	struct {
		uint64_t count;
		uint8_t len;
		char key[HOT_KEY_MAX];
	} top[HOT_SHOWN];
};

/* Publish the table's top keys, the heaviest first. */
void hot_publish(const struct hot_table *h, struct hot_pub *pub);

/* A consistent copy of what was published (0), or -1 after a few tries
 * while the worker keeps writing. */
int hot_read(const struct hot_pub *pub, struct hot_pub *out);

#endif
