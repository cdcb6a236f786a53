/* output.c - the outputs a worker can have (see output.h). */
#include "output.h"

#include "log.h"
#include "shm.h"

/* [output] type = none: the handler's lines go nowhere. */
static const struct output_ops output_none = {.name = "none"};

static const struct output_ops *const outputs[] = {
    [CFG_OUTPUT_FILE] = &output_file,
    [CFG_OUTPUT_ZMQ] = &output_zmq,
    [CFG_OUTPUT_NONE] = &output_none,
    [CFG_OUTPUT_KAFKA] = &output_kafka,
};

const struct output_ops *output_ops(enum cfg_output_type type)
{
	if ((size_t)type >= sizeof(outputs) / sizeof(outputs[0]))
		return NULL;
	return outputs[type];
}

int output_owned(const struct output_env *env, const char *before)
{
	if (!atomic_load(&env->stats->kafka_lost))
		return 0;
	log_warn("partition %u: the group took the partition from this instance (assignment "
		 "lost): giving the batch up before %s, without committing it",
		 env->partition, before);
	return -1;
}
