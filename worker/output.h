/* output.h - where a worker's batches go: [output] type = file, zmq, kafka
 * or none, each a struct output_ops, chosen by output_ops(type).
 *
 * The worker writes a batch's output before it commits the batch (the
 * shard records the output's new length and the batch's highest seq in one
 * transaction), so a batch that never commits is written again by the
 * worker that redoes it: a file output cuts what is past the recorded
 * length at open, so its lines land exactly once; zmq and Kafka outputs are
 * at-least-once (the seq tells the copies apart).
 *
 * A new output: one file implementing the ops, and its row in output.c's
 * table (and its name in cfg.c's output_types).
 */
#ifndef RM_OUTPUT_H
#define RM_OUTPUT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

struct kout;
struct rm_ctx;
struct shm_worker;

/* What an output may use of its worker. It lives as long as the worker,
 * so an output may keep a pointer to it. */
struct output_env {
	const struct cfg *cfg;
	unsigned partition;
	struct shm_worker *stats;    /* heartbeat_ns, kept fresh while blocked; kafka_lost */
	volatile sig_atomic_t *stop; /* the worker's SIGTERM flag */
	struct kout *kout;	     /* the worker's Kafka producer, when .producer */
};

struct output_ops {
	const char *name; /* its [output] type */
	int producer;	  /* writes through the worker's Kafka producer (env->kout) */
	int keep_lines;	  /* wants each line's key and seq (ctx->lines) */
	long fds;	  /* descriptors it needs beyond the worker's own */

	/* Open for env->partition. *len is the output's length as of the last
	 * commit: an output that keeps its bytes where a restart sees them
	 * cuts what lies past it (a batch that never committed), or lowers
	 * *len when it holds less. Returns 0 and *state, or -1 (logged). */
	int (*open)(void **state, const struct output_env *env, uint64_t *len);

	/* The batch's output (ctx->out, ctx->out_len bytes; ctx->lines with
	 * keep_lines), at length `at`; called before the batch commits, and
	 * returns once the output holds it as safely as the commit needs,
	 * fsync aside (see sync): written to the file, queued by libzmq,
	 * acknowledged by Kafka. Returns 0, or -1 (logged; a wait that a stop
	 * request ended, too): the batch must not commit. */
	int (*write_batch)(void *state, const struct rm_ctx *ctx, uint64_t at);

	/* Make everything written so far durable: with sync = batch after each
	 * batch that wrote something, with sync = periodic every
	 * sync_interval. Returns 0, or -errno when the fsync failed (fatal to
	 * the worker), with *what naming the file. NULL: nothing to sync. */
	int (*sync)(void *state, const char **what);

	/* Close; state NULL is allowed. */
	void (*close)(void *state);
};

extern const struct output_ops output_file, output_zmq, output_kafka;

/* The ops of [output] type `type` (a NULL member is one the output does
 * not need), or NULL for a type without a row in the table. */
const struct output_ops *output_ops(enum cfg_output_type type);

/* Kafka source: the supervisor says the group took the partition away
 * (another instance may own it already): nothing more is written, nothing
 * committed. Returns 0 while the partition is still ours, else -1, logging
 * that the batch was given up before `before` ("committing it"). */
int output_owned(const struct output_env *env, const char *before);

#endif
