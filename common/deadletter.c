/* deadletter.c - format and write dead-letter lines (see deadletter.h). */
#include "deadletter.h"

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
static void put_escaped(struct dl_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char *o = b->data + b->len;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
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
			if (c < 0x20 || c == 0x7f) {
				*o++ = '\\';
				*o++ = 'x';
				*o++ = hex[c >> 4];
				*o++ = hex[c & 15];
			} else {
				*o++ = (char)c;
			}
		}
	}
	b->len = (size_t)(o - b->data);
}

static int add_head(struct dl_buf *b, uint64_t seq, const char *reason, size_t body)
{
	if (reserve(b, 32 + strlen(reason) + 4 * body + 2) != 0)
		return -ENOMEM;
	if (b->len == 0)
		b->first_seq = seq;
	b->len += (size_t)sprintf(b->data + b->len, "%llu\t%s\t", (unsigned long long)seq, reason);
	return 0;
}

int dl_add(struct dl_buf *b, uint64_t seq, const char *reason, const char *line, size_t len)
{
	if (add_head(b, seq, reason, len) != 0)
		return -ENOMEM;
	put_escaped(b, line, len);
	b->data[b->len++] = '\n';
	b->lines++;
	return 0;
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
