/* faulty_ledger.c - the built-in ledger with faults on demand, for the
 * supervision tests. It delegates every event to the ledger (resolved from
 * the ringmaster executable), except:
 *
 *   [handler] crash_payload = P   abort() on an event whose payload is P
 *   [handler] hang_payload = P    sleep forever on an event whose payload is P
 *   [handler] sleep_us = N        sleep N microseconds before every event
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringmaster.h"

extern const struct rm_handler ledger_handler;

static int payload_is(const struct rm_event *ev, const char *want)
{
	return want && strlen(want) == ev->payload_len &&
	       memcmp(want, ev->payload, ev->payload_len) == 0;
}

static int faulty_process(rm_ctx *ctx, void *state, const struct rm_event *ev)
{
	const char *sleep_us = rm_param(ctx, "sleep_us");
	if (sleep_us)
		usleep((useconds_t)atoi(sleep_us));
	if (payload_is(ev, rm_param(ctx, "crash_payload")))
		abort();
	if (payload_is(ev, rm_param(ctx, "hang_payload")))
		for (;;)
			pause();
	return ledger_handler.process(ctx, state, ev);
}

static int faulty_init(rm_ctx *ctx, void **state)
{
	return ledger_handler.init ? ledger_handler.init(ctx, state) : 0;
}

static void faulty_fini(rm_ctx *ctx, void *state)
{
	if (ledger_handler.fini)
		ledger_handler.fini(ctx, state);
}

const struct rm_handler rm_handler_entry = {
    .abi_version = RM_ABI_VERSION,
    .name = "faulty_ledger",
    .init = faulty_init,
    .process = faulty_process,
    .fini = faulty_fini,
};
