/* tsv.c - reference-table text into sorted rows (tsv.h). */
#include "tsv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_row(struct tsv_rows *rows, const char *key, size_t key_len, const char *val,
		   size_t val_len, unsigned line)
{
	if (rows->n == rows->cap) {
		size_t cap = rows->cap ? rows->cap * 2 : 256;
		struct tsv_row *r = realloc(rows->v, cap * sizeof(*r));
		if (!r)
			return -1;
		rows->v = r;
		rows->cap = cap;
	}
	rows->v[rows->n++] = (struct tsv_row){key, val, (uint32_t)key_len, (uint32_t)val_len, line};
	return 0;
}

int tsv_parse(const char *text, size_t len, size_t key_max, struct tsv_rows *rows,
	      tsv_report_fn *report, void *arg)
{
	const char *p = text, *end = text + len;
	unsigned line = 0;
	char msg[96];
	int bad = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end, *next = nl ? nl + 1 : end;

		line++;
		if (!nl) {
			/* a copy or an editor still writing: never load half a row */
			report(arg, line, TSV_INCOMPLETE);
			return -1;
		}
		if (eol > p && eol[-1] == '\r')
			eol--;
		if (eol == p || *p == '#') {
			p = next;
			continue;
		}
		const char *tab = memchr(p, '\t', (size_t)(eol - p));
		const char *key_end = tab ? tab : eol, *val = tab ? tab + 1 : eol;
		size_t key_len = (size_t)(key_end - p);

		if (key_len == 0) {
			report(arg, line, "empty key");
			bad = 1;
		} else if (key_len > key_max) {
			snprintf(msg, sizeof(msg), "key is %zu bytes, at most %zu are allowed",
				 key_len, key_max);
			report(arg, line, msg);
			bad = 1;
		} else if ((size_t)(eol - val) > UINT32_MAX ||
			   add_row(rows, p, key_len, val, (size_t)(eol - val), line) < 0) {
			report(arg, line, "out of memory");
			return -1;
		}
		p = next;
	}
	return bad ? -1 : 0;
}

/* LMDB's default key order (memcmp, then shorter first), then file order. */
static int row_cmp_key(const struct tsv_row *a, const struct tsv_row *b)
{
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int d = memcmp(a->key, b->key, n);

	if (d)
		return d;
	return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct tsv_row *a = pa, *b = pb;
	int d = row_cmp_key(a, b);

	return d ? d : (a->line > b->line) - (a->line < b->line);
}

/* For messages: the key's first bytes with anything unprintable as '?'. */
static const char *show_key(const struct tsv_row *r, char *buf, size_t size)
{
	size_t n = r->key_len < size - 4 ? r->key_len : size - 4, i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)r->key[i];
		buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (n < r->key_len) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/* Sort only when needed (a table file is usually sorted already); with the
 * rows sorted, finding a duplicate costs nothing. */
int tsv_sort(struct tsv_rows *rows, tsv_report_fn *report, void *arg)
{
	struct tsv_row *r = rows->v;
	size_t i, first = 0;
	char shown[72], msg[160];
	int bad = 0;

	for (i = 1; i < rows->n && row_cmp(&r[i - 1], &r[i]) < 0; i++)
		;
	if (i < rows->n)
		qsort(r, rows->n, sizeof(*r), row_cmp);
	for (i = 1; i < rows->n; i++) {
		if (row_cmp_key(&r[first], &r[i]) != 0) {
			first = i;
			continue;
		}
		snprintf(msg, sizeof(msg), "duplicate key '%s' (first on line %u)",
			 show_key(&r[i], shown, sizeof(shown)), (unsigned)r[first].line);
		report(arg, r[i].line, msg);
		bad = 1;
	}
	return bad ? -1 : 0;
}

void tsv_rows_free(struct tsv_rows *rows)
{
	free(rows->v);
	*rows = (struct tsv_rows){NULL, 0, 0};
}
