/* ring_bench.c - how fast events go from one process to another through the
 * ring, compared with the usual alternatives: a pipe, a Unix stream socket
 * pair and a libzmq PUSH/PULL pair over ipc://.
 *
 *   ring_bench [-n EVENTS] [-s SECONDS] [-c RING_BYTES]
 *
 * For 64-byte and 512-byte events (key + payload), the parent produces and a
 * forked child consumes, over each transport in turn; a measurement stops at
 * EVENTS events or after SECONDS (default: 1 s each, no count limit). The
 * consumer counts the events and sums their 64-bit words, and the producer
 * checks both against what it sent, so a figure is printed only for data that
 * arrived whole. The clock runs from the first event sent to the consumer's
 * report. This prints figures; it is not a pass/fail test.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ring.h"

#define KEY_LEN 16
#define MAX_EVENT 512
#define TEMPLATES 64	    /* distinct event bodies, so data is not constant */
#define RING_CAP (4u << 20) /* default; here 4 MiB beat 1 MiB clearly */
#define RING_BATCH 4096	    /* most records per publish and per peek */
#define STREAM_BUF (64 * 1024)
#define CLOCK_EVERY 1024 /* events between looks at the clock */

struct bench {
	uint64_t max_events;
	size_t ring_cap;
	double seconds;
	char tmpl[TEMPLATES][MAX_EVENT] __attribute__((aligned(64)));
};

/* One transport's two ends; which fields are used depends on the transport. */
struct chan {
	size_t ring_cap;
	int pipe_size; /* F_SETPIPE_SZ, or 0 for the default */
	struct ring *ring;
	int fd[2];    /* [0] read end, [1] write end */
	char dir[64]; /* zmq: temp dir holding the socket */
	char endpoint[128];
	void *zctx, *zsock;
	int ready_fd; /* consumer: say when set up */
};

/* What the consumer reports back. */
struct tally {
	uint64_t count;
	uint64_t sum;
};

/* Consumer: tell the producer to start the clock. */
static int signal_ready(struct chan *c)
{
	return write(c->ready_fd, "r", 1) == 1 ? 0 : -errno;
}

struct transport {
	const char *name;
	int (*setup)(struct chan *c);
	int (*consume)(struct chan *c, size_t size, struct tally *t);
	int (*produce)(struct bench *b, struct chan *c, size_t size, uint64_t *sent);
	void (*teardown)(struct chan *c);
};

/* ---- events ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t word_sum(const char *p, size_t size)
{
	uint64_t sum = 0, w;

	for (size_t i = 0; i < size; i += 8) {
		memcpy(&w, p + i, 8);
		sum += w;
	}
	return sum;
}

/* Event i: a template body, with its first word replaced by i. */
static inline void make_event(const struct bench *b, uint64_t i, char *dst, size_t size)
{
	memcpy(dst, b->tmpl[i % TEMPLATES], size);
	memcpy(dst, &i, 8);
}

/* The word sum of events 0..n-1. */
static uint64_t expected_sum(const struct bench *b, uint64_t n, size_t size)
{
	uint64_t sum = n % 2 ? (n - 1) / 2 * n : n / 2 * (n - 1);

	for (uint64_t k = 0; k < TEMPLATES; k++) {
		uint64_t times = n / TEMPLATES + (k < n % TEMPLATES);

		sum += times * (word_sum(b->tmpl[k], size) - word_sum(b->tmpl[k], 8));
	}
	return sum;
}

/* Should the producer stop after `sent` events? */
static int done(const struct bench *b, uint64_t sent, double t0)
{
	if (b->max_events && sent >= b->max_events)
		return 1;
	return b->seconds > 0 && sent % CLOCK_EVERY == 0 && now_s() - t0 >= b->seconds;
}

/* ---- ring ---- */

/* Records per publish and per peek (so per ack): RING_BATCH, but no more
 * than an eighth of the ring, or one side would idle while the other works
 * through a batch that fills the ring. */
static size_t ring_batch(const struct chan *c, size_t size)
{
	size_t n = c->ring_cap / 8 / ring_record_size(KEY_LEN, size - KEY_LEN);

	return n < 1 ? 1 : n > RING_BATCH ? RING_BATCH : n;
}

static int ring_setup(struct chan *c)
{
	c->ring = ring_create(c->ring_cap);
	if (!c->ring) {
		perror("ring_bench: ring_create");
		return -1;
	}
	return 0;
}

static void ring_teardown(struct chan *c)
{
	ring_destroy(c->ring);
}

