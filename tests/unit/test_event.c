/* test_event.c - event_parse_line (common/event.c): every reason a line is
 * not an event, in event.h's order, and where key and payload lie in one
 * that is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
