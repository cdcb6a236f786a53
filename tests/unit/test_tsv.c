/* test_tsv.c - the table parser (common/tsv.c): rows and where they point,
 * skipped lines, each problem reported at its line, LMDB's key order, and
 * duplicates. store.c's tests check the same messages with file names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tsv.h"

/* The reports of one parse, as "line: message\n" lines. */
struct reports {
	char text[1024];
	size_t len;
};

static void on_report(void *arg, unsigned line, const char *msg)
{
	struct reports *r = arg;
	int n = snprintf(r->text + r->len, sizeof(r->text) - r->len, "%u: %s\n", line, msg);

	assert_true(n > 0 && (size_t)n < sizeof(r->text) - r->len);
	r->len += (size_t)n;
}

static void assert_row(const struct tsv_row *r, const char *key, const char *val, unsigned line)
{
	assert_int_equal(r->key_len, strlen(key));
	assert_memory_equal(r->key, key, r->key_len);
	assert_int_equal(r->val_len, strlen(val));
	assert_memory_equal(r->val, val, r->val_len);
	assert_int_equal(r->line, line);
}

static void test_rows(void **unused)
{
	const char *text = "# comment\n\nb\tv1\ta\r\nonly-key\n\r\nlast\t\n";
	struct tsv_rows rows = {0};
	struct reports rep = {.len = 0};

	(void)unused;
	assert_int_equal(tsv_parse(text, strlen(text), 16, &rows, on_report, &rep), 0);
	assert_int_equal(rep.len, 0);
	assert_int_equal(rows.n, 3);
	assert_row(&rows.v[0], "b", "v1\ta", 3); /* tabs after the first are the value's */
	assert_row(&rows.v[1], "only-key", "", 4);
	assert_row(&rows.v[2], "last", "", 6);
	assert_ptr_equal(rows.v[0].key, text + 11); /* into the text, not copied */
	tsv_rows_free(&rows);
	assert_null(rows.v);
}

/* A file caught while it is written: its last line has no newline yet. It
 * is refused whatever that line holds, even a comment or a good row. */
static void test_incomplete_last_line(void **unused)
{
	static const char *const texts[] = {"a\t1\nb\t2", "a\t1\n# comment", "a\t1\n\r", "\tbad",
					    "a\t1\r\nb"};
	static const char *const want[] = {"2: " TSV_INCOMPLETE "\n", "2: " TSV_INCOMPLETE "\n",
					   "2: " TSV_INCOMPLETE "\n", "1: " TSV_INCOMPLETE "\n",
					   "2: " TSV_INCOMPLETE "\n"};

	(void)unused;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct tsv_rows rows = {0};
		struct reports rep = {.len = 0};

		assert_int_equal(tsv_parse(texts[i], strlen(texts[i]), 16, &rows, on_report, &rep),
				 -1);
		assert_string_equal(rep.text, want[i]);
		assert_true(rows.n <= 1); /* the complete lines before it are rows */
		tsv_rows_free(&rows);
	}
	assert_string_equal(TSV_INCOMPLETE, "last line incomplete (no newline at the end): the "
					    "file may still be being written");
	/* an empty file is complete */
	struct tsv_rows rows = {0};
	struct reports rep = {.len = 0};
	assert_int_equal(tsv_parse("", 0, 16, &rows, on_report, &rep), 0);
	assert_int_equal(rows.n, 0);
}

static void test_bad_lines(void **unused)
{
	const char *text = "\tempty\nabcdef\tlong\nabcd\tok\n";
	struct tsv_rows rows = {0};
	struct reports rep = {.len = 0};

	(void)unused;
	assert_int_equal(tsv_parse(text, strlen(text), 4, &rows, on_report, &rep), -1);
	assert_string_equal(rep.text, "1: empty key\n2: key is 6 bytes, at most 4 are allowed\n");
	assert_int_equal(rows.n, 1); /* parsing went on */
	assert_row(&rows.v[0], "abcd", "ok", 3);
	tsv_rows_free(&rows);
}

static void test_sort_order(void **unused)
{
	const char *text = "b\t1\nab\t2\na\t3\n\xff\t4\n";
	struct tsv_rows rows = {0};
	struct reports rep = {.len = 0};

	(void)unused;
	assert_int_equal(tsv_parse(text, strlen(text), 16, &rows, on_report, &rep), 0);
	assert_int_equal(tsv_sort(&rows, on_report, &rep), 0);
	assert_int_equal(rep.len, 0);
	assert_row(&rows.v[0], "a", "3", 3); /* shorter first */
	assert_row(&rows.v[1], "ab", "2", 2);
	assert_row(&rows.v[2], "b", "1", 1);
	assert_row(&rows.v[3], "\xff", "4", 4); /* unsigned bytes, as memcmp */
	tsv_rows_free(&rows);
}

static void test_duplicates(void **unused)
{
	char text[256];
	struct tsv_rows rows = {0};
	struct reports rep = {.len = 0};
	char key[80];

	(void)unused;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(text, sizeof(text), "x\t1\ny\t2\nx\t3\n\x01\t4\nx\t5\n\x01\t6\n%s\t7\n%s\t8\n",
		 key, key);
	assert_int_equal(tsv_parse(text, strlen(text), 128, &rows, on_report, &rep), 0);
	assert_int_equal(tsv_sort(&rows, on_report, &rep), -1);
	/* Each later line, after the first; keys shown printable and cut. */
	assert_string_equal(rep.text,
			    "6: duplicate key '?' (first on line 4)\n"
			    "8: duplicate key '"
			    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
			    "...' (first on line 7)\n"
			    "3: duplicate key 'x' (first on line 1)\n"
			    "5: duplicate key 'x' (first on line 1)\n");
	tsv_rows_free(&rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows),
	    cmocka_unit_test(test_bad_lines),
	    cmocka_unit_test(test_incomplete_last_line),
	    cmocka_unit_test(test_sort_order),
	    cmocka_unit_test(test_duplicates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
