/* test_event.c - event_parse_line and event_parse_json (common/event.c):
 * every reason a line is not an event, in event.h's order, and where key
 * and payload lie in one that is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"

#define MAX 64 /* max_event_size in these tests */

/* The reason for `line` (NULL for an event), with ev filled. */
static const char *parse(const char *line, char delim, struct event_line *ev)
{
	return event_parse_line(line, strlen(line), delim, MAX, ev);
}

static void assert_reason(const char *line, const char *want, size_t want_len)
{
	struct event_line ev;
	const char *got = parse(line, '\t', &ev);

	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(ev.len, want_len);
	assert_int_equal(ev.key_len, 0);
}

static void test_event(void **unused)
{
	struct event_line ev;
	const char *line = "acct1\tdeposit\t100";

	(void)unused;
	assert_null(parse(line, '\t', &ev));
	assert_int_equal(ev.key_len, 5);
	assert_ptr_equal(ev.payload, line + 6);
	assert_int_equal(ev.payload_len, strlen("deposit\t100"));
	assert_int_equal(ev.len, strlen(line));
}

static void test_empty_payload_and_other_delimiter(void **unused)
{
	struct event_line ev;

	(void)unused;
	assert_null(parse("k,", ',', &ev));
	assert_int_equal(ev.key_len, 1);
	assert_int_equal(ev.payload_len, 0);
	/* Only the first delimiter splits: the payload keeps the others. */
	assert_null(parse("a,b,c", ',', &ev));
	assert_int_equal(ev.key_len, 1);
	assert_int_equal(ev.payload_len, 3);
}

static void test_trailing_cr(void **unused)
{
	struct event_line ev;

	(void)unused;
	assert_null(parse("k\tv\r", '\t', &ev));
	assert_int_equal(ev.len, 3);
	assert_int_equal(ev.payload_len, 1);
	/* One CR only: a second is part of the payload. */
	assert_null(parse("k\tv\r\r", '\t', &ev));
	assert_int_equal(ev.payload_len, 2);
	assert_reason("\r", "empty_line", 0);
	assert_reason("k\r", "no_delimiter", 1);
}

static void test_reasons(void **unused)
{
	(void)unused;
	assert_reason("", "empty_line", 0);
	assert_reason("no delimiter", "no_delimiter", 12);
	assert_reason("\tpayload", "empty_key", 8);
}

/* The length is checked first and without the CR: MAX bytes and a CR is an
 * event, MAX + 1 bytes is too long whatever else is wrong with it. */
static void test_too_long(void **unused)
{
	char line[MAX + 3];
	struct event_line ev;

	(void)unused;
	memset(line, 'x', sizeof(line));
	line[1] = '\t';
	line[MAX] = '\r';
	line[MAX + 1] = '\0';
	assert_null(parse(line, '\t', &ev));
	assert_int_equal(ev.len, MAX);
	line[MAX] = 'x';
	line[0] = '\t'; /* an empty key too */
	assert_reason(line, "too_long", MAX + 1);
}

static void test_key_length(void **unused)
{
	char line[EVENT_KEY_MAX + 3];
	struct event_line ev;

	(void)unused;
	memset(line, 'k', EVENT_KEY_MAX);
	memcpy(line + EVENT_KEY_MAX, "\tv", 3);
	assert_null(event_parse_line(line, strlen(line), '\t', 1024, &ev));
	assert_int_equal(ev.key_len, EVENT_KEY_MAX);
	memset(line, 'k', EVENT_KEY_MAX + 1);
	memcpy(line + EVENT_KEY_MAX + 1, "\t", 2);
	assert_string_equal(event_parse_line(line, strlen(line), '\t', 1024, &ev), "key_too_long");
}

/* The line need not be NUL-terminated: nothing past len is read. */
static void test_reads_only_len(void **unused)
{
	struct event_line ev;

	(void)unused;
	assert_string_equal(event_parse_line("key\tvalue", 3, '\t', MAX, &ev), "no_delimiter");
	assert_null(event_parse_line("key\tvalue", 5, '\t', MAX, &ev));
	assert_int_equal(ev.payload_len, 1);
}

