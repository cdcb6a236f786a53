/* fuzz_event_json.c - libFuzzer target for event_parse_json (common/event.c):
 * any line must be an event whose key lies in 1..EVENT_KEY_MAX bytes
 * without a tab, newline or CR and whose payload is the line, or be refused
 * with one of event.h's reasons. The key field is "k"; the input is
 *
 *   bytes 0-1  max_event_size - 16, little-endian
 *   the rest   the line, in a buffer of exactly its size */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const reasons[] = {"too_long", "empty_line", "bad_json", "no_key",
					      "bad_key"};
	static struct event_json_parser jp;
	struct event_json ev;
	const char *reason;
	size_t len, trimmed;
	uint64_t max;
	char *line;
	int known = 0;

	if (size < 2)
		return 0;
	max = 16 + (uint64_t)(data[0] | data[1] << 8);
	len = size - 2;
	line = malloc(len ? len : 1);
	if (!line)
		return 0;
	memcpy(line, data + 2, len);
	trimmed = len && line[len - 1] == '\r' ? len - 1 : len;
	reason = event_parse_json(&jp, line, len, "k", max, &ev);
	check(ev.len == trimmed);
	if (reason) {
		for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
			known |= !strcmp(reason, reasons[i]);
		check(known && ev.key_len == 0);
		check((strcmp(reason, "too_long") == 0) == (trimmed > max));
	} else {
		check(trimmed <= max && ev.key_len >= 1 && ev.key_len <= EVENT_KEY_MAX);
		check(!memchr(ev.key, '\t', ev.key_len) && !memchr(ev.key, '\n', ev.key_len) &&
		      !memchr(ev.key, '\r', ev.key_len));
		check(ev.payload == line && ev.payload_len == trimmed);
	}
	free(line);
	return 0;
}
