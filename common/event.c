/* event.c - one line of a text source into an event, or the reason it is
 * not one (event.h). Kept apart from the sources so it stays pure. JSON
 * lines go through yajl's streaming parser, stopped as soon as the key's
 * value is seen: no object tree, and nothing read past the key. */
#include "event.h"
#include "json_arena.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* Both formats agree on these: the CR, too_long, empty_line. Returns the
 * reason or NULL, and the length without the CR. */
static const char *line_common(const char *line, size_t *len, uint64_t max_event_size)
{
	if (*len && line[*len - 1] == '\r')
		(*len)--;
	if (*len > max_event_size)
		return "too_long";
	if (!*len)
		return "empty_line";
	return NULL;
}

const char *event_parse_line(const char *line, size_t len, char delim, uint64_t max_event_size,
			     struct event_line *ev)
{
	const char *at, *reason = line_common(line, &len, max_event_size);

	*ev = (struct event_line){.len = len};
	if (reason)
		return reason;
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

/* Where the parse is: the callbacks decide, and return 0 (stop) once the
 * line's fate is known. */
struct json_walk {
	const char *key_field;
	size_t key_field_len;
	struct event_json *ev;
	const char *reason; /* set when decided: NULL with found, or why not */
	unsigned depth;	    /* maps and arrays open */
	int want;	    /* the next value at depth 1 is the key field's */
	int found;	    /* the key's value was seen */
	int closed;	    /* the top-level object ended */
};

/* A value that is not the key's: at the top level (not an object) it ends
 * the line as bad_json; as the key field's value, bad_key. */
static int other_value(struct json_walk *w)
{
	if (w->depth == 0) {
		w->reason = "bad_json";
		return 0;
	}
	if (w->want && w->depth == 1) {
		w->reason = "bad_key";
		return 0;
	}
	return 1;
}

static int on_null(void *ctx)
{
	return other_value(ctx);
}

static int on_boolean(void *ctx, int b)
{
	(void)b;
	return other_value(ctx);
}

static int on_number(void *ctx, const char *s, size_t n)
{
	struct json_walk *w = ctx;
	char text[24];
	int neg = n && s[0] == '-', width;

	if (w->depth != 1 || !w->want)
		return other_value(w);
	w->found = 1;
	w->reason = "bad_key";
	/* An integer (no fraction, no exponent) that fits int64 or uint64, as
	 * its decimal text: -0 is 0. */
	if (n < 1 + (size_t)neg || n > 20)
		return 0;
	memcpy(text, s, n); /* s is not NUL-terminated */
	text[n] = 0;
	if (strcspn(text, ".eE") < n)
		return 0;
	errno = 0;
	if (neg) {
		long long v = strtoll(text, NULL, 10);

		if (errno)
			return 0;
		width = snprintf(text, sizeof(text), "%lld", v);
	} else {
		unsigned long long v = strtoull(text, NULL, 10);

		if (errno)
			return 0;
		width = snprintf(text, sizeof(text), "%llu", v);
	}
	memcpy(w->ev->key, text, (size_t)width);
	w->ev->key_len = (size_t)width;
	w->reason = NULL;
	return 0;
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	struct json_walk *w = ctx;

	if (w->depth != 1 || !w->want)
		return other_value(w);
	w->found = 1;
	w->reason = "bad_key";
	if (!n || n > EVENT_KEY_MAX || memchr(s, '\t', n) || memchr(s, '\n', n) ||
	    memchr(s, '\r', n))
		return 0;
	memcpy(w->ev->key, s, n);
	w->ev->key_len = n;
	w->reason = NULL;
	return 0;
}

static int on_start(void *ctx)
{
	struct json_walk *w = ctx;

	if (w->depth != 0 && !other_value(w))
		return 0;
	w->depth++;
	return 1;
}

static int on_start_array(void *ctx)
{
	struct json_walk *w = ctx;

	if (!other_value(w))
		return 0;
	w->depth++;
	return 1;
}

static int on_end(void *ctx)
{
	struct json_walk *w = ctx;

	if (--w->depth == 0)
		w->closed = 1;
	return 1;
}

static int on_map_key(void *ctx, const unsigned char *s, size_t n)
{
	struct json_walk *w = ctx;

	if (w->depth == 1)
		w->want = n == w->key_field_len && !memcmp(s, w->key_field, n);
	return 1;
}

static const yajl_callbacks walk_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

/* After the key's value: the key field is well formed only if a ',' or the
 * object's '}' follows it (so "01" is not the key 0 and "1 2" not 1). */
static int key_value_ends(const char *line, size_t len, size_t at)
{
	while (at < len && memchr(" \t\r\n", line[at], 4))
		at++;
	return at < len && (line[at] == ',' || line[at] == '}');
}

const char *event_parse_json(struct event_json_parser *jp, const char *line, size_t len,
			     const char *key_field, uint64_t max_event_size, struct event_json *ev)
{
	const char *reason = line_common(line, &len, max_event_size);
	yajl_alloc_funcs af = json_arena_funcs(&jp->arena);
	struct json_walk w = {.key_field = key_field, .key_field_len = strlen(key_field), .ev = ev};
	yajl_status st;
	yajl_handle h;

	ev->len = len;
	ev->key_len = 0;
	ev->payload = line;
	ev->payload_len = len;
	if (reason)
		return reason;
	h = yajl_alloc(&walk_callbacks, &af, &w);
	if (!h)
		return "bad_json"; /* out of memory: the line cannot be read as JSON */
	st = yajl_parse(h, (const unsigned char *)line, len);
	if (st == yajl_status_client_canceled) {
		reason = w.reason;
		if (w.found && !key_value_ends(line, len, yajl_get_bytes_consumed(h)))
			reason = "bad_json";
	} else if (st != yajl_status_ok) {
		reason = "bad_json";
	} else {
		/* All read and the key not seen; what yajl holds back (a
		 * number at the very end) or a missing '}' comes out here. */
		st = yajl_complete_parse(h);
		if (st == yajl_status_client_canceled)
			reason = w.found ? "bad_json" : w.reason;
		else if (st != yajl_status_ok || !w.closed)
			reason = "bad_json";
		else
			reason = "no_key";
	}
	yajl_free(h);
	if (reason)
		ev->key_len = 0;
	return reason;
}
