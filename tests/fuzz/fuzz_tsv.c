/* fuzz_tsv.c - libFuzzer target for the table parser (common/tsv.c): any
 * text must split into rows that lie inside it and keep to tsv.h's rules,
 * every line must be a row, skipped or reported (a last line without its
 * newline always reported), and sorting must give
 * LMDB's key order with each duplicate reported once. Byte 0 of the input
 * picks the key limit (1..64, so the limit is easy to reach); the rest is
 * the text, in a buffer of exactly its size. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reports {
	unsigned count, duplicates;
};

static void check(int ok)
{
	if (!ok)
		abort();
}

/* A message is one line of printable text about a real line. */
static void on_report(void *arg, unsigned line, const char *msg)
{
	struct reports *r = arg;

	check(line >= 1 && *msg);
	for (const char *p = msg; *p; p++)
		check(*p >= 0x20 && *p < 0x7f);
	r->count++;
	if (strncmp(msg, "duplicate key '", 15) == 0)
		r->duplicates++;
}

static unsigned count_lines(const char *text, size_t len)
{
	unsigned n = 0;

	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	return n + (len && text[len - 1] != '\n');
}

/* Lines that are neither rows nor errors: blank (after a CR) or comments,
 * but never a last line without its newline (always an error). */
static unsigned count_skipped(const char *text, size_t len)
{
	unsigned n = 0;

	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);

		if (l && p[l - 1] == '\r')
			l--;
		n += nl && (l == 0 || p[0] == '#');
		p = nl ? nl + 1 : end;
	}
	return n;
}

static void check_row(const struct tsv_row *r, const char *text, size_t len, size_t key_max)
{
	const char *end = text + len;

	check(r->key >= text && r->key + r->key_len <= end);
	check(r->val >= text && r->val + r->val_len <= end);
	check(r->key_len >= 1 && r->key_len <= key_max && r->key[0] != '#');
	check(!memchr(r->key, '\t', r->key_len) && !memchr(r->key, '\n', r->key_len));
	check(!memchr(r->val, '\n', r->val_len));
	check(r->line >= 1);
}

static int key_cmp(const struct tsv_row *a, const struct tsv_row *b)
{
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int d = memcmp(a->key, b->key, n);

	return d ? d : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tsv_rows rows = {0};
	struct reports rep = {0, 0};
	size_t key_max, len;
	unsigned dups = 0, errors;
	uint64_t line_sum = 0;
	char *text;
	int rc;

	if (size < 1)
		return 0;
	key_max = 1 + data[0] % 64;
	len = size - 1;
	text = malloc(len ? len : 1);
	if (!text)
		return 0;
	memcpy(text, data + 1, len);

	rc = tsv_parse(text, len, key_max, &rows, on_report, &rep);
	errors = rep.count;
	check((rc == 0) == (errors == 0));
	check(rows.n + errors + count_skipped(text, len) == count_lines(text, len));
	for (size_t i = 0; i < rows.n; i++) {
		check_row(&rows.v[i], text, len, key_max);
		/* an incomplete last line is never a row */
		check(!len || text[len - 1] == '\n' || rows.v[i].line < count_lines(text, len));
		check(i == 0 || rows.v[i].line > rows.v[i - 1].line);
		line_sum += rows.v[i].line;
	}

	rc = tsv_sort(&rows, on_report, &rep);
	for (size_t i = 1; i < rows.n; i++) {
		int d = key_cmp(&rows.v[i - 1], &rows.v[i]);

		check(d < 0 || (d == 0 && rows.v[i - 1].line < rows.v[i].line));
		dups += d == 0;
	}
	for (size_t i = 0; i < rows.n; i++)
		line_sum -= rows.v[i].line; /* the same rows, reordered */
	check(line_sum == 0);
	check(rep.duplicates == dups && rep.count == errors + dups);
	check((rc == 0) == (dups == 0));
	tsv_rows_free(&rows);
	free(text);
	return 0;
}
