/* test_deadletter.c - the dead-letter line format (common/deadletter.c):
 * the exact escaping of every kind of byte, that dl_parse/dl_decode undo it
 * byte for byte on random lines, that a cut line carries its mark and is
 * recognised as cut, and that text this module never writes is refused. */
/* cmocka.h needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadletter.h"

/* The one line dl_add_cut writes for `line`, NUL-terminated, without its
 * '\n' (checked). */
static char *written(uint64_t seq, const char *reason, const char *line, size_t len, uint64_t total)
{
	struct dl_buf b = {0};
	char *text;

	assert_int_equal(dl_add_cut(&b, seq, reason, line, len, total), 0);
	assert_int_equal(b.lines, 1);
	assert_true(b.len >= 1 && b.data[b.len - 1] == '\n');
	assert_null(memchr(b.data, '\n', b.len - 1)); /* one line, whatever the event */
	text = strndup(b.data, b.len - 1);
	assert_non_null(text);
	dl_free(&b);
	return text;
}

static void assert_written(const char *line, size_t len, const char *want)
{
	char *got = written(7, "r", line, len, len);

	assert_string_equal(got, want);
	free(got);
}

static void assert_written_reason(const char *reason, const char *want)
{
	char *got = written(7, reason, "x", 1, 1);
	struct dl_record rec;

	assert_string_equal(got, want);
	assert_int_equal(dl_parse(got, strlen(got), &rec), 0);
	free(got);
}

static void test_escapes(void **state)
{
	(void)state;
	assert_written("plain ascii ~", 13, "7\tr\tplain ascii ~");
	assert_written("a\tb\nc\rd\\e", 9, "7\tr\ta\\tb\\nc\\rd\\\\e");
	assert_written("\0\x01\x1f\x7f", 4, "7\tr\t\\x00\\x01\\x1f\\x7f");
	/* valid UTF-8 of 2, 3 and 4 bytes stays as it is; C1 controls are
	 * valid characters too */
	assert_written("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\x85", 11,
		       "7\tr\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc2\x85");
	/* not UTF-8: a stray continuation byte, bytes that never start a
	 * character, an overlong '/', a surrogate, past U+10FFFF, a character
	 * cut short (by the end of the line too) */
	assert_written("\x80", 1, "7\tr\t\\x80");
	assert_written("\xc0\xc1\xf5\xff", 4, "7\tr\t\\xc0\\xc1\\xf5\\xff");
	assert_written("\xc0\xaf", 2, "7\tr\t\\xc0\\xaf");
	assert_written("\xe0\x80\xaf", 3, "7\tr\t\\xe0\\x80\\xaf");
	assert_written("\xed\xa0\x80", 3, "7\tr\t\\xed\\xa0\\x80");
	assert_written("\xf4\x90\x80\x80", 4, "7\tr\t\\xf4\\x90\\x80\\x80");
	assert_written("\xe2\x82x", 3, "7\tr\t\\xe2\\x82x");
	assert_written("ok\xf0\x9f\x98", 5, "7\tr\tok\\xf0\\x9f\\x98");
	/* dl_add is dl_add_cut of the whole line */
	struct dl_buf b = {0};
	assert_int_equal(dl_add(&b, 3, "too_long", "a\tb", 3), 0);
	assert_int_equal(dl_add_event(&b, 4, "poison", "k", 1, '\t', "p\n", 2), 0);
	assert_int_equal(b.first_seq, 3);
	assert_int_equal(b.len, strlen("3\ttoo_long\ta\\tb\n4\tpoison\tk\\tp\\n\n"));
	assert_memory_equal(b.data, "3\ttoo_long\ta\\tb\n4\tpoison\tk\\tp\\n\n", b.len);
	dl_free(&b);
	/* a handler's reason cannot split the fields */
	assert_written_reason("bad\tthing\n", "7\tbad?thing?\tx");
	assert_written_reason("", "7\trejected\tx");
}

static void test_cut_line_is_marked(void **state)
{
	struct dl_record rec;
	char *text;

	(void)state;
	text = written(42, "too_long", "abc\tdef", 5, 2000000);
	assert_string_equal(text, "42\ttoo_long\tabc\\td\t" DL_TRUNCATED "2000000");
	assert_int_equal(dl_parse(text, strlen(text), &rec), 0);
	assert_int_equal(rec.seq, 42);
	assert_string_equal(rec.reason, "too_long");
	assert_true(rec.truncated);
	assert_int_equal(rec.total, 2000000);
	assert_int_equal(rec.len, 5);
	assert_memory_equal(rec.line, "abc\td", 5);
	free(text);

	/* a whole line is not marked, whatever it holds */
	text = written(1, "malformed", "truncated=5", 11, 11);
	assert_string_equal(text, "1\tmalformed\ttruncated=5");
	assert_int_equal(dl_parse(text, strlen(text), &rec), 0);
	assert_false(rec.truncated);
	assert_int_equal(rec.total, 11);
	free(text);
}