/* ---- JSON lines ---------------------------------------------------------- */

/* The parser's scratch memory, reused for every line as a source does. */
static struct event_json_parser jp;

static const char *parse_json(const char *line, struct event_json *ev)
{
	return event_parse_json(&jp, line, strlen(line), "account", MAX, ev);
}

static void assert_json_reason(const char *line, const char *want)
{
	struct event_json ev;
	const char *got = parse_json(line, &ev);

	assert_non_null(got);
	assert_string_equal(got, want);
	assert_int_equal(ev.key_len, 0);
}

static void assert_json_key(const char *line, const char *key)
{
	struct event_json ev;

	assert_null(parse_json(line, &ev));
	assert_int_equal(ev.key_len, strlen(key));
	assert_memory_equal(ev.key, key, strlen(key));
	/* The payload is the whole line, the key field in it. */
	assert_ptr_equal(ev.payload, line);
	assert_int_equal(ev.payload_len, ev.len);
}

static void test_json_event(void **unused)
{
	struct event_json ev;
	const char *line = "{\"account\":\"a1\",\"type\":\"deposit\",\"amount\":5}";

	(void)unused;
	assert_json_key(line, "a1");
	assert_null(parse_json(line, &ev));
	assert_int_equal(ev.len, strlen(line));
	/* Anywhere in the object, with escapes, white space around. */
	assert_json_key(" {\"x\":[1,{\"account\":2}],\"account\":\"a\\u0031\"} ", "a1");
	/* An integer key is its decimal text. */
	assert_json_key("{\"account\":42}", "42");
	assert_json_key("{\"account\":-7}", "-7");
	assert_json_key("{\"account\":18446744073709551614}", "18446744073709551614");
	assert_json_key("{\"account\":-0}", "0");
	assert_json_key("{\"account\":18446744073709551615}", "18446744073709551615");
	/* The first of two counts: the parse stops there. */
	assert_json_key("{\"account\":1,\"account\":2}", "1");
	/* A CR at the end is dropped, as for TSV. */
	assert_null(parse_json("{\"account\":1}\r", &ev));
	assert_int_equal(ev.len, strlen("{\"account\":1}"));
}

static void test_json_reasons(void **unused)
{
	char line[MAX + 8];

	(void)unused;
	assert_json_reason("", "empty_line");
	assert_json_reason("\r", "empty_line");
	memset(line, ' ', MAX + 1);
	line[MAX + 1] = 0;
	assert_json_reason(line, "too_long"); /* before bad_json */

	static const char *const bad_json[] = {
	    " ",		      /* white space only */
	    "{",		      /* cut short */
	    "{\"account\":1",	      /* cut short */
	    "[{\"account\":1}]",      /* an array */
	    "42",		      /* a number */
	    "\"account\"",	      /* a string */
	    "{\"x\":1}x",	      /* junk after an object without the key */
	    "{\"x\":1}{}",	      /* two objects */
	    "{\"x\":1,}",	      /* a trailing comma, before the key */
	    "{\"x\":1,\"account\":1", /* cut short */
	    "{\"account\" 1}",	      /* no colon */
	    "{\"account\":1 2}",      /* the key's value not followed by , or } */
	    "{\"account\":\"a\" \"b\"}",
	    "{\"account\":1",	      /* a number at the end: not followed */
	    "{\"account\":01}",	      /* a leading zero */
	    "{\"account\":\"\xff\"}", /* not UTF-8 */
	    "acct1\tdeposit\t5",      /* TSV */
	};
	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++)
		assert_json_reason(bad_json[i], "bad_json");

	assert_json_reason("{}", "no_key");
	assert_json_reason("{\"Account\":1}", "no_key");
	assert_json_reason("{\"x\":{\"account\":1}}", "no_key"); /* top level only */

	static const char *const bad_key[] = {
	    "{\"account\":null}",
	    "{\"account\":true}",
	    "{\"account\":1.5}",
	    "{\"account\":1e3}",
	    "{\"account\":[1]}",
	    "{\"account\":{}}",
	    "{\"account\":\"\"}",
	    "{\"account\":\"a\\tb\"}",
	    "{\"account\":\"a\\nb\"}",
	    "{\"account\":\"a\\rb\"}",		  /* bytes a TSV key cannot hold */
	    "{\"account\":-9223372036854775809}", /* beyond int64 */
	    "{\"account\":18446744073709551616}", /* beyond uint64 */
	    "{\"account\":99999999999999999999}",
	};
	for (size_t i = 0; i < sizeof(bad_key) / sizeof(bad_key[0]); i++)
		assert_json_reason(bad_key[i], "bad_key");
}

