/* sink.c - a worker's zmq output (see sink.h).
 *
 * A send waits in slices of STALL_SLICE_MS (ZMQ_SNDTIMEO) rather than
 * forever so that a worker held by a slow or absent consumer keeps its
 * heartbeat and says in the log why it is not moving (stall.h). SIGTERM
 * does not cut a wait short at once: a slow consumer should not fail a
 * graceful stop. Only when it then takes nothing for stop_timeout does the
 * send give up.
 */
#include "sink.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "cfg.h"
#include "log.h"
#include "stall.h"

struct sink {
	void *ctx, *sock;
	const char *endpoint; /* the cfg's: the worker's cfg outlives the sink */
	int linger_ms;
	struct stall stall; /* while the consumer takes nothing */
};

static int set_int(void *sock, int opt, int v)
{
	return zmq_setsockopt(sock, opt, &v, sizeof(v));
}

int sink_open(struct sink **out, const struct cfg *cfg, unsigned partition, char *err,
	      size_t errlen)
{
	struct sink *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s) {
		snprintf(err, errlen, "out of memory for the zmq output");
		return -1;
	}
	s->endpoint = cfg->output_connect;
	s->linger_ms = cfg->stop_timeout_ms > INT_MAX ? INT_MAX : (int)cfg->stop_timeout_ms;
	stall_init(&s->stall, (uint64_t)s->linger_ms * 1000000u, 0);
	const char *what = "create a socket";
	s->ctx = zmq_ctx_new();
	if (!s->ctx || !(s->sock = zmq_socket(s->ctx, ZMQ_PUSH)))
		goto fail;
	what = "set socket options";
	if (set_int(s->sock, ZMQ_SNDHWM, SINK_SNDHWM) != 0 ||
	    set_int(s->sock, ZMQ_SNDTIMEO, STALL_SLICE_MS) != 0 ||
	    set_int(s->sock, ZMQ_LINGER, s->linger_ms) != 0 ||
	    set_int(s->sock, ZMQ_IPV6, strchr(s->endpoint, '[') != NULL) != 0)
		goto fail;
	what = "connect";
	if (zmq_connect(s->sock, s->endpoint) != 0)
		goto fail;
	stall_say(&s->stall, STALL_SLOW,
		  "output endpoint=%s has taken nothing for %d s: waiting for it (partition %u "
		  "holds its batch)",
		  s->endpoint, STALL_WARN_SLICES * STALL_SLICE_MS / 1000, partition);
	stall_say(&s->stall, STALL_GIVE_UP,
		  "output endpoint=%s takes nothing and the worker must stop: giving the batch up "
		  "(it is redone, and sent, at the next start)",
		  s->endpoint);
	*out = s;
	return 0;
fail:
	snprintf(err, errlen, "[output] connect = %s: cannot %s: %s",
		 s->endpoint ? s->endpoint : "(unset)", what, zmq_strerror(zmq_errno()));
	sink_close(s);
	return -1;
}

void sink_watch(struct sink *s, _Atomic uint64_t *heartbeat_ns, volatile sig_atomic_t *stop)
{
	stall_watch(&s->stall, heartbeat_ns, stop);
}

/* One message, waiting as long as the consumer makes us. */
static int send_msg(struct sink *s, const char *data, size_t len)
{
	stall_begin(&s->stall);
	while (zmq_send(s->sock, data, len, 0) < 0) {
		int e = zmq_errno();
		if (e != EAGAIN && e != EINTR) {
			log_error("[output] connect = %s: cannot send: %s", s->endpoint,
				  zmq_strerror(e));
			return -e;
		}
		if (stall_check(&s->stall, e == EINTR ? STALL_INTERRUPTED : STALL_SLICE) != 0)
			return -EINTR;
	}
	if (s->stall.slices >= STALL_WARN_SLICES)
		log_info("output endpoint=%s takes messages again after %u s", s->endpoint,
			 s->stall.slices * STALL_SLICE_MS / 1000);
	return 0;
}

int sink_send(struct sink *s, const char *lines, size_t len)
{
	while (len) {
		size_t n = sink_chunk_len(lines, len, SINK_MSG_MAX);
		if (n == 0)
			n = len; /* a last line without its newline */
		int rc = send_msg(s, lines, n);
		if (rc != 0)
			return rc;
		lines += n;
		len -= n;
	}
	return 0;
}

void sink_close(struct sink *s)
{
	if (!s)
		return;
	if (s->sock)
		zmq_close(s->sock);
	/* Waits up to the linger for libzmq to deliver what it holds. */
	while (s->ctx && zmq_ctx_term(s->ctx) != 0 && zmq_errno() == EINTR)
		;
	free(s);
}
