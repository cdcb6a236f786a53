/* deadletter.c - format and write dead-letter lines (see deadletter.h). */
#include "deadletter.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int reserve(struct dl_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

/* Worst case 4 bytes out per byte in (\xHH). */
static void put_escaped(struct dl_buf *b, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	char *o = b->data + b->len;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		size_t n;
		switch (c) {
		case '\t':
			*o++ = '\\';
			*o++ = 't';
			break;
		case '\n':
			*o++ = '\\';
			*o++ = 'n';
			break;
		case '\r':
			*o++ = '\\';
			*o++ = 'r';
			break;
		case '\\':
			*o++ = '\\';
			*o++ = '\\';
			break;
		default:
			if (c >= 0x20 && c < 0x7f) {
				*o++ = (char)c;
			} else if (c >= 0x80 && (n = utf8_len(s + i, len - i)) != 0) {
				memcpy(o, s + i, n);
				o += n;
				i += n - 1;
			} else {
				*o++ = '\\';
				*o++ = 'x';
				*o++ = hex[c >> 4];
				*o++ = hex[c & 15];
			}
		}
	}
	b->len = (size_t)(o - b->data);
}

#define TAIL_MAX (sizeof("\t" DL_TRUNCATED) + 20 + 1) /* the cut mark and '\n' */

/* "seq<TAB>reason<TAB>". A reason is a word, but a handler's (rm_reject)
 * could hold anything: its control bytes are written as '?', and an empty
 * one as "rejected", so the fields stay apart. */
static int add_head(struct dl_buf *b, uint64_t seq, const char *reason, size_t body)
{
	if (!*reason)
		reason = "rejected";
	if (reserve(b, 32 + strlen(reason) + 4 * body + TAIL_MAX) != 0)
		return -ENOMEM;
	if (b->len == 0)
		b->first_seq = seq;
	b->len += (size_t)sprintf(b->data + b->len, "%llu\t", (unsigned long long)seq);
	for (const char *r = reason; *r; r++) {
		unsigned char c = (unsigned char)*r;
		b->data[b->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	b->data[b->len++] = '\t';
	return 0;
}

int dl_add_cut(struct dl_buf *b, uint64_t seq, const char *reason, const char *line, size_t len,
	       uint64_t total)
{
	if (add_head(b, seq, reason, len) != 0)
		return -ENOMEM;
	put_escaped(b, line, len);
	if (total > len)
		b->len += (size_t)sprintf(b->data + b->len, "\t" DL_TRUNCATED "%llu",
					  (unsigned long long)total);
	b->data[b->len++] = '\n';
	b->lines++;
	return 0;
}

int dl_add(struct dl_buf *b, uint64_t seq, const char *reason, const char *line, size_t len)
{
	return dl_add_cut(b, seq, reason, line, len, len);
}

int dl_add_event(struct dl_buf *b, uint64_t seq, const char *reason, const char *key,
		 size_t key_len, char delim, const char *payload, size_t payload_len)
{
	if (add_head(b, seq, reason, key_len + 1 + payload_len) != 0)
		return -ENOMEM;
	put_escaped(b, key, key_len);
	put_escaped(b, &delim, 1);
	put_escaped(b, payload, payload_len);
	b->data[b->len++] = '\n';
	b->lines++;
	return 0;
}

int dl_flush(struct dl_buf *b, int fd)
{
	size_t off = 0;
	while (off < b->len) {
		ssize_t n = write(fd, b->data + off, b->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = -errno;
			/* Keep what was not written (first_seq stays, which only
			 * holds the watermark back further). */
			memmove(b->data, b->data + off, b->len - off);
			b->len -= off;
			return err;
		}
		off += (size_t)n;
	}
	b->len = 0;
	return 0;
}

void dl_free(struct dl_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int dl_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	return fd < 0 ? -errno : fd;
}

/* ---- reading back ---- */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

ssize_t dl_decode(const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		int hi, lo;

		if (c == '\t' || c == '\n')
			return -EINVAL;
		if (c != '\\') {
			out[o++] = c;
			continue;
		}
		if (++i == len)
			return -EINVAL;
		switch (in[i]) {
		case 't':
			out[o++] = '\t';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 'r':
			out[o++] = '\r';
			break;
		case '\\':
			out[o++] = '\\';
			break;
		case 'x':
			if (len - i < 3 || (hi = hex_digit(in[i + 1])) < 0 ||
			    (lo = hex_digit(in[i + 2])) < 0)
				return -EINVAL;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
			break;
		default:
			return -EINVAL;
		}
	}
	return (ssize_t)o;
}

/* A decimal number filling [s, end) exactly. */
static int parse_u64(const char *s, const char *end, uint64_t *v)
{
	uint64_t x = 0;

	if (s == end)
		return -EINVAL;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9' || x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*v = x;
	return 0;
}

int dl_parse(char *text, size_t len, struct dl_record *rec)
{
	char *end = text + len, *t1, *t2, *t3, *line_end;
	ssize_t n;

	memset(rec, 0, sizeof(*rec));
	if (memchr(text, '\n', len) || memchr(text, '\0', len))
		return -EINVAL;
	t1 = memchr(text, '\t', len);
	t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(end - t1 - 1)) : NULL;
	if (!t2 || t2 == t1 + 1 || parse_u64(text, t1, &rec->seq) != 0)
		return -EINVAL;
	t3 = memchr(t2 + 1, '\t', (size_t)(end - t2 - 1));
	line_end = t3 ? t3 : end;
	if (t3) {
		const size_t plen = sizeof(DL_TRUNCATED) - 1;
		if ((size_t)(end - t3 - 1) <= plen || memcmp(t3 + 1, DL_TRUNCATED, plen) != 0 ||
		    parse_u64(t3 + 1 + plen, end, &rec->total) != 0)
			return -EINVAL;
		rec->truncated = 1;
	}
	n = dl_decode(t2 + 1, (size_t)(line_end - t2 - 1), t2 + 1);
	if (n < 0 || (rec->truncated && rec->total <= (uint64_t)n))
		return -EINVAL;
	*t2 = '\0';
	rec->reason = t1 + 1;
	rec->line = t2 + 1;
	rec->len = (size_t)n;
	if (!rec->truncated)
		rec->total = rec->len;
	return 0;
}
