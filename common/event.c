/* event.c - one line of a text source into an event, or the reason it is
 * not one (event.h). Kept apart from the sources so it stays pure. JSON
 * lines are parsed by json-c: a whole parse per line, measured at well over
 * half the TSV ingest rate (README.md, "JSON lines"). */
#include "event.h"

#include <inttypes.h>
#include <json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

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

/* The key field's text into ev->key, or the reason it cannot be a key. */
static const char *json_key(struct json_object *v, struct event_json *ev)
{
	const char *s;
	size_t n;

	switch (json_object_get_type(v)) {
	case json_type_string:
		s = json_object_get_string(v);
		n = (size_t)json_object_get_string_len(v);
		if (!n || n > EVENT_KEY_MAX || memchr(s, '\t', n) || memchr(s, '\n', n) ||
		    memchr(s, '\r', n))
			return "bad_key";
		memcpy(ev->key, s, n);
		ev->key_len = n;
		return NULL;
	case json_type_int: {
		/* json-c clamps what does not fit in 64 bits to these limits
		 * without telling: refuse them rather than take a wrong key. */
		int64_t i = json_object_get_int64(v);
		uint64_t u = json_object_get_uint64(v);
		char text[24];
		int w;

		if (i == INT64_MIN || u == UINT64_MAX)
			return "bad_key";
		if (i == INT64_MAX)
			w = snprintf(text, sizeof(text), "%" PRIu64, u);
		else
			w = snprintf(text, sizeof(text), "%" PRId64, i);
		memcpy(ev->key, text, (size_t)w);
		ev->key_len = (size_t)w;
		return NULL;
	}
	default:
		return "bad_key";
	}
}

const char *event_parse_json(const char *line, size_t len, const char *key_field,
			     uint64_t max_event_size, struct event_json *ev)
{
	const char *reason = line_common(line, &len, max_event_size);
	struct json_tokener *tok;
	struct json_object *obj = NULL, *v;

	ev->len = len;
	ev->key_len = 0;
	ev->payload = line;
	ev->payload_len = len;
	if (reason)
		return reason;
	if (len > INT_MAX) /* json-c takes an int; max_event_size is far below */
		return "too_long";
	tok = json_tokener_new();
	if (!tok)
		return "bad_json"; /* out of memory: the line cannot be read as JSON */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	if (!obj || json_tokener_get_parse_end(tok) != len ||
	    !json_object_is_type(obj, json_type_object))
		reason = "bad_json";
	else if (!json_object_object_get_ex(obj, key_field, &v))
		reason = "no_key";
	else
		reason = json_key(v, ev);
	json_object_put(obj);
	json_tokener_free(tok);
	return reason;
}
