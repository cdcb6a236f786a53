/* test_ctlproto.c - the control socket's framing (ctlproto.h): headers
 * round trip, a stream cut anywhere scans as partial until the frame is
 * whole, oversized frames are told apart; and a client's calls over a
 * socketpair: a reply read exactly (the next one stays in the socket),
 * malformed replies refused, a silent or vanished server reported as such,
 * a bound socket connected to, a missing one and a stale one told apart. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctlproto.h"

static void test_header_round_trip(void **state)
{
	(void)state;
	static const uint32_t values[] = {0, 1, 255, 256, 65536, 0x01020304, UINT32_MAX};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		unsigned char h[CTLPROTO_HEADER];
		ctlproto_put_header(h, values[i]);
		assert_int_equal(ctlproto_get_header(h), values[i]);
	}
	unsigned char h[CTLPROTO_HEADER];
	ctlproto_put_header(h, 0x01020304);
	assert_memory_equal(h, "\x01\x02\x03\x04", 4); /* big-endian */
}

static void test_frames_and_replies(void **state)
{
	(void)state;
	struct proto_buf b;
	proto_buf_init(&b);
	ctlproto_add_frame(&b, "status", 6);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "\0\0\0\6status", 10);
	proto_buf_free(&b);

	ctlproto_add_reply(&b, 1, "pong\n", 5);
	assert_int_equal(b.len, 4 + 2 + 4 + 5);
	assert_memory_equal(b.data, "\0\0\0\2ok\0\0\0\5pong\n", b.len);
	proto_buf_free(&b);

	ctlproto_add_reply(&b, 0, "", 0);
	assert_int_equal(b.len, 4 + 5 + 4);
	assert_memory_equal(b.data, "\0\0\0\5error\0\0\0\0", b.len);
	proto_buf_free(&b);
}

/* Every prefix of a frame is partial, the whole is whole, and bytes after
 * it (the next request) do not change what the first one is. */
static void test_scan_every_cut(void **state)
{
	(void)state;
	struct proto_buf b;
	proto_buf_init(&b);
	ctlproto_add_frame(&b, "workers --json", 14);
	ctlproto_add_frame(&b, "ping", 4);
	size_t first = CTLPROTO_HEADER + 14, len;
	for (size_t cut = 0; cut < first; cut++) {
		assert_int_equal(ctlproto_scan(b.data, cut, 100, &len), CTLPROTO_PARTIAL);
		assert_int_equal(len, cut < CTLPROTO_HEADER ? 0 : 14);
	}
	for (size_t cut = first; cut <= b.len; cut++) {
		assert_int_equal(ctlproto_scan(b.data, cut, 100, &len), CTLPROTO_WHOLE);
		assert_int_equal(len, 14);
		assert_memory_equal(b.data + CTLPROTO_HEADER, "workers --json", 14);
	}
	assert_int_equal(ctlproto_scan(b.data + first, b.len - first, 100, &len), CTLPROTO_WHOLE);
	assert_int_equal(len, 4);
	/* An empty frame is whole with its header alone. */
	assert_int_equal(ctlproto_scan("\0\0\0\0", 4, 100, &len), CTLPROTO_WHOLE);
	assert_int_equal(len, 0);
	proto_buf_free(&b);
}

