/* src_zmq.c - the zmq source: a PULL socket bound to [source] bind.
 *
 * A message is either text, one event per line exactly as the file source
 * reads them (`key<delimiter>payload`, '\n' between lines, the last newline
 * optional), or two frames [key, payload], taken as the line
 * key<delimiter>payload. Every line, and every message that is not text,
 * takes the next value of a counter (s->next_seq) as its seq, dead-lettered
 * or not. The supervisor records the counter with the watermark, so a
 * restart continues above every seq already used.
 *
 * Nothing here can be replayed: what a producer or libzmq still holds when
 * the supervisor stops or dies is gone (at-most-once), unlike the file and
 * Kafka sources. Once an event is in a ring it is as safe as any other.
 *
 * The loop never blocks for long: zmq_poll for POLL_MS, take every waiting
 * message without waiting, sup_tick in between (signals, children, the
 * control socket). A full ring makes sup_dispatch wait (ticking); meanwhile
 * the socket's queue fills to its high-water mark and libzmq stops reading
 * the producers' connections, so the backpressure reaches them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "supervisor.h"

#define POLL_MS 10
#define TICK_EVERY 4096u
/* The largest message taken is the larger of this and 4 x max_event_size:
 * libzmq drops the connection of a producer that sends a bigger one, where
 * without a limit one message could take all our memory. */
#define MSG_SIZE_MIN_LIMIT (64 << 20)

struct zsrc {
	void *ctx, *sock;
	char *joined; /* key<delimiter>payload of a two-frame message */
	size_t joined_cap;
	unsigned since_tick;
};

/* Lines longer than this are cut before validation: they are too long
 * anyway (two bytes over, so dropping a trailing CR cannot bring one under
 * the limit), and the dead letter keeps a bounded prefix of them, as the
 * file source does. */
static size_t line_limit(const struct sup *s)
{
	return (size_t)s->cfg.max_event_size + 2;
}

static int zsrc_line(struct sup *s, struct zsrc *z, const char *line, size_t len, size_t total)
{
	uint64_t seq = s->next_seq;
	if (len > line_limit(s))
		len = line_limit(s);
	int rc = src_handle_cut_line(s, -1, seq, line, len, total > len ? total : len);
	s->next_seq = seq + 1;
	s->source_pos = s->next_seq;
	if (rc == 0 && ++z->since_tick >= TICK_EVERY) {
		z->since_tick = 0;
		rc = sup_tick(s);
	}
	return rc;
}

/* One event per line; an empty message is one empty line. */
static int zsrc_text(struct sup *s, struct zsrc *z, const char *text, size_t len)
{
	size_t off = 0;
	do {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		if (zsrc_line(s, z, text + off, n, n) != 0)
			return -1;
		off += n + 1;
	} while (off < len);
	return 0;
}

/* Not a line: dead-letter it under its own seq. The first `len` bytes of
 * `total` are in data; no more than line_limit of them are kept. */
static int zsrc_refuse_cut(struct sup *s, const char *reason, const char *data, size_t len,
			   size_t total)
{
	uint64_t seq = s->next_seq++;
	s->source_pos = s->next_seq;
	s->lines++;
	if (len > line_limit(s))
		len = line_limit(s);
	return sup_dead_letter_cut(s, seq, reason, data, len, total > len ? total : len);
}

static int zsrc_refuse(struct sup *s, const char *reason, const char *data, size_t len)
{
	return zsrc_refuse_cut(s, reason, data, len, len);
}

/* [key, payload]: the line key<delimiter>payload. A key holding the
 * delimiter or a newline would not survive that, so it is refused. */
