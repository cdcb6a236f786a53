/* ctlproto.c - the control socket's framing, and a client's blocking calls
 * (see ctlproto.h). */
#include "ctlproto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_RETRY_MS 10 /* while the server's backlog is full */

void ctlproto_put_header(unsigned char hdr[CTLPROTO_HEADER], uint32_t len)
{
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
}

uint32_t ctlproto_get_header(const unsigned char hdr[CTLPROTO_HEADER])
{
	return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
}

void ctlproto_add_frame(struct proto_buf *b, const void *data, size_t len)
{
	unsigned char hdr[CTLPROTO_HEADER];
	if (len > UINT32_MAX) {
		b->failed = 1;
		return;
	}
	ctlproto_put_header(hdr, (uint32_t)len);
	proto_buf_add(b, (const char *)hdr, sizeof(hdr));
	if (len)
		proto_buf_add(b, data, len);
}

void ctlproto_add_reply(struct proto_buf *b, int ok, const void *body, size_t len)
{
	const char *status = ok ? PROTO_STATUS_OK : PROTO_STATUS_ERROR;
	ctlproto_add_frame(b, status, strlen(status));
	ctlproto_add_frame(b, body, len);
}

enum ctlproto_scan ctlproto_scan(const void *buf, size_t avail, size_t max, size_t *len)
{
	*len = 0;
	if (avail < CTLPROTO_HEADER)
		return CTLPROTO_PARTIAL;
	*len = ctlproto_get_header(buf);
	if (*len > max)
		return CTLPROTO_OVERSIZE;
	return avail - CTLPROTO_HEADER >= *len ? CTLPROTO_WHOLE : CTLPROTO_PARTIAL;
}

/* ---- client ---- */

uint64_t ctlproto_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int ms_left(uint64_t deadline_ms)
{
	uint64_t now = ctlproto_now_ms();
	if (now >= deadline_ms)
		return 0;
	return deadline_ms - now > 1000000 ? 1000000 : (int)(deadline_ms - now);
}

/* Wait until fd is ready for `events` or the deadline passes: 0, or
 * -ETIMEDOUT, -ECANCELED, -errno. A signal is no reason to give up unless
 * *cancel says so (a resized terminal under top). */
static int wait_for(int fd, short events, uint64_t deadline_ms, volatile sig_atomic_t *cancel)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int rc = poll(&p, 1, ms_left(deadline_ms));
		if (rc > 0)
			return 0; /* ready, or an error or hangup the next call reports */
		if (rc == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
		if (cancel && *cancel)
			return -ECANCELED;
	}
}

int ctlproto_connect(const char *path, uint64_t deadline_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		int e = errno;
		close(fd);
		/* A Unix socket's connect() does not go on in the background:
		 * EAGAIN is a full backlog, to be tried again. */
		if (e != EAGAIN && e != EINTR)
			return -e;
		int left = ms_left(deadline_ms);
		if (left == 0)
			return -ETIMEDOUT;
		struct timespec ts = {0, (left < CONNECT_RETRY_MS ? left : CONNECT_RETRY_MS) *
					     1000000L};
		nanosleep(&ts, NULL);
	}
}

int ctlproto_send_all(int fd, const void *data, size_t len, uint64_t deadline_ms,
		      volatile sig_atomic_t *cancel)
{
	const char *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		int rc = wait_for(fd, POLLOUT, deadline_ms, cancel);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int ctlproto_send_request(int fd, const char *text, size_t len, uint64_t deadline_ms,
			  volatile sig_atomic_t *cancel)
{
	unsigned char hdr[CTLPROTO_HEADER];
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	ctlproto_put_header(hdr, (uint32_t)len);
	int rc = ctlproto_send_all(fd, hdr, sizeof(hdr), deadline_ms, cancel);
	return rc ? rc : ctlproto_send_all(fd, text, len, deadline_ms, cancel);
}

/* Read exactly len bytes (no more: a next reply stays in the socket). */
static int recv_exact(int fd, void *buf, size_t len, uint64_t deadline_ms,
		      volatile sig_atomic_t *cancel)
{
	char *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == ECONNRESET || errno == EPIPE)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		int rc = wait_for(fd, POLLIN, deadline_ms, cancel);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int recv_frame_len(int fd, size_t max, size_t *len, uint64_t deadline_ms,
			  volatile sig_atomic_t *cancel)
{
	unsigned char hdr[CTLPROTO_HEADER];
	int rc = recv_exact(fd, hdr, sizeof(hdr), deadline_ms, cancel);
	if (rc != 0)
		return rc;
	*len = ctlproto_get_header(hdr);
	return *len > max ? -EPROTO : 0;
}

int ctlproto_recv_reply(int fd, int *ok, struct proto_buf *body, uint64_t deadline_ms,
			volatile sig_atomic_t *cancel)
{
	char status[CTLPROTO_MAX_STATUS];
	size_t len;
	*ok = 0;
	int rc = recv_frame_len(fd, sizeof(status), &len, deadline_ms, cancel);
	if (rc == 0)
		rc = recv_exact(fd, status, len, deadline_ms, cancel);
	if (rc != 0)
		return rc;
	if (len == strlen(PROTO_STATUS_OK) && memcmp(status, PROTO_STATUS_OK, len) == 0)
		*ok = 1;
	else if (len != strlen(PROTO_STATUS_ERROR) || memcmp(status, PROTO_STATUS_ERROR, len) != 0)
		return -EPROTO;
	rc = recv_frame_len(fd, CTLPROTO_MAX_BODY, &len, deadline_ms, cancel);
	if (rc != 0)
		return rc;
	while (len && !body->failed) {
		char chunk[16384];
		size_t n = len < sizeof(chunk) ? len : sizeof(chunk);
		rc = recv_exact(fd, chunk, n, deadline_ms, cancel);
		if (rc != 0)
			return rc;
		proto_buf_add(body, chunk, n);
		len -= n;
	}
	return body->failed ? -ENOMEM : 0;
}
