/* event.h - what one line of a text source (file, stdin, zmq) means: an
 * event `key<delimiter>payload`, or not an event and the reason why.
 *
 * Pure: no I/O, no allocation, no state. The sources count, dispatch and
 * dead-letter; this decides, so a line means the same whatever carried it,
 * and the fuzzer (tests/fuzz/fuzz_event.c) can drive the decision alone.
 */
#ifndef RM_EVENT_H
#define RM_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Longest key (README.md: a longer one makes the line not an event; the
 * ring takes RING_KEY_MAX, the same). */
#define EVENT_KEY_MAX 255u

/* One line, split. key is line[0..key_len), the delimiter is at line[key_len]
 * and the payload is line[key_len + 1 .. len). */
struct event_line {
	size_t len;	/* the line without a trailing CR */
	size_t key_len; /* 1..EVENT_KEY_MAX; 0 when the line is not an event */
	const char *payload;
	size_t payload_len;
};

/* Split `line` (len bytes, without its newline, not NUL-terminated; a
 * trailing CR is dropped) at the first `delim`. Returns NULL and fills *ev
 * for an event; otherwise the reason it is not one, a constant word for the
 * dead-letter file, checked in this order:
 *
 *   too_long      len (without the CR) over max_event_size
 *   empty_line    nothing at all
 *   no_delimiter  no `delim` in the line
 *   empty_key     the line starts with `delim`
 *   key_too_long  more than EVENT_KEY_MAX bytes before `delim`
 *
 * ev->len is set in both cases: the length of the line to dead-letter. */
const char *event_parse_line(const char *line, size_t len, char delim, uint64_t max_event_size,
			     struct event_line *ev);

#endif
