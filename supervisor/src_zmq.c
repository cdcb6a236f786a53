/* src_zmq.c - the zmq source: a PULL socket bound to [source] bind.
 *
 * A message is either text, one event per line exactly as the file source
 * reads them (`key<delimiter>payload`, '\n' between lines, the last newline
 * optional), or two frames [key, payload], taken as the line
 * key<delimiter>payload. Every line, and every message that is not text,
 * takes the next value of a counter as its seq, dead-lettered
 * or not. The supervisor records the counter with the watermark, so a
 * restart continues above every seq already used.
 *
 * Nothing here can be replayed: what a producer or libzmq still holds when
 * the supervisor stops or dies is gone (at-most-once), unlike the file and
 * Kafka sources. Once an event is in a ring it is as safe as any other.
 *
 * The supervisor's loop waits on the socket's ZMQ_FD and takes messages
 * without waiting, a budget at a time. A message whose event finds its
 * ring full is kept, with how far into it we got, until there is room;
 * meanwhile the socket's queue fills to its high-water mark and libzmq
 * stops reading the producers' connections, so the backpressure reaches
 * them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cfg.h"
#include "log.h"
#include "source.h"

/* The largest message taken is the larger of this and 4 x max_event_size:
 * libzmq drops the connection of a producer that sends a bigger one, where
 * without a limit one message could take all our memory. */
#define MSG_SIZE_MIN_LIMIT (64 << 20)
/* ZMQ_FD is edge-triggered: it is only waited on once a read found
 * nothing; this bounds the wait should an edge be missed. */
#define IDLE_MS 100

struct zsrc {
	void *ctx, *sock;
	int fd; /* ZMQ_FD */
	struct src_joined joined;
	uint64_t next_seq;
	/* The message being handed over: its frames, and for text the offset
	 * of its next line. */
	int have;
	zmq_msg_t first, second;
	unsigned frames;
	size_t text_off;
};

/* One line (its first len bytes of total) under the next seq. */
static int zsrc_line(struct source *src, struct zsrc *z, const char *line, size_t len, size_t total)
{
	if (len > src_line_limit(src))
		len = src_line_limit(src);
	int rc = src_line(src, -1, z->next_seq, line, len, total > len ? total : len);
	if (rc == 0)
		z->next_seq++;
	return rc;
}

/* One event per line; an empty message is one empty line. */
static int zsrc_text(struct source *src, struct zsrc *z, const char *text, size_t len)
{
	do {
		const char *p = text + z->text_off;
		const char *nl = memchr(p, '\n', len - z->text_off);
		size_t n = nl ? (size_t)(nl - p) : len - z->text_off;
		int rc = zsrc_line(src, z, p, n, n);
		if (rc != 0)
			return rc;
		z->text_off += n + 1;
	} while (z->text_off < len);
	return 0;
}

/* Not a line: dead-lettered under its own seq; no more than the line limit
 * of it is kept. */
static int zsrc_refuse(struct source *src, struct zsrc *z, const char *reason, const char *data,
		       size_t len)
{
	size_t keep = len > src_line_limit(src) ? src_line_limit(src) : len;
	int rc = sup_dead_letter(src->sup, z->next_seq, reason, data, keep, len);
	if (rc == 0)
		z->next_seq++;
	return rc;
}

/* The next part of a multipart message: libzmq delivers them all at once,
 * so this never waits; it may still see EINTR. */
static int recv_part(void *sock, zmq_msg_t *m)
{
	for (;;) {
		if (zmq_msg_recv(m, sock, 0) >= 0)
			return 0;
		if (zmq_errno() != EINTR)
			return -1;
	}
}

/* Receive the rest of the message whose first frame is in z->first: the
 * second frame, and the frames after it counted and let go. */
static int zsrc_frames(struct zsrc *z)
{
	z->frames = 1;
	if (!zmq_msg_more(&z->first))
		return 0;
	if (recv_part(z->sock, &z->second) != 0)
		return -1;
	z->frames = 2;
	while (zmq_msg_more(&z->second)) {
		if (recv_part(z->sock, &z->second) != 0)
			return -1;
		z->frames++;
	}
	return 0;
}

/* Hand the message in hand over: 0, -EAGAIN (a ring is full: it stays in
 * hand), -1. */
