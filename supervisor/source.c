/* source.c - where events come from: a file (or stdin), one event per line,
 * or the deterministic generator. Each turns its input into events with a
 * seq (the byte offset of the line, for both: see gen.h) and hands them to
 * sup_dispatch. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event.h"
#include "gen.h"
#include "log.h"
#include "supervisor.h"

#define READ_CHUNK (1u << 20)
#define TICK_EVERY 4096u
#define FOLLOW_IDLE_MS 50
#define LONG_LINE_KEEP (1u << 20) /* bytes of an overlong line kept for the dead letter */

/* One line (without its newline, and without a trailing CR) at `seq`: see
 * supervisor.h. */
int src_handle_line(struct sup *s, uint64_t seq, const char *line, size_t len)
{
	return src_handle_line_to(s, -1, seq, line, len);
}

int src_handle_line_to(struct sup *s, int partition, uint64_t seq, const char *line, size_t len)
{
	struct event_line ev;
	const char *reason =
	    event_parse_line(line, len, s->cfg.delimiter, s->cfg.max_event_size, &ev);

	s->lines++;
	if (reason)
		return sup_dead_letter(s, seq, reason, line, ev.len);
	if (partition >= 0)
		return sup_dispatch_to(s, (unsigned)partition, seq, line, ev.key_len, ev.payload,
				       ev.payload_len, line, ev.len);
	return sup_dispatch(s, seq, line, ev.key_len, ev.payload, ev.payload_len, line, ev.len);
}

struct reader {
	int fd;
	char *buf;
	size_t cap, start, end;  /* unconsumed bytes are buf[start..end) */
	uint64_t offset;         /* file offset of buf[start] */
	int eof;
	/* An overlong line in progress: its first bytes, its seq and length. */
	char *long_line;
	size_t long_len;
	uint64_t long_seq, long_total;
	int in_long;
};

/* Lines that do not fit in the buffer are dead-lettered whole (up to
 * LONG_LINE_KEEP bytes of them are kept), never silently cut. */
static int consume_long(struct sup *s, struct reader *r, const char *p, size_t n, int done)
{
	if (!r->in_long) {
		r->in_long = 1;
		r->long_seq = r->offset;
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
	s->lines++;
	log_warn("line too long at seq=%llu: %llu bytes, max_event_size is %llu",
		 (unsigned long long)r->long_seq, (unsigned long long)r->long_total,
		 (unsigned long long)s->cfg.max_event_size);
	return sup_dead_letter(s, r->long_seq, "too_long", r->long_line, r->long_len);
}

/* Hand every complete line in the buffer over. */
static int drain_lines(struct sup *s, struct reader *r)
{
	unsigned since_tick = 0;
	int at_end = r->eof && !s->cfg.follow; /* no more bytes will come */
	while (r->start < r->end) {
		char *p = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *nl = memchr(p, '\n', avail);
		if (!nl && !r->in_long && !at_end)
			return 0; /* incomplete; wait for more */
		size_t len = nl ? (size_t)(nl - p) : avail;
		size_t used = nl ? len + 1 : len;
		int rc;
		if (r->in_long)
			rc = consume_long(s, r, p, len, nl != NULL || at_end);
		else
			rc = src_handle_line(s, r->offset, p, len);
		if (rc != 0)
			return -1;
		r->start += used;
		r->offset += used;
		s->source_pos = r->offset;
		/* The watermark never passes a line still being read. */
		s->next_seq = r->in_long ? r->long_seq : r->offset;
		if (++since_tick == TICK_EVERY) {
			since_tick = 0;
			if (sup_tick(s) != 0)
				return -1;
		}
	}
	/* The input ended in an overlong line whose last bytes were taken
	 * before the end was seen (no newline after it): it ends here. */
	if (r->in_long && at_end) {
		if (consume_long(s, r, r->buf + r->start, 0, 1) != 0)
			return -1;
		s->next_seq = r->offset;
	}
	return 0;
}

static int fill(struct sup *s, struct reader *r)
{
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap) {
		/* A line longer than the buffer: it is over max_event_size
		 * (the buffer is larger), so start dead-lettering it. */
		if (consume_long(s, r, r->buf, r->end, 0) != 0)
			return -1;
		r->offset += r->end;
		r->end = 0;
	}
	ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	if (n == 0)
		r->eof = 1;
	r->end += (size_t)n;
	return 0;
}