static void test_refuses_what_it_never_writes(void **state)
{
	static const char *const bad[] = {
	    "",
	    "7",
	    "7\tr",
	    "x\tr\tline",
	    "\tr\tline",
	    "7\t\tline",
	    "99999999999999999999\tr\tline", /* past 2^64 */
	    "7\tr\tback\\",
	    "7\tr\t\\q",
	    "7\tr\t\\x4",
	    "7\tr\t\\xg0",
	    "7\tr\tline\textra",
	    "7\tr\tline\ttruncated=",
	    "7\tr\tline\ttruncated=x",
	    "7\tr\tline\ttruncated=4", /* not longer than what was kept */
	    "7\tr\tline\ttruncated=9\t",
	};
	struct dl_record rec;
	char buf[64], out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(bad[i]);
		memcpy(buf, bad[i], n + 1);
		if (dl_parse(buf, n, &rec) != -EINVAL)
			fail_msg("accepted: '%s'", bad[i]);
	}
	assert_int_equal(dl_parse((char[]){"7\tr\ta\nb"}, 7, &rec), -EINVAL);
	assert_int_equal(dl_decode("a\tb", 3, out), -EINVAL);
	assert_int_equal(dl_decode("\\X41", 4, out), -EINVAL);
	assert_int_equal(dl_decode("\\x4A\\x4a", 8, out), 2);
	assert_memory_equal(out, "JJ", 2);
}

/* A line of random bytes, biased towards what needs escaping. */
static size_t random_line(char *buf, size_t max, unsigned *seed)
{
	static const char *const pieces[] = {
	    "\t",
	    "\n",
	    "\r",
	    "\\",
	    "\\x41",
	    "\\t",
	    "\0",
	    "\x7f",
	    "\xc3\xa9",
	    "\xe2\x82\xac",
	    "\xf0\x9f\x98\x80",
	    "\xed\xa0\x80",
	    "\xc3",
	    "\x80",
	    "\xff",
	    "truncated=1",
	    "a",
	    " ",
	};
	size_t n = 0, want = (size_t)rand_r(seed) % max;

	while (n < want) {
		if (rand_r(seed) % 2) {
			buf[n++] = (char)(rand_r(seed) & 0xff);
			continue;
		}
		const char *p = pieces[(size_t)rand_r(seed) % (sizeof(pieces) / sizeof(pieces[0]))];
		size_t len = *p ? strlen(p) : 1;
		if (n + len > max)
			break;
		memcpy(buf + n, p, len);
		n += len;
	}
	return n;
}

static void test_round_trip(void **state)
{
	enum { MAX = 300 };
	unsigned seed = 12345;
	char line[MAX], *text;
	struct dl_record rec;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t len = random_line(line, MAX, &seed);
		int cut = len && i % 3 == 0;
		size_t kept = cut ? (size_t)rand_r(&seed) % len : len;
		uint64_t seq = (uint64_t)rand_r(&seed) * 1000003u;

		text = written(seq, "too_long", line, kept, len);
		assert_int_equal(dl_parse(text, strlen(text), &rec), 0);
		assert_int_equal(rec.seq, seq);
		assert_string_equal(rec.reason, "too_long");
		assert_int_equal(rec.len, kept);
		assert_memory_equal(rec.line, line, kept);
		assert_int_equal(rec.truncated, kept < len);
		assert_int_equal(rec.total, len);
		free(text);
	}
}

/* Valid UTF-8 of every length goes through untouched, so a dead letter of
 * a text in any language reads as that text. */
static void test_utf8_kept(void **state)
{
	char line[] =
	    "caf\xc3\xa9 \xe2\x82\xac 5 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac\xef\xbf\xbf"
	    "\xf4\x8f\xbf\xbf";
	char want[sizeof(line) + 8];
	char *text = written(0, "r", line, strlen(line), strlen(line));

	(void)state;
	snprintf(want, sizeof(want), "0\tr\t%s", line);
	assert_string_equal(text, want);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_cut_line_is_marked),
	    cmocka_unit_test(test_refuses_what_it_never_writes),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_utf8_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
