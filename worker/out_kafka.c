/* out_kafka.c - [output] type = kafka: each line becomes a record of
 * [output] topic, keyed by its event's key, with the event's seq in the
 * header "seq", produced through the worker's own producer (kout.h), which
 * a Kafka source's changelog shares. A batch redone after a crash is
 * produced again: at least once.
 */
#include "ctx.h"
#include "kout.h"
#include "output.h"

static int out_kafka_open(void **state, const struct output_env *env, uint64_t *len)
{
	(void)len;
	*state = (void *)env; /* the producer is the worker's */
	return 0;
}

/* Before the commit, and before the batch goes to the changelog, where
 * another owner may apply it: the batch's output is in Kafka first. */
static int out_kafka_write_batch(void *state, const struct rm_ctx *ctx, uint64_t at)
{
	const struct output_env *env = state;
	(void)at;
	if (!ctx->n_lines)
		return 0;
	if (output_owned(env, "producing its output") != 0 ||
	    kout_send_lines(env->kout, ctx) != 0 || kout_flush(env->kout) != 0)
		return -1;
	return 0;
}

const struct output_ops output_kafka = {
    .name = "kafka",
    .producer = 1,
    .keep_lines = 1,
    .open = out_kafka_open,
    .write_batch = out_kafka_write_batch,
};
