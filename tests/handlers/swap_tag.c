/* swap_tag.c - the handler of the .so live swap test (test_so_swap.sh):
 * each event emits "seq<TAB>key<TAB>TAG" and counts itself in its key's
 * state, so the output tells which library handled it and the state that
 * each was handled once. Built three times (Makefile): TAG "v1" as is,
 * "v2" (-DSWAP_TAG), and a copy that declares another ABI version
 * (-DSWAP_ABI), which a reload must refuse.
 *
 *   [handler] spin_us = N   busy-wait N microseconds before every event
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ringmaster.h"

#ifndef SWAP_TAG
#define SWAP_TAG "v1"
#endif
#ifndef SWAP_ABI
#define SWAP_ABI RM_ABI_VERSION
#endif

static void spin(rm_ctx *ctx)
{
	const char *us = rm_param(ctx, "spin_us");
	struct timespec t0, t;
	if (!us)
		return;
	long ns = atol(us) * 1000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < ns);
}

static int tag_process(rm_ctx *ctx, void *state, const struct rm_event *ev)
{
	char line[400], num[32];
	struct rm_value v;
	long n = 0;
	(void)state;
	spin(ctx);
	if (rm_state_get(ctx, ev->key, ev->key_len, &v) == RM_FOUND && v.len < sizeof(num)) {
		memcpy(num, v.data, v.len);
		num[v.len] = '\0';
		n = atol(num);
	}
	int len = snprintf(num, sizeof(num), "%ld", n + 1);
	if (rm_state_put(ctx, ev->key, ev->key_len, num, (size_t)len) != 0)
		return RM_ERROR;
	len = snprintf(line, sizeof(line), "%llu\t%.*s\t%s", (unsigned long long)ev->seq,
		       (int)ev->key_len, ev->key, SWAP_TAG);
	return rm_emit(ctx, line, (size_t)len) == 0 ? RM_OK : RM_ERROR;
}

/* The [handler] settings it reads: any other is warned about. */
const char *const rm_handler_params[] = {"spin_us", NULL};

const struct rm_handler rm_handler_entry = {
    .abi_version = SWAP_ABI,
    .name = "swap_tag",
    .process = tag_process,
};