/* Batches of up to RING_BATCH, one ack per batch. */
static int ring_consume(struct chan *c, size_t size, struct tally *t)
{
	static struct ring_rec rec[RING_BATCH];
	size_t batch = ring_batch(c, size);
	int rc = signal_ready(c);

	while (rc == 0 && (rc = ring_wait_data(c->ring, -1)) == 0) {
		size_t n = ring_peek(c->ring, rec, batch);

		for (size_t i = 0; i < n; i++) {
			if (rec[i].key_len + rec[i].payload_len != size)
				return -1;
			t->sum += word_sum(rec[i].key, size);
		}
		t->count += n;
		if (n)
			ring_ack(c->ring, rec[n - 1].end);
	}
	return rc == -EPIPE ? 0 : rc;
}

static int ring_produce_each(struct bench *b, struct chan *c, size_t size, uint64_t *sent)
{
	char ev[MAX_EVENT] __attribute__((aligned(8)));
	double t0 = now_s();
	uint64_t i;
	int rc;

	for (i = 0; !done(b, i, t0); i++) {
		make_event(b, i, ev, size);
		rc = ring_push(c->ring, i, ev, KEY_LEN, ev + KEY_LEN, size - KEY_LEN);
		if (rc < 0)
			return rc;
	}
	ring_close(c->ring);
	*sent = i;
	return 0;
}

static int ring_produce_batched(struct bench *b, struct chan *c, size_t size, uint64_t *sent)
{
	char ev[MAX_EVENT] __attribute__((aligned(8)));
	uint64_t batch = ring_batch(c, size);
	double t0 = now_s();
	uint64_t i;
	int rc;

	for (i = 0; !done(b, i, t0); i++) {
		make_event(b, i, ev, size);
		while ((rc = ring_put(c->ring, i, ev, KEY_LEN, ev + KEY_LEN, size - KEY_LEN)) ==
		       -EAGAIN) {
			rc = ring_wait_space(c->ring, KEY_LEN, size - KEY_LEN, -1);
			if (rc < 0)
				return rc;
		}
		if (rc < 0)
			return rc;
		if (i % batch == batch - 1)
			ring_publish(c->ring);
	}
	ring_close(c->ring);
	*sent = i;
	return 0;
}

/* ---- pipe and socket pair: byte streams ---- */

static int pipe_setup(struct chan *c)
{
	if (pipe(c->fd) < 0) {
		perror("ring_bench: pipe");
		return -1;
	}
	if (c->pipe_size && fcntl(c->fd[1], F_SETPIPE_SZ, c->pipe_size) < 0)
		perror("ring_bench: F_SETPIPE_SZ (keeping the default)");
	return 0;
}

/* The largest pipe buffer an unprivileged process may ask for by default
 * (/proc/sys/fs/pipe-max-size): much faster than the 64 KiB default. */
static int big_pipe_setup(struct chan *c)
{
	c->pipe_size = 1 << 20;
	return pipe_setup(c);
}

static int socket_setup(struct chan *c)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, c->fd) < 0) {
		perror("ring_bench: socketpair");
		return -1;
	}
	return 0;
}

static void stream_teardown(struct chan *c)
{
	if (c->fd[0] >= 0)
		close(c->fd[0]);
	if (c->fd[1] >= 0)
		close(c->fd[1]);
}

/* Read big chunks until EOF; events are whole 8-byte words, so summing
 * words needs only the odd bytes of a chunk carried over. */
static int stream_consume(struct chan *c, size_t size, struct tally *t)
{
	static char buf[STREAM_BUF + 8] __attribute__((aligned(8)));
	uint64_t bytes = 0;
	size_t carry = 0;
	ssize_t n;

	close(c->fd[1]);
	c->fd[1] = -1;
	if (signal_ready(c) < 0)
		return -errno;
	while ((n = read(c->fd[0], buf + carry, STREAM_BUF)) != 0) {
		size_t have, whole;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		bytes += n;
		have = carry + n;
		whole = have & ~(size_t)7;
		t->sum += word_sum(buf, whole);
		carry = have - whole;
		memmove(buf, buf + whole, carry);
	}
	if (carry || bytes % size)
		return -EPROTO;
	t->count = bytes / size;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int stream_produce_each(struct bench *b, struct chan *c, size_t size, uint64_t *sent)
{
	char ev[MAX_EVENT];
	double t0 = now_s();
	uint64_t i;
	int rc;

	close(c->fd[0]);
	c->fd[0] = -1;
	for (i = 0; !done(b, i, t0); i++) {
		make_event(b, i, ev, size);
		rc = write_all(c->fd[1], ev, size);
		if (rc < 0)
			return rc;
	}
	*sent = i;
	close(c->fd[1]);
	c->fd[1] = -1;
	return 0;
}

static int stream_produce_batched(struct bench *b, struct chan *c, size_t size, uint64_t *sent)
{
	static char buf[STREAM_BUF];
	double t0 = now_s();
	size_t used = 0;
	uint64_t i;
	int rc;

	close(c->fd[0]);
	c->fd[0] = -1;
	for (i = 0; !done(b, i, t0); i++) {
		if (used + size > sizeof(buf)) {
			rc = write_all(c->fd[1], buf, used);
			if (rc < 0)
				return rc;
			used = 0;
		}
		make_event(b, i, buf + used, size);
		used += size;
	}
	rc = write_all(c->fd[1], buf, used);
	*sent = i;
	close(c->fd[1]);
	c->fd[1] = -1;
	return rc;
}

/* ---- libzmq PUSH/PULL over ipc:// ---- */

static int zmq_setup(struct chan *c)
{
	snprintf(c->dir, sizeof(c->dir), "/tmp/ring_bench.XXXXXX");
	if (!mkdtemp(c->dir)) {
		perror("ring_bench: mkdtemp");
		return -1;
	}
	snprintf(c->endpoint, sizeof(c->endpoint), "ipc://%s/push.sock", c->dir);
	return 0;
}

static void zmq_teardown(struct chan *c)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/push.sock", c->dir);
	unlink(path);
	if (rmdir(c->dir) < 0)
		perror("ring_bench: rmdir");
}

