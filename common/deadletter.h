/* deadletter.h - lines for the dead-letter file, and reading them back.
 *
 * One line per event that could not be processed:
 *
 *   seq<TAB>reason<TAB>line
 *   seq<TAB>reason<TAB>line<TAB>truncated=TOTAL
 *
 * `reason` is a word (a handler's rm_reject reason has its control bytes
 * written as '?'; an empty one is "rejected").
 * `line` is the event as it came (key, delimiter, payload), escaped so that
 * one bad event is always one line of the file and the escaping can be
 * undone byte for byte (dl_decode): \t, \n, \r and \\ as C escapes; other
 * control bytes (0x00-0x1f, 0x7f) and every byte that is not part of valid
 * UTF-8 (a stray continuation byte, an overlong form, a surrogate, a
 * sequence cut short, 0xf5-0xff) as \xHH, lower-case hex. Valid UTF-8
 * characters of two to four bytes are kept as they are. No other escape is
 * ever written, and an escaped line never holds a tab.
 *
 * The fourth field is there only when the line was too long to keep whole
 * (a line over 1 MiB read from a file, a message over max_event_size + 2
 * bytes): `line` is then its first bytes only and TOTAL the length of the
 * whole line in bytes. A replay must refuse such a line: it is not the
 * event.
 *
 * Lines are gathered in a buffer and written with one write(2) to a file
 * opened O_APPEND, so the supervisor and the workers can share the file
 * without their lines interleaving. */
#ifndef RM_DEADLETTER_H
#define RM_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DL_TRUNCATED "truncated=" /* the fourth field of a cut line */

struct dl_buf {
	char *data;
	size_t len, cap;
	uint64_t lines;
	uint64_t first_seq; /* seq of the first line not yet written */
};

/* Append one line. `line` is the event as it came (for a parsed event, pass
 * key and payload with the delimiter through dl_add_event). 0 or -ENOMEM. */
int dl_add(struct dl_buf *b, uint64_t seq, const char *reason, const char *line, size_t len);
/* The same for a line kept only in part: `len` bytes of a line of `total`
 * bytes (total > len adds the truncated=TOTAL field). */
int dl_add_cut(struct dl_buf *b, uint64_t seq, const char *reason, const char *line, size_t len,
	       uint64_t total);
int dl_add_event(struct dl_buf *b, uint64_t seq, const char *reason, const char *key,
		 size_t key_len, char delim, const char *payload, size_t payload_len);

/* Write everything gathered to fd and empty the buffer. 0, or -errno with
 * what was not written still in the buffer. */
int dl_flush(struct dl_buf *b, int fd);
void dl_free(struct dl_buf *b);

/* Open (creating, 0640) the dead-letter file for appending. -errno on error. */
int dl_open(const char *path);

/* ---- reading dead letters back (a replay) ---- */

/* Undo the escaping of `len` bytes at `in` into `out` (room for len bytes:
 * decoding never grows). Returns the decoded length, or -EINVAL for text
 * this module never writes: a tab, a newline, a backslash at the end, an
 * unknown escape, \x without two hex digits. in and out may be the same. */
ssize_t dl_decode(const char *in, size_t len, char *out);

/* One dead-letter line, as dl_parse gives it. */
struct dl_record {
	uint64_t seq;
	const char *reason; /* NUL-terminated, inside the parsed text */
	char *line;	    /* the event's bytes, decoded (not NUL-terminated) */
	size_t len;
	int truncated;	/* a cut line: refuse to replay it */
	uint64_t total; /* truncated: the whole line's length in bytes */
};

/* Parse one line of the file (without its '\n'), decoding in place: `text`
 * is changed and the record points into it. 0, or -EINVAL when it is not a
 * dead-letter line this module wrote. */
int dl_parse(char *text, size_t len, struct dl_record *rec);

#endif