static int zsrc_pair(struct sup *s, struct zsrc *z, const char *key, size_t key_len,
		     const char *payload, size_t payload_len)
{
	size_t want = key_len + 1 + payload_len;
	size_t len = want < line_limit(s) ? want : line_limit(s);
	if (len > z->joined_cap) {
		char *p = realloc(z->joined, len);
		if (!p) {
			log_error("out of memory for a zmq message of %zu bytes", want);
			return -1;
		}
		z->joined = p;
		z->joined_cap = len;
	}
	size_t k = key_len < len ? key_len : len;
	memcpy(z->joined, key, k);
	if (k < len)
		z->joined[k] = s->cfg.delimiter;
	if (k + 1 < len)
		memcpy(z->joined + k + 1, payload, len - k - 1);
	if (memchr(key, s->cfg.delimiter, key_len) || memchr(key, '\n', key_len))
		return zsrc_refuse_cut(s, "bad_key", z->joined, len, want);
	return zsrc_line(s, z, z->joined, len, want);
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

/* The frames after the second: count them and let them go. */
static int skip_parts(void *sock, zmq_msg_t *last, unsigned *frames)
{
	while (zmq_msg_more(last)) {
		if (recv_part(sock, last) != 0)
			return -1;
		(*frames)++;
	}
	return 0;
}

static int zsrc_handle(struct sup *s, struct zsrc *z, zmq_msg_t *first, zmq_msg_t *second)
{
	unsigned frames = 1;
	if (zmq_msg_more(first)) {
		if (recv_part(z->sock, second) != 0)
			goto recv_error;
		frames = 2;
		if (skip_parts(z->sock, second, &frames) != 0)
			goto recv_error;
	}
	const char *d1 = zmq_msg_data(first);
	size_t n1 = zmq_msg_size(first);
	if (frames == 1)
		return zsrc_text(s, z, d1, n1);
	if (frames == 2)
		return zsrc_pair(s, z, d1, n1, zmq_msg_data(second), zmq_msg_size(second));
	log_warn("zmq source: a message of %u frames (1 or 2 expected) dead-lettered at seq=%llu",
		 frames, (unsigned long long)s->next_seq);
	return zsrc_refuse(s, "too_many_frames", d1, n1);
recv_error:
	log_error("zmq source: cannot receive: %s", zmq_strerror(zmq_errno()));
	return -1;
}

/* Take one message if one is waiting. Returns 1 if one was handled, 0 if
 * none was waiting, -1 when the run must stop. */
static int zsrc_take(struct sup *s, struct zsrc *z)
{
	zmq_msg_t first, second;
	int rc;
	zmq_msg_init(&first);
	zmq_msg_init(&second);
	if (zmq_msg_recv(&first, z->sock, ZMQ_DONTWAIT) < 0) {
		int e = zmq_errno();
		rc = e == EAGAIN || e == EINTR ? 0 : -1;
		if (rc)
			log_error("zmq source: cannot receive: %s", zmq_strerror(e));
	} else {
		rc = zsrc_handle(s, z, &first, &second) == 0 ? 1 : -1;
	}
	zmq_msg_close(&first);
	zmq_msg_close(&second);
	return rc;
}

static int zsrc_open(struct sup *s, struct zsrc *z)
{
	const char *ep = s->cfg.zmq_bind;
	int64_t max_msg = (int64_t)(4 * s->cfg.max_event_size);
	int linger = 0, ipv6 = strchr(ep, '[') != NULL; /* tcp://[::1]:P */
	if (max_msg < MSG_SIZE_MIN_LIMIT)
		max_msg = MSG_SIZE_MIN_LIMIT;
	z->ctx = zmq_ctx_new();
	if (!z->ctx || !(z->sock = zmq_socket(z->ctx, ZMQ_PULL))) {
		log_error("zmq source: cannot create a socket: %s", zmq_strerror(zmq_errno()));
		return -1;
	}
	if (zmq_setsockopt(z->sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof(max_msg)) != 0 ||
	    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_setsockopt(z->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) != 0) {
		log_error("zmq source: cannot set socket options: %s", zmq_strerror(zmq_errno()));
		return -1;
	}
	if (zmq_bind(z->sock, ep) != 0) {
		log_error("%s: [source] bind = %s: cannot bind: %s",
			  cfg_origin(&s->cfg, "source", "bind"), ep, zmq_strerror(zmq_errno()));
		return -1;
	}
	log_info("zmq source listening endpoint=%s next_seq=%llu", ep,
		 (unsigned long long)s->next_seq);
	return 0;
}

static void zsrc_close(struct zsrc *z)
{
	if (z->sock)
		zmq_close(z->sock);
	while (z->ctx && zmq_ctx_term(z->ctx) != 0 && zmq_errno() == EINTR)
		;
	free(z->joined);
}

int src_zmq_run(struct sup *s)
{
	struct zsrc z = {0};
	int rc = -1;
	if (s->next_seq < s->resume_seq)
		s->next_seq = s->resume_seq;
	if (zsrc_open(s, &z) != 0)
		goto out;
	while (!sup_stop) {
		zmq_pollitem_t item = {.socket = z.sock, .events = ZMQ_POLLIN};
		if (zmq_poll(&item, 1, POLL_MS) < 0 && zmq_errno() != EINTR) {
			log_error("zmq source: poll failed: %s", zmq_strerror(zmq_errno()));
			goto out;
		}
		int got;
		while ((got = zsrc_take(s, &z)) > 0 && !sup_stop)
			;
		if (got < 0 || sup_tick(s) != 0)
			break;
	}
	rc = sup_stop ? 0 : -1;
out:
	zsrc_close(&z);
	return rc;
}
