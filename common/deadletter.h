/* deadletter.h - lines for the dead-letter file: `seq<TAB>reason<TAB>line`,
 * the line escaped so that one bad event is always one line of the file
 * (\t, \n, \r and \\ as C escapes, other control bytes as \xHH).
 *
 * Lines are gathered in a buffer and written with one write(2) to a file
 * opened O_APPEND, so the supervisor and the workers can share the file
 * without their lines interleaving. */
#ifndef RM_DEADLETTER_H
#define RM_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

struct dl_buf {
	char *data;
	size_t len, cap;
	uint64_t lines;
	uint64_t first_seq; /* seq of the first line not yet written */
};

/* Append one line. `line` is the event as it came (for a parsed event, pass
 * key and payload with the delimiter through dl_add_event). 0 or -ENOMEM. */
int dl_add(struct dl_buf *b, uint64_t seq, const char *reason, const char *line, size_t len);
int dl_add_event(struct dl_buf *b, uint64_t seq, const char *reason, const char *key,
		 size_t key_len, char delim, const char *payload, size_t payload_len);

/* Write everything gathered to fd and empty the buffer. 0, or -errno with
 * what was not written still in the buffer. */
int dl_flush(struct dl_buf *b, int fd);
void dl_free(struct dl_buf *b);

/* Open (creating, 0640) the dead-letter file for appending. -errno on error. */
int dl_open(const char *path);

#endif
