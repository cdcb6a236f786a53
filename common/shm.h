/* shm.h - the one shared mapping the supervisor makes before it forks: a
 * status block per partition (counters the worker bumps, read by the
 * supervisor and later by the control socket at no cost to the worker) and
 * one ring per partition. Nothing inside holds a pointer: a child inherits
 * the mapping at the same address, and the process-local `workers` and
 * `rings` arrays below are valid in it too. */
#ifndef RM_SHM_H
#define RM_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h" /* shm_now_ns, for the heartbeats */
#include "ring.h"
#include "stage.h"

#define SHM_OUTCOMES 32
#define SHM_OUTCOME_NAME 32
#define SHM_NO_SEQ UINT64_MAX
#define SHM_HIST_BUCKETS 40 /* bucket i counts values in [2^(i-1), 2^i) */

struct shm_outcome {
	char name[SHM_OUTCOME_NAME];
	_Atomic uint64_t count;
};

/* Why the next worker dead-letters skip_seq: workers kept dying on it, or
 * a Lua handler's guard stopped one that ran past lua_timeout. */
#define SHM_SKIP_POISON 0u
#define SHM_SKIP_LUA_TIMEOUT 1u

/* Per partition. Only the partition's worker writes the counters; anyone
 * reads them. Counts cover committed batches only, so a worker that dies
 * mid-batch never counts an event twice. */
struct shm_worker {
	_Atomic int32_t pid;
	_Atomic uint32_t n_outcomes; /* names filled so far (release) */
	_Atomic uint64_t processed;  /* events run through the handler */
	_Atomic uint64_t skipped;    /* seq at or below applied_seq */
	_Atomic uint64_t rejected;   /* handler RM_REJECT: dead-lettered */
	_Atomic uint64_t batches;
	_Atomic uint64_t consumed;    /* ring records acked (lag = ring records - consumed) */
	_Atomic uint64_t applied_seq; /* last committed seq */
	_Atomic uint64_t
	    heartbeat_ns; /* CLOCK_MONOTONIC, bumped every batch and when idle or blocked */
	_Atomic uint64_t current_seq; /* the event in the handler, SHM_NO_SEQ between */
	_Atomic uint64_t skip_seq;    /* poison: the next worker dead-letters this seq */
	_Atomic uint32_t skip_why;    /* why: SHM_SKIP_POISON or SHM_SKIP_LUA_TIMEOUT */
	/* worker: events the handler failed on in a row without dying (a Lua
	 * error or timeout), dead-lettered; at fail_after it exits
	 * WRK_EXIT_HANDLER_FAILED instead. The supervisor zeroes it. */
	_Atomic uint32_t handler_fails;
	/* A barrier through the ring (worker.c, reload.c): the supervisor
	 * sets barrier_pos (the ring's write position then), barrier_what,
	 * barrier_from, then bumps barrier_id. The worker commits every
	 * record before barrier_pos, acts on the barrier between two batches
	 * and sets barrier_done = barrier_id: each partition switches at a
	 * batch boundary of its own, at the same point of the source. */
	_Atomic uint64_t barrier_id;	  /* supervisor: the latest barrier */
	_Atomic uint64_t barrier_pos;	  /* supervisor: ring position it stands at */
	_Atomic uint64_t barrier_what;	  /* supervisor: the handler version to switch to */
	_Atomic uint64_t barrier_from;	  /* supervisor: the version before it */
	_Atomic uint64_t barrier_done;	  /* worker: the last barrier acted on */
	_Atomic uint64_t handler_version; /* worker: content hash of the handler it runs */
	_Atomic uint64_t switch_seq;	  /* worker: last seq before its last switch */
	/* A barrier is a handler switch (what, from) or a savepoint: then
	 * what == from, and the worker copies its shard there into the
	 * savepoint's directory (shm_sup) when savepoint_live still names
	 * savepoint_id, and reports below before it sets barrier_done. */
	_Atomic uint32_t barrier_kind; /* supervisor: SHM_BARRIER_* */
	/* A rescale's cut (SHM_CUT_PENDING): between two batches the worker
	 * reports its committed ring position and the seq after the last it
	 * applied (0: none), then sets cut_ready = barrier_id. */
	_Atomic uint64_t cut_committed, cut_next, cut_ready;
	_Atomic int32_t savepoint_rc;	     /* worker: 0, or -errno of its copy */
	_Atomic uint64_t barrier_savepoints; /* supervisor: how many barriers were savepoints */
	_Atomic uint64_t savepoint_id;	     /* supervisor: the savepoint of the barrier */
	_Atomic uint64_t savepoint_size, savepoint_sum;		  /* worker: its copy */
	_Atomic uint64_t savepoint_applied, savepoint_output_len; /* worker: at the cut */
	_Atomic uint64_t savepoint_replay;			  /* worker: 0 none */
	_Atomic uint32_t savepoint_has_applied;			  /* worker */
	/* Bisecting a failed batch (worker.c, lifecycle.c). The worker notes
	 * the batch in hand; after a death in it, the supervisor tells the
	 * next worker to take at most batch_limit events per batch until it
	 * has committed past limit_until, halving the limit at every death. */
	_Atomic uint32_t batch_n;	 /* events in the batch in hand */
	_Atomic uint32_t batch_limit;	 /* 0: none; else the most events per batch */
	_Atomic uint64_t batch_last_seq; /* seq of the last event of the batch in hand */
	_Atomic uint64_t limit_until;	 /* batch_limit holds until this seq is committed */
	_Atomic uint64_t good_seq;   /* last committed event the handler finished, or SHM_NO_SEQ */
	_Atomic uint64_t busy_ns;    /* time spent on batches */
	_Atomic uint64_t wait_ns;    /* time spent waiting for events */
	_Atomic uint64_t started_ns; /* when this worker process started */
	_Atomic uint32_t restoring;  /* 1 while rebuilding state (Kafka) */
	_Atomic uint32_t restore_pct;
	_Atomic uint32_t has_applied; /* applied_seq is meaningful (Kafka offsets) */
	/* Durability (see worker.c, maybe_sync): what the last completed
	 * sync made durable. The resume position and Kafka's offsets are
	 * taken from these, never from applied_seq and acked, which may be
	 * committed but not yet on disk. */
	_Atomic uint32_t has_durable;  /* durable_seq is meaningful */
	_Atomic uint64_t durable_seq;  /* applied_seq as of the last sync */
	_Atomic uint64_t durable_pos;  /* ring position: every record below it is durable */
	_Atomic uint64_t durable_next; /* seq of the record at durable_pos then, or SHM_NO_SEQ */
	/* supervisor: bumped when it reopens its log file (SIGUSR1, SIGHUP):
	 * the worker reopens log_file before its next record (log_follow) */
	_Atomic uint64_t log_generation;
	_Atomic uint32_t sync_failed; /* an fsync failed: never restart on those pages */
	/* Log2 histograms for percentiles: events per batch, and commit
	 * latency in microseconds. */
	_Atomic uint64_t batch_hist[SHM_HIST_BUCKETS];
	_Atomic uint64_t commit_us_hist[SHM_HIST_BUCKETS];
	_Atomic uint64_t commit_us_sum;
	_Atomic uint64_t batch_events_sum; /* what batch_hist counted, summed */
	/* Where the time goes (stage.h), end-to-end latency in microseconds
	 * (source read to the commit of its batch; with sync = batch, to its
	 * fsync), counted for every event of a batch, and the heaviest keys. */
	struct stage_acct stages;
	_Atomic uint64_t latency_us_hist[SHM_HIST_BUCKETS];
	_Atomic uint64_t latency_us_sum;
	_Atomic uint64_t latency_events;
	struct hot_pub hot;
	struct stage_stamps stamps; /* supervisor: when its records were read */
	struct shm_outcome outcomes[SHM_OUTCOMES];
	/* Kafka fencing (worker/changelog.h), kept together at the end. The
	 * supervisor sets kafka_generation and clears the other two before it
	 * forks the partition's worker, and sets kafka_lost when the group
	 * took the partition away; the worker sets kafka_fenced_by when the
	 * changelog shows that a newer owner fenced it. */
	_Atomic int32_t kafka_generation; /* group generation of the assignment */
	_Atomic uint32_t kafka_lost;	  /* 1: assignment lost: produce and commit nothing */
	_Atomic int64_t kafka_fenced_by;  /* the newer generation seen, 0 if none */
} __attribute__((aligned(128)));

