/* event.h - what one line of a text source (file, stdin, zmq) means: an
 * event `key<delimiter>payload` ([source] format = tsv) or a JSON object
 * holding its key in a field (format = jsonl), or not an event and the
 * reason why.
 *
 * Pure: no I/O; event_parse_line allocates nothing and keeps nothing, and
 * event_parse_json keeps nothing from one line to the next but the
 * caller's scratch memory (struct event_json_parser). The sources count, dispatch and
 * dead-letter; this decides, so a line means the same whatever carried it,
 * and the fuzzer (tests/fuzz/fuzz_event.c) can drive the decision alone.
 */
#ifndef RM_EVENT_H
#define RM_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "json_arena.h"

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

/* Scratch memory for event_parse_json, owned by the caller and reused for
 * every line, so that parsing a line calls no malloc (yajl's handle, its
 * stacks and buffers are carved out of it). Zero it once; one thread at a
 * time. */
struct event_json_parser {
	struct json_arena arena;
};

/* Read `line` (len bytes, as for event_parse_line) as a JSON object with
 * yajl's streaming parser, only as far as needed to find its top-level field
 * `key_field` (NUL-terminated): parsing stops at the key's value. Returns
 * NULL and fills *ev for an event; otherwise the reason, checked in this
 * order:
 *
 *   too_long    len (without the CR) over max_event_size
 *   empty_line  nothing at all
 *   bad_json    a syntax error before the key's value was seen, the key's
 *               value not followed by ',' or '}', a top level that is not
 *               an object (an array, a number, a string), invalid UTF-8 in
 *               a string read so far
 *   no_key      the whole line is one valid JSON object, without the field
 *               key_field at its top level
 *   bad_key     the field is neither a string nor an integer; a string
 *               that is empty, longer than EVENT_KEY_MAX or holds a tab, a
 *               newline or a CR (bytes a TSV key cannot hold); an integer
 *               beyond int64 and uint64
 *
 * An integer key is its decimal text: 42 and "42" are the same key. If
 * key_field appears twice, the first one counts. What follows the key's
 * value is not read: `{"k":1,` is an event, and the handler, which gets the
 * whole line, must refuse it (the ledger does: malformed). ev->len is set
 * in every case. */
const char *event_parse_json(struct event_json_parser *jp, const char *line, size_t len,
			     const char *key_field, uint64_t max_event_size, struct event_json *ev);

#endif