static int zsrc_handle(struct source *src, struct zsrc *z)
{
	const char *d1 = zmq_msg_data(&z->first);
	size_t n1 = zmq_msg_size(&z->first);
	if (z->frames == 1)
		return zsrc_text(src, z, d1, n1);
	if (z->frames == 2) {
		int rc = src_pair(src, &z->joined, -1, z->next_seq, d1, n1,
				  zmq_msg_data(&z->second), zmq_msg_size(&z->second));
		if (rc == 0)
			z->next_seq++;
		return rc;
	}
	log_warn("zmq source: a message of %u frames (1 or 2 expected) dead-lettered at seq=%llu",
		 z->frames, (unsigned long long)z->next_seq);
	return zsrc_refuse(src, z, "too_many_frames", d1, n1);
}

static void zsrc_drop(struct zsrc *z)
{
	zmq_msg_close(&z->first);
	zmq_msg_close(&z->second);
	z->have = 0;
}

static enum src_result zsrc_read(struct source *src, unsigned budget)
{
	struct zsrc *z = src->priv;
	for (unsigned n = 0; n < budget; n++) {
		if (!z->have) {
			zmq_msg_init(&z->first);
			zmq_msg_init(&z->second);
			z->have = 1;
			z->text_off = 0;
			if (zmq_msg_recv(&z->first, z->sock, ZMQ_DONTWAIT) < 0) {
				int e = zmq_errno();
				zsrc_drop(z);
				if (e == EAGAIN || e == EINTR)
					return n ? SRC_MORE : SRC_IDLE;
				log_error("zmq source: cannot receive: %s", zmq_strerror(e));
				return SRC_ERROR;
			}
			if (zsrc_frames(z) != 0) {
				log_error("zmq source: cannot receive: %s",
					  zmq_strerror(zmq_errno()));
				return SRC_ERROR;
			}
		}
		int rc = zsrc_handle(src, z);
		if (rc == -EAGAIN)
			return SRC_FULL;
		zsrc_drop(z);
		if (rc != 0)
			return SRC_ERROR;
	}
	return SRC_MORE;
}

static int zsrc_pollfd(struct source *src, int *idle_ms)
{
	struct zsrc *z = src->priv;
	*idle_ms = IDLE_MS;
	return z->fd;
}

static void zsrc_position(const struct source *src, struct src_pos *pos)
{
	const struct zsrc *z = src->priv;
	pos->next_seq = pos->read = z->next_seq;
	pos->size = 0;
}

static int zsrc_open(struct source *src)
{
	const char *ep = src->cfg->zmq_bind;
	int64_t max_msg = (int64_t)(4 * src->cfg->max_event_size);
	int linger = 0, ipv6 = strchr(ep, '[') != NULL; /* tcp://[::1]:P */
	size_t fd_len = sizeof(int);
	struct zsrc *z = calloc(1, sizeof(*z));
	if (!z) {
		log_error("zmq source: out of memory");
		return 1;
	}
	src->priv = z;
	z->next_seq = src->resume_seq;
	if (max_msg < MSG_SIZE_MIN_LIMIT)
		max_msg = MSG_SIZE_MIN_LIMIT;
	z->ctx = zmq_ctx_new();
	if (!z->ctx || !(z->sock = zmq_socket(z->ctx, ZMQ_PULL))) {
		log_error("zmq source: cannot create a socket: %s", zmq_strerror(zmq_errno()));
		return 1;
	}
	if (zmq_setsockopt(z->sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof(max_msg)) != 0 ||
	    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_setsockopt(z->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) != 0 ||
	    zmq_getsockopt(z->sock, ZMQ_FD, &z->fd, &fd_len) != 0) {
		log_error("zmq source: cannot set socket options: %s", zmq_strerror(zmq_errno()));
		return 1;
	}
	if (zmq_bind(z->sock, ep) != 0) {
		log_error("%s: [source] bind = %s: cannot bind: %s",
			  cfg_origin(src->cfg, "source", "bind"), ep, zmq_strerror(zmq_errno()));
		return 1;
	}
	log_info("zmq source listening endpoint=%s next_seq=%llu", ep,
		 (unsigned long long)z->next_seq);
	return 0;
}

static int zsrc_close(struct source *src)
{
	struct zsrc *z = src->priv;
	if (!z)
		return 0;
	if (z->have)
		zsrc_drop(z);
	if (z->sock)
		zmq_close(z->sock);
	while (z->ctx && zmq_ctx_term(z->ctx) != 0 && zmq_errno() == EINTR)
		;
	free(z->joined.buf);
	free(z);
	src->priv = NULL;
	return 0;
}

const struct source_ops src_zmq_ops = {
    .name = "zmq",
    .open = zsrc_open,
    .pollfd = zsrc_pollfd,
    .read = zsrc_read,
    .position = zsrc_position,
    .close = zsrc_close,
};