/* Open a socket of `type` in a fresh context (contexts do not survive fork,
 * so each process makes its own). */
static int zmq_open(struct chan *c, int type, int bind)
{
	c->zctx = zmq_ctx_new();
	if (!c->zctx)
		goto fail;
	c->zsock = zmq_socket(c->zctx, type);
	if (!c->zsock)
		goto fail;
	if ((bind ? zmq_bind : zmq_connect)(c->zsock, c->endpoint) < 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "ring_bench: zmq %s: %s\n", c->endpoint, zmq_strerror(zmq_errno()));
	return -1;
}

static void zmq_shut(struct chan *c)
{
	if (c->zsock)
		zmq_close(c->zsock);
	if (c->zctx)
		zmq_ctx_term(c->zctx);
}

/* One message per event; an empty message ends the stream. */
static int zmq_consume(struct chan *c, size_t size, struct tally *t)
{
	char ev[MAX_EVENT] __attribute__((aligned(8)));
	int n, rc = 0;

	if (zmq_open(c, ZMQ_PULL, 1) < 0 || signal_ready(c) < 0) {
		zmq_shut(c);
		return -1;
	}
	while ((n = zmq_recv(c->zsock, ev, sizeof(ev), 0)) != 0) {
		if (n < 0 && zmq_errno() == EINTR)
			continue;
		if (n != (int)size) {
			rc = -EPROTO;
			break;
		}
		t->sum += word_sum(ev, size);
		t->count++;
	}
	zmq_shut(c);
	return rc;
}

static int zmq_produce_each(struct bench *b, struct chan *c, size_t size, uint64_t *sent)
{
	char ev[MAX_EVENT];
	double t0 = now_s();
	uint64_t i;
	int rc = 0;

	if (zmq_open(c, ZMQ_PUSH, 0) < 0)
		return -1;
	for (i = 0; !done(b, i, t0); i++) {
		make_event(b, i, ev, size);
		if (zmq_send(c->zsock, ev, size, 0) != (int)size) {
			rc = -zmq_errno();
			break;
		}
	}
	if (rc == 0 && zmq_send(c->zsock, "", 0, 0) != 0)
		rc = -zmq_errno();
	*sent = i;
	zmq_shut(c); /* lingers until the consumer has everything */
	return rc;
}

static const struct transport transports[] = {
    {"ring batched", ring_setup, ring_consume, ring_produce_batched, ring_teardown},
    {"ring push/event", ring_setup, ring_consume, ring_produce_each, ring_teardown},
    {"pipe batched", pipe_setup, stream_consume, stream_produce_batched, stream_teardown},
    {"pipe(1M) batched", big_pipe_setup, stream_consume, stream_produce_batched, stream_teardown},
    {"pipe write/event", pipe_setup, stream_consume, stream_produce_each, stream_teardown},
    {"unix batched", socket_setup, stream_consume, stream_produce_batched, stream_teardown},
    {"unix send/event", socket_setup, stream_consume, stream_produce_each, stream_teardown},
    {"zmq ipc send/event", zmq_setup, zmq_consume, zmq_produce_each, zmq_teardown},
};

#define NTRANSPORTS (sizeof(transports) / sizeof(transports[0]))

/* ---- driver ---- */

struct report {
	int rc;
	struct tally tally;
};

static void run_consumer(const struct transport *tr, struct chan *c, size_t size, int fd)
{
	struct report rep = {0, {0, 0}};

	c->ready_fd = fd;
	rep.rc = tr->consume(c, size, &rep.tally);
	if (write(fd, &rep, sizeof(rep)) != sizeof(rep))
		_exit(2);
	_exit(rep.rc == 0 ? 0 : 1);
}

