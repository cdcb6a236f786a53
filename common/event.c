/* event.c - one line of a text source into an event, or the reason it is
 * not one (event.h). Kept apart from the sources so it stays pure. */
#include "event.h"

#include <string.h>

const char *event_parse_line(const char *line, size_t len, char delim, uint64_t max_event_size,
			     struct event_line *ev)
{
	const char *at;

	if (len && line[len - 1] == '\r')
		len--;
	*ev = (struct event_line){.len = len};
	if (len > max_event_size)
		return "too_long";
	if (!len)
		return "empty_line";
	at = memchr(line, delim, len);
	if (!at)
		return "no_delimiter";
	if (at == line)
		return "empty_key";
	if ((size_t)(at - line) > EVENT_KEY_MAX)
		return "key_too_long";
	ev->key_len = (size_t)(at - line);
	ev->payload = at + 1;
	ev->payload_len = len - ev->key_len - 1;
	return NULL;
}
