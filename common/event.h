/* event.h - what one line of a text source (file, stdin, zmq) means: an
 * event `key<delimiter>payload` ([source] format = tsv) or a JSON object
 * holding its key in a field (format = jsonl), or not an event and the
 * reason why.
 *
 * Pure: no I/O, no state; event_parse_line allocates nothing, and
 * event_parse_json frees what json-c allocated before it returns. The sources count, dispatch and
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

/* A JSON line: the payload is the whole line (the key field included, so a
 * handler sees the object as it came); the key is the key field's text,
 * copied out of the parse. */
struct event_json {
	size_t len;	/* the line without a trailing CR */
	size_t key_len; /* 1..EVENT_KEY_MAX; 0 when the line is not an event */
	char key[EVENT_KEY_MAX];
	const char *payload; /* the line itself */
	size_t payload_len;
};

/* Parse `line` (len bytes, as for event_parse_line) as one JSON object, as
 * json-c's strict mode reads it (leading and trailing white space allowed,
 * nothing else after the object), and take its top-level field `key_field`
 * (NUL-terminated) as the key. Returns NULL and fills *ev for an event;
 * otherwise the reason, checked in this order:
 *
 *   too_long    len (without the CR) over max_event_size
 *   empty_line  nothing at all
 *   bad_json    not one valid JSON object (an array, a number, "{" alone,
 *               invalid UTF-8, two objects on one line)
 *   no_key      no field key_field at the top level
 *   bad_key     the field is neither a string nor an integer; a string
 *               that is empty, longer than EVENT_KEY_MAX or holds a tab, a
 *               newline or a CR (bytes a TSV key cannot hold); an integer
 *               json-c may have clamped (INT64_MIN, UINT64_MAX)
 *
 * An integer key is its decimal text: 42 and "42" are the same key. If
 * key_field appears twice, the last one counts (json-c's rule). ev->len is
 * set in every case. */
const char *event_parse_json(const char *line, size_t len, const char *key_field,
			     uint64_t max_event_size, struct event_json *ev);

#endif