static void test_scan_oversize(void **state)
{
	(void)state;
	unsigned char h[CTLPROTO_HEADER];
	size_t len;
	ctlproto_put_header(h, 101);
	assert_int_equal(ctlproto_scan(h, sizeof(h), 100, &len), CTLPROTO_OVERSIZE);
	assert_int_equal(len, 101);
	ctlproto_put_header(h, 100);
	assert_int_equal(ctlproto_scan(h, sizeof(h), 100, &len), CTLPROTO_PARTIAL);
	ctlproto_put_header(h, UINT32_MAX);
	assert_int_equal(ctlproto_scan(h, sizeof(h), CTLPROTO_MAX_FRAME, &len), CTLPROTO_OVERSIZE);
	assert_int_equal(len, UINT32_MAX);
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static void put(int fd, const void *data, size_t len)
{
	assert_int_equal(ctlproto_send_all(fd, data, len, ctlproto_now_ms() + 1000, NULL), 0);
}

static int get_reply(int fd, int *ok, struct proto_buf *body, int timeout_ms)
{
	return ctlproto_recv_reply(fd, ok, body, ctlproto_now_ms() + (uint64_t)timeout_ms, NULL);
}

/* Two replies back to back: each read takes exactly its own. */
static void test_recv_replies_in_turn(void **state)
{
	(void)state;
	int sv[2], ok = -1;
	pair(sv);
	struct proto_buf out, body;
	proto_buf_init(&out);
	proto_buf_init(&body);
	ctlproto_add_reply(&out, 1, "first\n", 6);
	ctlproto_add_reply(&out, 0, "second\n", 7);
	/* one byte at a time: the reader waits for the rest */
	for (size_t i = 0; i < out.len; i++)
		put(sv[1], out.data + i, 1);
	assert_int_equal(get_reply(sv[0], &ok, &body, 1000), 0);
	assert_int_equal(ok, 1);
	assert_int_equal(body.len, 6);
	assert_memory_equal(body.data, "first\n", 6);
	proto_buf_free(&body);
	assert_int_equal(get_reply(sv[0], &ok, &body, 1000), 0);
	assert_int_equal(ok, 0);
	assert_string_equal(body.data, "second\n");
	proto_buf_free(&body);
	/* a large body, over many reads */
	proto_buf_free(&out);
	char *big = malloc(300000);
	assert_non_null(big);
	for (size_t i = 0; i < 300000; i++)
		big[i] = (char)('a' + i % 26);
	ctlproto_add_reply(&out, 1, big, 300000);
	/* More than the socket holds: a child writes it while we read. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(ctlproto_send_all(sv[1], out.data, out.len, ctlproto_now_ms() + 5000, NULL)
			  ? 1
			  : 0);
	assert_int_equal(get_reply(sv[0], &ok, &body, 5000), 0);
	assert_int_equal(ok, 1);
	assert_int_equal(body.len, 300000);
	assert_memory_equal(body.data, big, 300000);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free(big);
	proto_buf_free(&body);
	proto_buf_free(&out);
	close(sv[0]);
	close(sv[1]);
}

static void test_recv_malformed(void **state)
{
	(void)state;
	int sv[2], ok;
	struct proto_buf body;
	proto_buf_init(&body);
	/* a status that is neither ok nor error */
	pair(sv);
	put(sv[1], "\0\0\0\4fine\0\0\0\0", 12);
	assert_int_equal(get_reply(sv[0], &ok, &body, 1000), -EPROTO);
	close(sv[0]);
	close(sv[1]);
	/* a status frame too long to be one */
	pair(sv);
	put(sv[1], "\0\1\0\0", 4);
	assert_int_equal(get_reply(sv[0], &ok, &body, 1000), -EPROTO);
	close(sv[0]);
	close(sv[1]);
	/* a body over CTLPROTO_MAX_BODY */
	pair(sv);
	put(sv[1], "\0\0\0\2ok\xff\xff\xff\xff", 10);
	assert_int_equal(get_reply(sv[0], &ok, &body, 1000), -EPROTO);
	close(sv[0]);
	close(sv[1]);
	proto_buf_free(&body);
}

static void test_recv_silence_and_hangup(void **state)
{
	(void)state;
	int sv[2], ok;
	struct proto_buf body;
	proto_buf_init(&body);
	/* nothing comes: the deadline */
	pair(sv);
	uint64_t t0 = ctlproto_now_ms();
	assert_int_equal(get_reply(sv[0], &ok, &body, 100), -ETIMEDOUT);
	assert_true(ctlproto_now_ms() - t0 >= 100);
	/* half a reply, then nothing */
	put(sv[1], "\0\0\0\2o", 5);
	assert_int_equal(get_reply(sv[0], &ok, &body, 100), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
	/* half a reply, then the connection ends */
	pair(sv);
	put(sv[1], "\0\0\0\2ok\0\0\0\x10pa", 12);
	close(sv[1]);
	assert_int_equal(get_reply(sv[0], &ok, &body, 1000), -ECONNRESET);
	close(sv[0]);
	/* writing to a closed connection: EPIPE, and no SIGPIPE */
	pair(sv);
	close(sv[1]);
	assert_int_equal(ctlproto_send_request(sv[0], "ping", 4, ctlproto_now_ms() + 1000, NULL),
			 -EPIPE);
	close(sv[0]);
	proto_buf_free(&body);
}

static void test_connect(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_ctlproto.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	uint64_t soon = ctlproto_now_ms() + 500;
	assert_int_equal(ctlproto_connect(path, soon), -ENOENT);
	char long_path[200];
	memset(long_path, 'x', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(ctlproto_connect(long_path, soon), -ENAMETOOLONG);

	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* bound, not listening: what a ringmaster killed leaves behind */
	assert_int_equal(ctlproto_connect(path, soon), -ECONNREFUSED);
	assert_int_equal(listen(l, 4), 0);
	int fd = ctlproto_connect(path, soon);
	assert_true(fd >= 0);
	int a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	/* a request arrives as one frame */
	assert_int_equal(ctlproto_send_request(fd, "status --json", 13, soon, NULL), 0);
	unsigned char got[64];
	ssize_t n = recv(a, got, sizeof(got), 0);
	assert_int_equal(n, 4 + 13);
	assert_memory_equal(got, "\0\0\0\15status --json", 17);
	close(a);
	close(fd);
	close(l);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_round_trip),
	    cmocka_unit_test(test_frames_and_replies),
	    cmocka_unit_test(test_scan_every_cut),
	    cmocka_unit_test(test_scan_oversize),
	    cmocka_unit_test(test_recv_replies_in_turn),
	    cmocka_unit_test(test_recv_malformed),
	    cmocka_unit_test(test_recv_silence_and_hangup),
	    cmocka_unit_test(test_connect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