#define SHM_BARRIER_HANDLER 0u
#define SHM_BARRIER_SAVEPOINT 1u
/* A rescale's cut (rescale_sup.c): the worker commits and syncs what is
 * before it, then exits 0, leaving what follows it in the ring. */
#define SHM_BARRIER_STOP 2u
/* A stop barrier's position while the cut is being chosen: each worker
 * reports where it is (cut_ready), then waits for the real one. */
#define SHM_CUT_PENDING UINT64_MAX
#define SHM_SAVEPOINT_DIR 4096

/* The supervisor's own figures. */
struct shm_sup {
	struct stage_acct stages;
	/* 1 while the supervisor waits for input (the source is idle): a
	 * worker waiting for events then is idle, not starved. */
	_Atomic uint32_t waiting_input;
	/* The savepoint being taken (0: none; one that failed is 0 at once,
	 * so a worker still to reach its barrier copies nothing), and the
	 * directory its shards go to (state/pP under it), set before. */
	_Atomic uint64_t savepoint_live;
	char savepoint_dir[SHM_SAVEPOINT_DIR];
} __attribute__((aligned(128)));

struct shm {
	void *base;
	size_t size;
	unsigned partitions;
	struct shm_sup *sup;	    /* inside the mapping */
	struct shm_worker *workers; /* [partitions], inside the mapping */
	struct ring **rings;	    /* [partitions], process-local array */
};

/* Map and lay out everything for `partitions` rings of `ring_size` bytes.
 * Returns 0 or -errno. */
int shm_create(struct shm *s, unsigned partitions, size_t ring_size);
void shm_destroy(struct shm *s);

/* Add `n` to the count of outcome `name` (the worker side). Names beyond
 * SHM_OUTCOMES are counted as "other". */
void shm_count_outcome(struct shm_worker *w, const char *name, uint64_t n);

/* Count `value` into a log2 histogram (the worker side). */
void shm_hist_add(_Atomic uint64_t *hist, uint64_t value);

/* Count `value` `n` times (a batch's events at once). */
void shm_hist_add_n(_Atomic uint64_t *hist, uint64_t value, uint64_t n);

/* The upper bound of bucket i, for cumulative (Prometheus) buckets: every
 * value counted in buckets 0..i is below it. */
uint64_t shm_hist_bound(unsigned i);

/* The value at quantile q (0..1) of a histogram, as the upper bound of its
 * bucket; 0 when empty. */
uint64_t shm_hist_quantile(const _Atomic uint64_t *hist, double q);

#endif