static int read_full(int fd, void *p, size_t len)
{
	ssize_t n;

	do
		n = read(fd, p, len);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

/* Run one transport at one size in a fresh child; events/s or < 0. */
static double measure(struct bench *b, const struct transport *tr, size_t size)
{
	struct chan c = {.ring_cap = b->ring_cap, .fd = {-1, -1}};
	struct report rep;
	double t0, rate = -1;
	uint64_t sent = 0;
	int fds[2], status, rc;
	char ready;
	pid_t pid;

	if (tr->setup(&c) < 0)
		return -1;
	if (pipe(fds) < 0) {
		perror("ring_bench: pipe");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		perror("ring_bench: fork");
		goto out_pipe;
	}
	if (pid == 0) {
		close(fds[0]);
		run_consumer(tr, &c, size, fds[1]);
	}
	close(fds[1]);
	fds[1] = -1;
	if (read_full(fds[0], &ready, 1) < 0) {
		fprintf(stderr, "ring_bench: %s: consumer did not start\n", tr->name);
		goto out_child;
	}
	t0 = now_s();
	rc = tr->produce(b, &c, size, &sent);
	if (rc < 0) {
		fprintf(stderr, "ring_bench: %s: producer: %s\n", tr->name, strerror(-rc));
		goto out_child;
	}
	if (read_full(fds[0], &rep, sizeof(rep)) < 0 || rep.rc != 0) {
		fprintf(stderr, "ring_bench: %s: consumer failed\n", tr->name);
		goto out_child;
	}
	rate = sent / (now_s() - t0);
	if (rep.tally.count != sent || rep.tally.sum != expected_sum(b, sent, size)) {
		fprintf(stderr,
			"ring_bench: %s: sent %" PRIu64 " events, consumer got %" PRIu64
			" (sum %s)\n",
			tr->name, sent, rep.tally.count,
			rep.tally.sum == expected_sum(b, sent, size) ? "ok" : "wrong");
		rate = -1;
	}
out_child:
	if (rate < 0)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) < 0)
		perror("ring_bench: waitpid");
out_pipe:
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
out:
	tr->teardown(&c);
	return rate;
}

static void fill_templates(struct bench *b)
{
	uint64_t s = 0x9e3779b97f4a7c15u;

	for (size_t k = 0; k < TEMPLATES; k++)
		for (size_t i = 0; i < MAX_EVENT; i++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			b->tmpl[k][i] = (char)s;
		}
}

static int usage(void)
{
	fprintf(stderr,
		"usage: ring_bench [-n EVENTS] [-s SECONDS] "
		"[-c RING_BYTES]\n"
		"  each measurement stops at EVENTS events or after "
		"SECONDS (default 1 s);\n"
		"  RING_BYTES is a power of two (default %u)\n",
		RING_CAP);
	return 2;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {64, 512};
	static struct bench b;
	double rate[NTRANSPORTS][2];
	int opt, failed = 0, timed = 0;
	char *end;

	b.ring_cap = RING_CAP;
	while ((opt = getopt(argc, argv, "n:s:c:")) != -1) {
		switch (opt) {
		case 'c':
			b.ring_cap = strtoull(optarg, &end, 10);
			if (*end || ring_footprint(b.ring_cap) == 0)
				return usage();
			break;
		case 'n':
			b.max_events = strtoull(optarg, &end, 10);
			if (*end || b.max_events == 0)
				return usage();
			break;
		case 's':
			b.seconds = strtod(optarg, &end);
			if (*end || b.seconds <= 0)
				return usage();
			timed = 1;
			break;
		default:
			return usage();
		}
	}
	if (!timed && !b.max_events)
		b.seconds = 1.0; /* a count alone means no time limit */
	fill_templates(&b);
	for (size_t s = 0; s < 2; s++)
		for (size_t t = 0; t < NTRANSPORTS; t++) {
			rate[t][s] = measure(&b, &transports[t], sizes[s]);
			failed |= rate[t][s] < 0;
		}

	printf("%-20s %6s %14s %10s %14s\n", "transport", "event", "events/s", "MB/s",
	       "ring batched x");
	for (size_t s = 0; s < 2; s++)
		for (size_t t = 0; t < NTRANSPORTS; t++) {
			double r = rate[t][s];

			if (r < 0) {
				printf("%-20s %5zuB %14s\n", transports[t].name, sizes[s],
				       "FAILED");
				continue;
			}
			printf("%-20s %5zuB %14.0f %10.0f %14.1f\n", transports[t].name, sizes[s],
			       r, r * sizes[s] / 1e6, rate[0][s] / r);
		}
	return failed ? 1 : 0;
}