/* The parse stops at the key's value: what follows it is the handler's to
 * refuse (the payload is the whole line). */
static void test_json_stops_at_key(void **unused)
{
	(void)unused;
	assert_json_key("{\"account\":1}x", "1");
	assert_json_key("{\"account\":1}{}", "1");
	assert_json_key("{\"account\":\"a\",}", "a");
	assert_json_key("{\"account\":\"a\",\"type\":\"deposit\"", "a");
	assert_json_key("{\"account\":\"a\", \xff garbage", "a");
}

/* A string too long for the arena before the key: yajl's buffer goes to
 * malloc and back, and the next line starts afresh. */
static void test_json_long_escapes(void **unused)
{
	enum { N = 3000 };
	static char line[N * 6 + 64];
	struct event_json ev;
	char *p = line;

	(void)unused;
	p += sprintf(p, "{\"x\":\"");
	for (int i = 0; i < N; i++)
		p += sprintf(p, "\\u0041");
	sprintf(p, "\",\"k\":\"key\"}");
	assert_null(event_parse_json(&jp, line, strlen(line), "k", sizeof(line), &ev));
	assert_int_equal(ev.key_len, 3);
	assert_json_key("{\"account\":\"a1\"}", "a1");
}

/* The key's length limit, over a longer max_event_size. */
static void test_json_key_length(void **unused)
{
	char line[EVENT_KEY_MAX + 32];
	struct event_json ev;

	(void)unused;
	strcpy(line, "{\"k\":\"");
	memset(line + 6, 'k', EVENT_KEY_MAX);
	strcpy(line + 6 + EVENT_KEY_MAX, "\"}");
	assert_null(event_parse_json(&jp, line, strlen(line), "k", 1024, &ev));
	assert_int_equal(ev.key_len, EVENT_KEY_MAX);
	memset(line + 6, 'k', EVENT_KEY_MAX + 1);
	strcpy(line + 7 + EVENT_KEY_MAX, "\"}");
	assert_string_equal(event_parse_json(&jp, line, strlen(line), "k", 1024, &ev), "bad_key");
}

/* Nothing past len is read, and a NUL byte inside is not the end. */
static void test_json_reads_only_len(void **unused)
{
	static const char nul[] = "{\"x\":1\0,\"account\":1}";
	struct event_json ev;

	(void)unused;
	assert_null(event_parse_json(&jp, "{\"account\":1}junk", 13, "account", MAX, &ev));
	assert_int_equal(ev.len, 13);
	assert_string_equal(event_parse_json(&jp, nul, sizeof(nul) - 1, "account", MAX, &ev),
			    "bad_json");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_event),
	    cmocka_unit_test(test_empty_payload_and_other_delimiter),
	    cmocka_unit_test(test_trailing_cr),
	    cmocka_unit_test(test_reasons),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_key_length),
	    cmocka_unit_test(test_reads_only_len),
	    cmocka_unit_test(test_json_event),
	    cmocka_unit_test(test_json_reasons),
	    cmocka_unit_test(test_json_stops_at_key),
	    cmocka_unit_test(test_json_long_escapes),
	    cmocka_unit_test(test_json_key_length),
	    cmocka_unit_test(test_json_reads_only_len),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
