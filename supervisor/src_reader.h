/* src_reader.h - lines out of one file (or pipe) at a time, for the file
 * and spool sources: buffered reads, complete lines handed to src_line with
 * the seq base + their offset, and lines longer than the buffer
 * dead-lettered (too_long), never silently cut. Where the file comes from,
 * what it is and what comes after it is the source's business. */
#ifndef RM_SRC_READER_H
#define RM_SRC_READER_H

#include <stddef.h>
#include <stdint.h>

struct source;

#define SRC_HEAD_MAX 4096u /* bytes of a file's start in its fingerprint */
#define SRC_FNV_BASIS 0xcbf29ce484222325ull

/* FNV-1a, 64 bits: a file's fingerprint. */
uint64_t src_fnv1a(uint64_t h, const void *data, size_t len);

/* The fingerprint of the first `len` (at most SRC_HEAD_MAX) bytes of fd,
 * read with pread so the read position does not move. 0; 1 when the file
 * has fewer bytes than that now; -1 on a read error (errno). */
int src_head_hash(int fd, uint64_t len, uint64_t *hash);

struct src_reader {
	int fd;
	uint64_t base;	   /* the seq of the file's first byte */
	uint64_t read_pos; /* file offset of the next read(2) */
	char *buf;
	size_t cap, start, end; /* unconsumed bytes are buf[start..end) */
	uint64_t offset;	/* file offset of buf[start]; its seq is base + offset */
	int eof;
	/* An overlong line in progress: its first bytes, its seq and length. */
	char *long_line;
	size_t long_len;
	uint64_t long_seq, long_total;
	int in_long;
	uint64_t next_seq; /* every line below it was handed over */
	/* Grown with what is read of the first SRC_HEAD_MAX bytes, when
	 * track_head is set (fill). */
	int track_head;
	uint64_t head_len, head_hash;
};

/* The buffers, for lines up to max_event_size. 0, or -1 (out of memory). */
int src_reader_init(struct src_reader *r, uint64_t max_event_size);
void src_reader_free(struct src_reader *r);

/* Read the file now on r->fd from file offset `at` (already sought to),
 * its first byte at seq `base`: the buffer and the line in progress are
 * dropped. */
void src_reader_reset(struct src_reader *r, uint64_t base, uint64_t at);

/* Hand the complete lines in the buffer over, up to `budget` of them
 * (*handed counts them). With at_end (no more bytes will come), an
 * unterminated last line is one too. 0, -EAGAIN when a ring is full (the
 * line stays), -1 when the run must stop. */
int src_reader_drain(struct source *src, struct src_reader *r, int at_end, unsigned budget,
		     unsigned *handed);

/* One read(2) into the buffer (eof set at the end). 0, or -1 (errno). */
int src_reader_fill(struct source *src, struct src_reader *r);

#endif
