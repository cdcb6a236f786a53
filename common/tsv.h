/* tsv.h - the text of a reference table (a [table.NAME] file): one row per
 * line, the key up to the first tab and the rest of the line the value.
 *
 * Pure: parses text already in memory, and the rows point into that text,
 * so it must outlive them. store_config.c reads the files and loads the
 * rows into LMDB; this only splits, checks and sorts, so the fuzzer
 * (tests/fuzz/fuzz_tsv.c) can drive it alone.
 *
 * Problems are handed to a callback, one per call, with the line number
 * (1-based) and a message that does not name the file:
 *
 *   empty key
 *   key is 600 bytes, at most 511 are allowed
 *   duplicate key 'acct1' (first on line 3)
 *   last line incomplete (no newline at the end): the file may still be
 *     being written
 *   out of memory
 */
#ifndef RM_TSV_H
#define RM_TSV_H

#include <stddef.h>
#include <stdint.h>

struct tsv_row {
	const char *key, *val; /* into the text; not NUL-terminated */
	uint32_t key_len, val_len;
	uint32_t line;
};

struct tsv_rows {
	struct tsv_row *v;
	size_t n, cap;
};

typedef void tsv_report_fn(void *arg, unsigned line, const char *msg);

#define TSV_INCOMPLETE                                                                             \
	"last line incomplete (no newline at the end): the file may still be being written"

/* Append the rows of `text` (len bytes) to *rows. Blank lines and lines
 * starting with '#' are skipped; a trailing '\r' is dropped, so files edited
 * on Windows load as they look; a line without a tab is a key with an empty
 * value. A key must be 1..key_max bytes. Every line ends with '\n': a text
 * whose last line has none (a file caught while it is copied or written) is
 * refused, TSV_INCOMPLETE reported at that line, whatever the line holds.
 * Every bad line is reported and parsing goes on; returns 0, or -1 when
 * anything was reported (out of memory stops at once). */
int tsv_parse(const char *text, size_t len, size_t key_max, struct tsv_rows *rows,
	      tsv_report_fn *report, void *arg);

/* Sort the rows in LMDB's default key order (memcmp, then shorter first;
 * equal keys in file order) and report every key that appears more than
 * once, at each later line. Returns 0, or -1 when a duplicate was reported. */
int tsv_sort(struct tsv_rows *rows, tsv_report_fn *report, void *arg);

void tsv_rows_free(struct tsv_rows *rows);

#endif
