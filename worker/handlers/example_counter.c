/* example_counter.c - a complete ringmaster handler plugin, written to be
 * read: copy it to start your own.
 *
 * It counts the events seen for each key and, for every event, writes one
 * output line `key<TAB>count` (or `prefix key<TAB>count` when the config
 * sets `prefix` in its [handler] section).
 *
 * Build it on its own, against nothing but the public header:
 *
 *   cc -shared -fPIC -I/usr/local/include -o example_counter.so example_counter.c
 *
 * (the ringmaster Makefile does this for every worker/handlers/ file other
 * than the built-in ledger, into build/handlers/). Do not link any library:
 * the rm_* calls are defined by the ringmaster executable, which exports
 * them, and the dynamic linker binds them when the worker dlopen()s the .so.
 *
 * Then point the config at it:
 *
 *   [worker]
 *   handler = /path/to/example_counter.so
 *   [handler]
 *   prefix = count
 *
 * Things every handler should know, shown below:
 *
 *  - One instance runs in each worker process, for that worker's partition,
 *    on one thread. Keep your data in the pointer init() hands back rather
 *    than in globals, so that a test harness can run several instances.
 *  - State is per key and belongs to the partition: no other worker ever sees
 *    this key, so read-modify-write needs no locking.
 *  - Nothing you do is durable until the worker commits the batch; a crash
 *    replays the batch from the last commit, and your state puts, emits and
 *    counts are replayed with it. So be deterministic: same events, same
 *    effects. Do not write files or talk to the network from process().
 *  - Data you get (events, values) is not NUL-terminated: use the lengths.
 */
#include <stdint.h>
#include <string.h>

#include "ringmaster.h"

/* A count never needs more than 20 digits; a line is the prefix, a space,
 * the key (at most 255 bytes), a tab and the count. We refuse prefixes that
 * would not fit so process() can use a fixed buffer and never allocate. */
#define COUNTER_PREFIX_MAX 64
#define COUNTER_LINE_MAX (COUNTER_PREFIX_MAX + 1 + 255 + 1 + 20)

/* Parse a decimal count as stored by this handler. Returns 0, or -1 if the
 * value is not one (another handler wrote this state dir?). */
static int parse_count(const struct rm_value *v, uint64_t *out)
{
	uint64_t n = 0;

	if (v->len == 0 || v->len > 20)
		return -1;
	for (size_t i = 0; i < v->len; i++) {
		unsigned d = (unsigned)((unsigned char)v->data[i] - '0');

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
}

/* Write n in decimal at p; returns the number of bytes written. Handlers
 * run once per event, millions of times a second: formatting by hand is
 * several times faster than snprintf. */
static size_t format_count(char *p, uint64_t n)
{
	char tmp[20];
	size_t len = 0, i = 0;

	do {
		tmp[len++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	while (len)
		p[i++] = tmp[--len];
	return i;
}

/* init: called once per worker process. Nothing to set up here, but a real
 * handler might read its [handler] settings once (rm_param) and keep them in
 * *state. We only check the setting so that a bad config fails at start,
 * with a message, rather than on the first event. */
static int counter_init(rm_ctx *ctx, void **state)
{
	const char *prefix = rm_param(ctx, "prefix");

	*state = NULL;
	if (prefix && strlen(prefix) > COUNTER_PREFIX_MAX) {
		rm_log(ctx, RM_LOG_ERROR, "example_counter: prefix is longer than %d bytes",
		       COUNTER_PREFIX_MAX);
		return -1;
	}
	rm_log(ctx, RM_LOG_INFO, "example_counter: partition %u of %u ready", rm_partition(ctx),
	       rm_partitions(ctx));
	return 0;
}

/* process: one event. Return RM_OK when done, RM_REJECT (after rm_reject) for
 * an event that is bad in itself, RM_ERROR when something is wrong that a
 * retry could fix or that needs a person: the batch is then not committed. */
static int counter_process(rm_ctx *ctx, void *state, const struct rm_event *ev)
{
	struct rm_value old;
	uint64_t count = 0;
	char line[COUNTER_LINE_MAX], *p = line;
	(void)state;

	/* 0. The ABI promises keys of 1..255 bytes; checking costs nothing and
	 * keeps the fixed-size line buffer safe whatever happens upstream. */
	if (ev->key_len == 0 || ev->key_len > 255) {
		rm_reject(ctx, "bad_key");
		return RM_REJECT;
	}

	/* 1. Read this key's state: missing means we never saw the key. */
	int rc = rm_state_get(ctx, ev->key, ev->key_len, &old);

	if (rc < 0)
		return RM_ERROR; /* a storage error: let the worker retry */
	if (rc == RM_FOUND && parse_count(&old, &count) < 0) {
		rm_log(ctx, RM_LOG_ERROR, "example_counter: state of '%.*s' is not a count",
		       (int)ev->key_len, ev->key);
		return RM_ERROR;
	}
	count++;

	/* 2. Write it back. Later rm_state_get calls in this batch see it. */
	char digits[20];
	size_t nd = format_count(digits, count);

	if (rm_state_put(ctx, ev->key, ev->key_len, digits, nd) < 0)
		return RM_ERROR;

	/* 3. Emit the output line (the worker adds the newline). The prefix is
	 * looked up per event because a reload may change it; the pointer is
	 * valid until the next reload, so it could also be cached in on_reload. */
	const char *prefix = rm_param(ctx, "prefix");

	if (prefix && *prefix) {
		size_t n = strlen(prefix);

		if (n > COUNTER_PREFIX_MAX)
			n = COUNTER_PREFIX_MAX; /* changed by a reload after init */
		memcpy(p, prefix, n);
		p += n;
		*p++ = ' ';
	}
	memcpy(p, ev->key, ev->key_len);
	p += ev->key_len;
	*p++ = '\t';
	memcpy(p, digits, nd);
	p += nd;
	if (rm_emit(ctx, line, (size_t)(p - line)) < 0)
		return RM_ERROR;

	/* 4. Count the outcome: it shows in the end-of-run summary (stderr and
	 * ringmaster --summary). */
	rm_count(ctx, "counted");
	return RM_OK;
}

/* The entry point ringmaster looks up with dlsym(). The ABI version lets it
 * refuse a plugin built against an incompatible header. fini and on_reload
 * are optional: we hold no resources and cache nothing. */
/* The [handler] settings it reads: any other is warned about. */
const char *const rm_handler_params[] = {"prefix", NULL};

const struct rm_handler rm_handler_entry = {
    .abi_version = RM_ABI_VERSION,
    .name = "example_counter",
    .init = counter_init,
    .process = counter_process,
    .fini = NULL,
    .on_reload = NULL,
};
