/* null.c - a handler that does nothing with its events: no table, no
 * state, no output. With `[output] type = none` what is left is the
 * pipeline itself, the supervisor's reading, parsing, partitioning and
 * copying into the rings and a worker's taking its batches and committing
 * them (tests/bench/supervisor.sh). */
#include "ringmaster.h"

static int null_process(rm_ctx *ctx, void *state, const struct rm_event *ev)
{
	(void)ctx;
	(void)state;
	(void)ev;
	return RM_OK;
}

const struct rm_handler rm_handler_entry = {
    .abi_version = RM_ABI_VERSION,
    .name = "null",
    .process = null_process,
};
