/* test_deadletter.c - the dead-letter line format (common/deadletter.c):
 * the exact escaping of every kind of byte, that dl_parse/dl_decode undo it
 * byte for byte on random lines, that a cut line carries its mark and is
 * recognised as cut, and that text this module never writes is refused;
 * and the writing: dl_open's file, dl_flush writing all or keeping what a
 * failed write left. */
/* cmocka.h needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- writing ---- */

/* The whole file as a string (NUL-terminated; free it). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	assert_non_null(text);
	n = fread(text, 1, (1 << 16) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* dl_open creates the file 0640 and appends to it: two descriptors (the
 * supervisor's and a worker's) never overwrite each other's lines. */
static void test_open_appends(void **state)
{
	char dir[] = "/tmp/test_deadletter.XXXXXX", path[64];
	struct dl_buf a = {0}, b = {0};
	struct stat st;
	mode_t old = umask(022);
	int fa, fb;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/dead.tsv", dir);
	fa = dl_open(path);
	fb = dl_open(path);
	umask(old);
	assert_true(fa >= 0 && fb >= 0);
	assert_int_equal(fstat(fa, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_true(fcntl(fa, F_GETFL) & O_APPEND);
	assert_true(fcntl(fa, F_GETFD) & FD_CLOEXEC);

	assert_int_equal(dl_add(&a, 1, "r", "from a", 6), 0);
	assert_int_equal(dl_add(&b, 2, "r", "from b", 6), 0);
	assert_int_equal(dl_flush(&a, fa), 0);
	assert_int_equal(dl_flush(&b, fb), 0);
	assert_int_equal(dl_add(&a, 3, "r", "a again", 7), 0);
	assert_int_equal(dl_flush(&a, fa), 0);
	char *text = slurp(path);
	assert_string_equal(text, "1\tr\tfrom a\n2\tr\tfrom b\n3\tr\ta again\n");
	free(text);
	close(fa);
	close(fb);
	dl_free(&a);
	dl_free(&b);

	/* a directory that is not there: the errno, negative */
	snprintf(path, sizeof(path), "%s/no/dead.tsv", dir);
	assert_int_equal(dl_open(path), -ENOENT);
	snprintf(path, sizeof(path), "%s/dead.tsv", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* A flush empties the buffer; the next line added starts a new first_seq.
 * A write that fails keeps everything, and first_seq with it. */
static void test_flush(void **state)
{
	struct dl_buf b = {0};
	int p[2];
	char got[256];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(dl_add(&b, 10, "r", "x", 1), 0);
	assert_int_equal(dl_add(&b, 11, "r", "y", 1), 0);
	assert_int_equal(b.first_seq, 10);
	assert_int_equal(b.lines, 2);
	assert_int_equal(dl_flush(&b, p[1]), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(read(p[0], got, sizeof(got)), 14);
	assert_memory_equal(got, "10\tr\tx\n11\tr\ty\n", 14);
	assert_int_equal(dl_flush(&b, p[1]), 0); /* nothing to write */

	assert_int_equal(dl_add(&b, 12, "r", "z", 1), 0);
	assert_int_equal(b.first_seq, 12);
	assert_int_equal(dl_flush(&b, p[0]), -EBADF); /* the read end */
	assert_int_equal(b.len, 7);
	assert_int_equal(b.first_seq, 12);
	assert_memory_equal(b.data, "12\tr\tz\n", 7);
	assert_int_equal(dl_flush(&b, p[1]), 0);
	assert_int_equal(read(p[0], got, sizeof(got)), 7);
	assert_memory_equal(got, "12\tr\tz\n", 7);
	close(p[0]);
	close(p[1]);

	dl_free(&b);
	assert_null(b.data);
	assert_true(b.len == 0 && b.cap == 0 && b.lines == 0);
}

/* A write that stops part way (a full pipe, non-blocking): what was written
 * is gone from the buffer, the rest is kept in order, and a later flush
 * completes the text byte for byte. */
static void test_flush_partial(void **state)
{
	struct dl_buf b = {0};
	char *want, *got, line[1000];
	size_t want_len = 0, got_len = 0;
	ssize_t n;
	int p[2], rc;

	(void)state;
	memset(line, 'l', sizeof(line));
	for (unsigned i = 0; i < 300; i++) /* 300 KB: more than a pipe holds */
		assert_int_equal(dl_add(&b, i, "big", line, sizeof(line)), 0);
	want = malloc(b.len);
	got = malloc(b.len);
	assert_true(want && got);
	memcpy(want, b.data, b.len);
	want_len = b.len;

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	rc = dl_flush(&b, p[1]);
	assert_int_equal(rc, -EAGAIN);
	assert_true(b.len > 0 && b.len < want_len);
	while (b.len > 0) {
		while ((n = read(p[0], got + got_len, want_len - got_len)) > 0)
			got_len += (size_t)n;
		rc = dl_flush(&b, p[1]);
		assert_true(rc == 0 || rc == -EAGAIN);
		/* what is left is always the end of the text */
		assert_memory_equal(b.data, want + want_len - b.len, b.len);
	}
	while ((n = read(p[0], got + got_len, want_len - got_len)) > 0)
		got_len += (size_t)n;
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	close(p[0]);
	close(p[1]);
	free(want);
	free(got);
	dl_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_cut_line_is_marked),
	    cmocka_unit_test(test_refuses_what_it_never_writes),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_utf8_kept),
	    cmocka_unit_test(test_open_appends),
	    cmocka_unit_test(test_flush),
	    cmocka_unit_test(test_flush_partial),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
