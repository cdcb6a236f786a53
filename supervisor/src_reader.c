/* src_reader.c - lines out of one file at a time (src_reader.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "source.h"
#include "src_reader.h"

#define READ_CHUNK (1u << 20)
#define LONG_LINE_KEEP (1u << 20) /* bytes of an overlong line kept for the dead letter */

uint64_t src_fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

int src_head_hash(int fd, uint64_t len, uint64_t *hash)
{
	unsigned char buf[SRC_HEAD_MAX];
	size_t got = 0;
	if (len > SRC_HEAD_MAX)
		len = SRC_HEAD_MAX;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 1;
		got += (size_t)n;
	}
	*hash = src_fnv1a(SRC_FNV_BASIS, buf, got);
	return 0;
}

int src_reader_init(struct src_reader *r, uint64_t max_event_size)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->cap = READ_CHUNK;
	if (r->cap < 2 * (max_event_size + 2))
		r->cap = 2 * (max_event_size + 2);
	r->buf = malloc(r->cap);
	r->long_line = malloc(LONG_LINE_KEEP);
	return r->buf && r->long_line ? 0 : -1;
}

void src_reader_free(struct src_reader *r)
{
	free(r->buf);
	free(r->long_line);
	r->buf = r->long_line = NULL;
}

void src_reader_reset(struct src_reader *r, uint64_t base, uint64_t at)
{
	r->base = base;
	r->offset = r->read_pos = at;
	r->next_seq = base + at;
	r->start = r->end = 0;
	r->eof = 0;
	r->in_long = 0;
}

/* Lines that do not fit in the buffer are dead-lettered, never silently
 * cut: their first LONG_LINE_KEEP bytes are kept, and the dead letter says
 * how long the line was (truncated=TOTAL, deadletter.h). */
static int consume_long(struct source *src, struct src_reader *r, const char *p, size_t n, int done)
{
	if (!r->in_long) {
		r->in_long = 1;
		r->long_seq = r->base + r->offset;
		r->long_len = r->long_total = 0;
	}
	size_t keep = n;
	if (r->long_len + keep > LONG_LINE_KEEP)
		keep = LONG_LINE_KEEP - r->long_len;
	memcpy(r->long_line + r->long_len, p, keep);
	r->long_len += keep;
	r->long_total += n;
	if (!done)
		return 0;
	r->in_long = 0;
	log_warn("line too long at seq=%llu: %llu bytes, max_event_size is %llu",
		 (unsigned long long)r->long_seq, (unsigned long long)r->long_total,
		 (unsigned long long)src->cfg->max_event_size);
	return sup_dead_letter(src->sup, r->long_seq, "too_long", r->long_line, r->long_len,
			       r->long_total);
}

int src_reader_drain(struct source *src, struct src_reader *r, int at_end, unsigned budget,
		     unsigned *handed)
{
	while (r->start < r->end) {
		char *p = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *nl = memchr(p, '\n', avail);
		if (!nl && !r->in_long && !at_end)
			return 0; /* incomplete; wait for more */
		size_t len = nl ? (size_t)(nl - p) : avail;
		size_t used = nl ? len + 1 : len;
		int rc;
		if (*handed >= budget)
			return 0;
		if (r->in_long)
			rc = consume_long(src, r, p, len, nl != NULL || at_end);
		else
			rc = src_line(src, -1, r->base + r->offset, p, len, len);
		if (rc != 0)
			return rc == -EAGAIN ? rc : -1;
		(*handed)++;
		r->start += used;
		r->offset += used;
		/* The watermark never passes a line still being read. */
		r->next_seq = r->in_long ? r->long_seq : r->base + r->offset;
	}
	/* The input ended in an overlong line whose last bytes were taken
	 * before the end was seen (no newline after it): it ends here. */
	if (r->in_long && at_end) {
		if (consume_long(src, r, r->buf + r->start, 0, 1) != 0)
			return -1;
		r->next_seq = r->base + r->offset;
	}
	return 0;
}

int src_reader_fill(struct source *src, struct src_reader *r)
{
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap) {
		/* A line longer than the buffer: it is over max_event_size
		 * (the buffer is larger), so start dead-lettering it. */
		if (consume_long(src, r, r->buf, r->end, 0) != 0)
			return -1;
		r->offset += r->end;
		r->end = 0;
	}
	ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	if (n == 0)
		r->eof = 1;
	/* The fingerprint grows with what is read of the first bytes, so a
	 * file that was short (or empty) when it was first looked at is known
	 * by more than that when it is truncated and written again. */
	uint64_t from = r->head_len, to = r->read_pos + (uint64_t)n;
	if (to > SRC_HEAD_MAX)
		to = SRC_HEAD_MAX;
	if (r->track_head && from >= r->read_pos && from < to) {
		r->head_hash = src_fnv1a(r->head_hash, r->buf + r->end + (from - r->read_pos),
					 (size_t)(to - from));
		r->head_len = to;
	}
	r->end += (size_t)n;
	r->read_pos += (uint64_t)n;
	return 0;
}
