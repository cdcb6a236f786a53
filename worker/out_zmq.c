/* out_zmq.c - [output] type = zmq: each worker PUSHes its batches' lines
 * to [output] connect through its own socket (sink.h). A batch redone after
 * a crash is sent again: at least once. */
#include <stdio.h>

#include "ctx.h"
#include "log.h"
#include "output.h"
#include "shm.h"
#include "sink.h"

#define ZMQ_FDS 16 /* a libzmq context: its threads' pipes and the socket */

static int out_zmq_open(void **state, const struct output_env *env, uint64_t *len)
{
	char err[512];
	struct sink *s;
	(void)len;
	*state = NULL;
	if (sink_open(&s, env->cfg, env->partition, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	sink_watch(s, &env->stats->heartbeat_ns, env->stop);
	*state = s;
	return 0;
}

/* Blocks while the consumer takes nothing: backpressure, never a drop. */
static int out_zmq_write_batch(void *state, const struct rm_ctx *ctx, uint64_t at)
{
	(void)at;
	if (!ctx->out_len)
		return 0;
	/* Logged; or -EINTR: asked to stop while blocked. */
	return sink_send(state, ctx->out, ctx->out_len) != 0 ? -1 : 0;
}

static void out_zmq_close(void *state)
{
	sink_close(state);
}

const struct output_ops output_zmq = {
    .name = "zmq",
    .fds = ZMQ_FDS,
    .open = out_zmq_open,
    .write_batch = out_zmq_write_batch,
    .close = out_zmq_close,
};
