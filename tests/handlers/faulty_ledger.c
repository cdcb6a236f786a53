/* faulty_ledger.c - the built-in ledger with faults on demand, for the
 * supervision tests. It delegates every event to the ledger (resolved from
 * the ringmaster executable), except:
 *
 *   [handler] crash_payload = P   abort() on an event whose payload is P
 *   [handler] hang_payload = P    sleep forever on an event whose payload is P
 *   [handler] sleep_us = N        sleep N microseconds before every event
 *   [handler] fail_mode = M       fail on every event of partition
 *   [handler] fail_partition = P  P (default: every partition), by M:
 *       abort, exit0 (exit(0)), _exit0 (_exit(0)), error (RM_ERROR),
 *       unknown (an unknown return code), hang (sleep forever)
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
	const char *mode = rm_param(ctx, "fail_mode"), *part = rm_param(ctx, "fail_partition");
	if (mode && (!part || (unsigned)atoi(part) == rm_partition(ctx))) {
		if (strcmp(mode, "abort") == 0)
			abort();
		if (strcmp(mode, "exit0") == 0)
			exit(0);
		if (strcmp(mode, "_exit0") == 0)
			_exit(0);
		if (strcmp(mode, "error") == 0)
			return RM_ERROR;
		if (strcmp(mode, "unknown") == 0)
			return 42;
		if (strcmp(mode, "hang") == 0)
			for (;;)
				pause();
	}
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

/* The [handler] settings it reads: any other is warned about. */
const char *const rm_handler_params[] = {"crash_payload", "hang_payload",   "sleep_us",
					 "fail_mode",	  "fail_partition", NULL};

const struct rm_handler rm_handler_entry = {
    .abi_version = RM_ABI_VERSION,
    .name = "faulty_ledger",
    .init = faulty_init,
    .process = faulty_process,
    .fini = faulty_fini,
};