/* Start at the watermark: seek a file, read past the bytes of a pipe. */
static int skip_to(struct sup *s, struct reader *r, int seekable)
{
	uint64_t to = s->resume_seq;
	if (!to)
		return 0;
	if (seekable) {
		if (s->source_size < to) {
			log_error("%s is shorter (%llu bytes) than the position this data_dir has "
				  "processed (%llu): it is not the file this data_dir was made for; "
				  "use a new data_dir", s->cfg.source_path,
				  (unsigned long long)s->source_size, (unsigned long long)to);
			return -1;
		}
		if (lseek(r->fd, (off_t)to, SEEK_SET) < 0) {
			log_error("%s: cannot seek: %s", s->cfg.source_path, strerror(errno));
			return -1;
		}
	} else {
		for (uint64_t left = to; left;) {
			size_t n = left < r->cap ? (size_t)left : r->cap;
			ssize_t got = read(r->fd, r->buf, n);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				log_error("%s ended before the position this data_dir has processed "
					  "(%llu)", s->cfg.source_path, (unsigned long long)to);
				return -1;
			}
			left -= (uint64_t)got;
		}
	}
	r->offset = s->source_pos = s->next_seq = to;
	return 0;
}

static int open_input(struct sup *s, struct reader *r)
{
	const char *path = s->cfg.source_path;
	int seekable = 0;
	if (strcmp(path, "-") == 0) {
		r->fd = STDIN_FILENO;
	} else {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			log_error("%s: cannot open the source file: %s", path, strerror(errno));
			return -1;
		}
	}
	struct stat st;
	if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		s->source_size = (uint64_t)st.st_size;
		seekable = 1;
	}
	return skip_to(s, r, seekable);
}

int src_file_run(struct sup *s)
{
	struct reader r = { .fd = -1 };
	int rc = -1;
	r.cap = READ_CHUNK;
	if (r.cap < 2 * (s->cfg.max_event_size + 2))
		r.cap = 2 * (s->cfg.max_event_size + 2);
	r.buf = malloc(r.cap);
	r.long_line = malloc(LONG_LINE_KEEP);
	if (!r.buf || !r.long_line) {
		log_error("out of memory for the read buffer");
		goto out;
	}
	if (open_input(s, &r) != 0)
		goto out;
	for (;;) {
		if (sup_stop) {
			rc = 0;
			break;
		}
		if (fill(s, &r) != 0) {
			log_error("%s: read error: %s", s->cfg.source_path, strerror(errno));
			break;
		}
		if (drain_lines(s, &r) != 0 || sup_tick(s) != 0) {
			rc = sup_stop ? 0 : -1;
			break;
		}
		if (r.eof && !s->cfg.follow) {
			rc = 0;
			break;
		}
		if (r.eof) {
			r.eof = 0; /* follow: look again in a moment */
			if (sup_idle(s, FOLLOW_IDLE_MS) != 0) {
				rc = sup_stop ? 0 : -1;
				break;
			}
		}
	}
out:
	free(r.buf);
	free(r.long_line);
	if (r.fd > STDIN_FILENO)
		close(r.fd);
	return rc;
}

int src_generate_run(struct sup *s)
{
	struct gen_params p = { s->cfg.gen_events, s->cfg.gen_keys, s->cfg.gen_seed,
				s->cfg.gen_skew };
	struct gen *g = gen_new(&p);
	if (!g) {
		log_error("cannot start the generator: %s", strerror(errno));
		return -1;
	}
	s->source_size = p.events;
	gen_seek(g, s->resume_seq);
	char key[GEN_KEY_MAX], payload[GEN_PAYLOAD_MAX];
	size_t key_len, payload_len;
	uint64_t seq;
	unsigned since_tick = 0;
	int rc = 0;
	while (!sup_stop && gen_next(g, key, &key_len, payload, &payload_len, &seq)) {
		s->lines++;
		if (sup_dispatch(s, seq, key, key_len, payload, payload_len, NULL, 0) != 0) {
			rc = sup_stop ? 0 : -1;
			break;
		}
		s->next_seq = seq + key_len + payload_len + 2; /* as in the TSV file */
		if (++since_tick == TICK_EVERY) {
			since_tick = 0;
			s->source_pos = gen_produced(g);
			if (sup_tick(s) != 0) {
				rc = sup_stop ? 0 : -1;
				break;
			}
		}
	}
	s->source_pos = gen_produced(g);
	gen_free(g);
	return rc;
}
