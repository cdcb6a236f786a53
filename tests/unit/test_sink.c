/* test_sink.c - the zmq output: what a PULL socket receives from a sink is
 * the batch's lines, whole, in order, in messages of at most SINK_MSG_MAX
 * bytes (a longer line alone); close delivers what is queued; a send with no
 * consumer waits for one, keeping the heartbeat fresh, and drops nothing,
 * unless the worker is stopping: then it gives up after stop_timeout. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "cfg.h"
#include "shm.h"
#include "sink.h"

struct fixture {
	char dir[64];
	char endpoint[128];
	struct cfg cfg;
	void *ctx, *pull;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rm-test-sink.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->endpoint, sizeof(f->endpoint), "ipc://%s/out.sock", f->dir);
	f->cfg.output_connect = f->endpoint;
	f->cfg.output_type = CFG_OUTPUT_ZMQ;
	f->cfg.stop_timeout_ms = 5000;
	f->ctx = zmq_ctx_new();
	assert_non_null(f->ctx);
	*state = f;
	return 0;
}

/* The consumer: a PULL socket bound where the sink connects. */
static void bind_pull(struct fixture *f)
{
	int timeout = 5000;
	f->pull = zmq_socket(f->ctx, ZMQ_PULL);
	assert_non_null(f->pull);
	assert_int_equal(zmq_setsockopt(f->pull, ZMQ_RCVTIMEO, &timeout, sizeof(timeout)), 0);
	assert_int_equal(zmq_bind(f->pull, f->endpoint), 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];
	if (f->pull)
		zmq_close(f->pull);
	zmq_ctx_term(f->ctx);
	snprintf(path, sizeof(path), "%s/out.sock", f->dir);
	unlink(path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Receive `len` bytes in as many messages as it takes; every message must
 * be whole lines and at most `max` bytes unless it is one line. Returns
 * the number of messages; *got is the bytes, to free. */
static unsigned recv_all(void *pull, size_t len, size_t max, char **got)
{
	char *buf = malloc(len + 1);
	size_t n = 0;
	unsigned msgs = 0;
	assert_non_null(buf);
	while (n < len) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		int size = zmq_msg_recv(&m, pull, 0);
		assert_true(size > 0);
		assert_false(zmq_msg_more(&m));
		assert_true((size_t)size <= len - n);
		const char *d = zmq_msg_data(&m);
		assert_int_equal(d[size - 1], '\n');
		if ((size_t)size > max) /* only a line too long to share */
			assert_ptr_equal(memchr(d, '\n', (size_t)size), d + size - 1);
		memcpy(buf + n, d, (size_t)size);
		n += (size_t)size;
		msgs++;
		zmq_msg_close(&m);
	}
	*got = buf;
	return msgs;
}

static char *make_lines(size_t count, size_t *len)
{
	char *buf = malloc(count * 64);
	size_t n = 0;
	assert_non_null(buf);
	for (size_t i = 0; i < count; i++)
		n += (size_t)sprintf(buf + n, "%zu\tacct%08zu\tdeposit\t%zu\n", i, i % 97, i * 7);
	*len = n;
	return buf;
}

static void test_chunk_len(void **unused)
{
	(void)unused;
	assert_int_equal(sink_chunk_len("", 0, 8), 0);
	assert_int_equal(sink_chunk_len("abc", 3, 8), 0);
	assert_int_equal(sink_chunk_len("a\nb\nc", 5, 8), 4);
	assert_int_equal(sink_chunk_len("a\nb\n", 4, 4), 4);	  /* fits exactly */
	assert_int_equal(sink_chunk_len("a\nbcd\n", 6, 4), 2);	  /* whole lines only */
	assert_int_equal(sink_chunk_len("abcdef\nx\n", 9, 4), 7); /* one long line alone */
	assert_int_equal(sink_chunk_len("abcdef", 6, 4), 0);
}

static void test_lines_arrive_whole(void **state)
{
	struct fixture *f = *state;
	struct sink *s;
	char err[256];
	size_t len;
	char *lines = make_lines(20000, &len), *got;
	assert_true(len > 4 * SINK_MSG_MAX);
	bind_pull(f);
	assert_int_equal(sink_open(&s, &f->cfg, 3, err, sizeof(err)), 0);
	assert_int_equal(sink_send(s, lines, len), 0);
	/* Close before reading: the linger delivers what libzmq still holds. */
	sink_close(s);
	unsigned msgs = recv_all(f->pull, len, SINK_MSG_MAX, &got);
	assert_memory_equal(got, lines, len);
	assert_true(msgs >= len / SINK_MSG_MAX && msgs <= len / SINK_MSG_MAX + 2);
	free(got);
	free(lines);
}

static void test_long_line_alone(void **state)
{
	struct fixture *f = *state;
	struct sink *s;
	char err[256], *got;
	size_t long_len = SINK_MSG_MAX + 1000, len = 0;
	char *buf = malloc(long_len + 64);
	assert_non_null(buf);
	len += (size_t)sprintf(buf, "1\tshort\n");
	memset(buf + len, 'x', long_len - 1);
	len += long_len - 1;
	buf[len++] = '\n';
	len += (size_t)sprintf(buf + len, "3\tshort\n");
	bind_pull(f);
	assert_int_equal(sink_open(&s, &f->cfg, 0, err, sizeof(err)), 0);
	assert_int_equal(sink_send(s, buf, len), 0);
	assert_int_equal(recv_all(f->pull, len, SINK_MSG_MAX, &got), 3);
	assert_memory_equal(got, buf, len);
	sink_close(s);
	free(got);
	free(buf);
}

static void test_bad_endpoint(void **state)
{
	struct fixture *f = *state;
	struct sink *s = (struct sink *)f;
	char err[256];
	f->cfg.output_connect = "nonsense://x";
	assert_int_equal(sink_open(&s, &f->cfg, 0, err, sizeof(err)), -1);
	assert_null(s);
	assert_non_null(strstr(err, "[output] connect = nonsense://x"));
	sink_close(NULL);
}

struct sender {
	struct sink *sink;
	const char *lines;
	size_t len;
	_Atomic int rc;
};

static void *send_thread(void *arg)
{
	struct sender *x = arg;
	x->rc = sink_send(x->sink, x->lines, x->len);
	return NULL;
}

/* Nobody listens: once SINK_SNDHWM messages are queued the send waits (no
 * drop), the heartbeat moves, and all of it arrives once a consumer binds. */
static void test_waits_for_consumer(void **state)
{
	struct fixture *f = *state;
	char err[256], *got;
	_Atomic uint64_t heartbeat = 0;
	struct sender x = {.rc = -1};
	char *lines = make_lines(300000, &x.len);
	assert_true(x.len > 2 * SINK_SNDHWM * SINK_MSG_MAX);
	x.lines = lines;
	assert_int_equal(sink_open(&x.sink, &f->cfg, 1, err, sizeof(err)), 0);
	sink_watch(x.sink, &heartbeat, NULL);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, send_thread, &x), 0);
	struct timespec ts = {1, 500000000};
	nanosleep(&ts, NULL);
	assert_int_equal(x.rc, -1); /* still waiting */
	assert_true(atomic_load(&heartbeat) > 0);
	bind_pull(f);
	recv_all(f->pull, x.len, SINK_MSG_MAX, &got);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(x.rc, 0);
	assert_memory_equal(got, lines, x.len);
	sink_close(x.sink);
	free(got);
	free(lines);
}

/* Asked to stop with nobody listening: the send gives up after
 * stop_timeout instead of holding the worker forever. */
static void test_stop_gives_up(void **state)
{
	struct fixture *f = *state;
	struct sink *s;
	char err[256];
	size_t len;
	volatile sig_atomic_t stop = 1;
	char *lines = make_lines(300000, &len);
	f->cfg.stop_timeout_ms = 1000;
	assert_int_equal(sink_open(&s, &f->cfg, 2, err, sizeof(err)), 0);
	sink_watch(s, NULL, &stop);
	uint64_t t0 = shm_now_ns();
	assert_int_equal(sink_send(s, lines, len), -EINTR);
	uint64_t waited_ms = (shm_now_ns() - t0) / 1000000;
	assert_true(waited_ms >= 1000 && waited_ms < 5000);
	sink_close(s);
	free(lines);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chunk_len),
	    cmocka_unit_test_setup_teardown(test_lines_arrive_whole, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_line_alone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_endpoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_waits_for_consumer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_gives_up, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
