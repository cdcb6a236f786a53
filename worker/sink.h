/* sink.h - the socket of a worker's zmq output ([output] type = zmq,
 * out_zmq.c): a PUSH socket connected to [output] connect, with its own
 * libzmq context, made by the worker after fork (it never touches the
 * supervisor's libzmq).
 *
 * Message format: one frame holding whole output lines, each with its '\n',
 * exactly the bytes the file output would append to pN.tsv; at most
 * SINK_MSG_MAX bytes unless one line alone is longer (then it travels
 * alone). It is the format the zmq source and `ringctl send` use, so a
 * consumer splits on '\n', and one ringmaster can feed another; the
 * framing itself is common/lines.c, which `ringctl send` shares.
 *
 * Lines are sent as the handler emitted them. The ledger's first column is
 * the event's seq; a handler whose zmq consumer must drop duplicates should
 * do the same (see ringmaster.ini(5), [output]).
 *
 * Sends block while the consumer is not taking messages (SINK_SNDHWM
 * messages queued per worker at most): backpressure, never a drop.
 */
#ifndef RM_SINK_H
#define RM_SINK_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lines.h" /* the framing: SINK_MSG_MAX, sink_chunk_len */

struct cfg;
struct sink;

#define SINK_SNDHWM 64 /* messages libzmq may queue per worker */

/* Connect to cfg->output_connect (libzmq connects in the background and
 * reconnects by itself). Returns 0, or -1 with a message in err naming the
 * endpoint. `partition` is for messages. */
int sink_open(struct sink **out, const struct cfg *cfg, unsigned partition, char *err,
	      size_t errlen);

/* While a send waits for the consumer, keep *heartbeat_ns fresh (the
 * watchdog must not take a worker held by backpressure for a hung one), and
 * once *stop is set (the worker's SIGTERM flag) give the wait stop_timeout
 * more, then give up. Optional; either may be NULL. */
void sink_watch(struct sink *s, _Atomic uint64_t *heartbeat_ns, volatile sig_atomic_t *stop);

/* Send `len` bytes of '\n'-separated lines (a batch's output) as messages
 * of whole lines. Blocks while the consumer is not taking them, warning in
 * the log after a few seconds. Returns 0 once libzmq holds every message;
 * -EINTR when the worker was asked to stop (*stop, or a signal during a
 * wait) and a wait then lasted past [ringmaster] stop_timeout; another
 * -errno on an error.
 * On failure (logged) some messages may have gone: do not commit the
 * batch, so that it is redone and sent whole. */
int sink_send(struct sink *s, const char *lines, size_t len);

/* Let libzmq deliver what it holds for up to [ringmaster] stop_timeout,
 * then close. NULL is allowed. */
void sink_close(struct sink *s);

#endif
