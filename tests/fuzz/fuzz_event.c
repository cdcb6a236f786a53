/* fuzz_event.c - libFuzzer target for event_parse_line (common/event.c): any
 * line, with any delimiter and any max_event_size, must be split into a key
 * and a payload that lie inside the line, or refused with the reason
 * event.h gives, in its order. The input is
 *
 *   byte 0     the delimiter
 *   bytes 1-2  max_event_size - 16, little-endian (16..65551: the small
 *              limits are the interesting ones)
 *   the rest   the line, in a buffer of exactly its size, so that reading
 *              one byte past it is an ASan report */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

/* The reason event.h promises for a line of len bytes (its CR dropped). */
static const char *expected_reason(const char *line, size_t len, char delim, uint64_t max)
{
	const char *at = memchr(line, delim, len);

	if (len > max)
		return "too_long";
	if (!len)
		return "empty_line";
	if (!at)
		return "no_delimiter";
	if (at == line)
		return "empty_key";
	return (size_t)(at - line) > EVENT_KEY_MAX ? "key_too_long" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_line ev;
	const char *reason, *want;
	size_t len, trimmed;
	uint64_t max;
	char delim, *line;

	if (size < 3)
		return 0;
	delim = (char)data[0];
	max = 16 + (uint64_t)(data[1] | data[2] << 8);
	len = size - 3;
	line = malloc(len ? len : 1);
	if (!line)
		return 0;
	memcpy(line, data + 3, len);
	trimmed = len && line[len - 1] == '\r' ? len - 1 : len;
	memset(&ev, 0xA5, sizeof(ev));
	reason = event_parse_line(line, len, delim, max, &ev);
	want = expected_reason(line, trimmed, delim, max);
	check(ev.len == trimmed);
	if (want) {
		check(reason && strcmp(reason, want) == 0);
	} else {
		check(!reason);
		check(ev.key_len >= 1 && ev.key_len <= EVENT_KEY_MAX && ev.key_len < trimmed);
		check(line[ev.key_len] == delim && !memchr(line, delim, ev.key_len));
		check(ev.payload == line + ev.key_len + 1);
		check(ev.key_len + 1 + ev.payload_len == trimmed);
	}
	free(line);
	return 0;
}
