/* control_client.c - a raw client for the control socket, for the
 * integration tests: it sends what ringctl never would (binary requests,
 * oversized ones, several on one connection, half a frame), holds
 * connections open by the hundred, and times round trips. Built by the
 * Makefile ($(B)/tests/control_client) with common/ctlproto.c.
 *
 *   control_client SOCKET text REQUEST...  each REQUEST on one connection,
 *                                          all sent before any reply is read
 *   control_client SOCKET file PATH        one request: the file's bytes
 *   control_client SOCKET size N           one request of N bytes of 'x'
 *   control_client SOCKET time N REQUEST   N round trips, 20 ms apart, each on
 *                                          a new connection: prints min,
 *                                          median, p99 and max in ms
 *   control_client SOCKET hold N SECS MODE open N connections and hold them
 *                                          SECS seconds, each one:
 *       idle     sending nothing
 *       half     sending half a request (a header for 100 bytes, then 10)
 *       noread   sending `metrics` requests, as many as it takes, and never
 *                reading a reply
 *     then print "connected C refused R closed K open O first_close_ms F
 *     last_close_ms L": C connections made, R not (the backlog stayed full
 *     for a second, or no descriptor here), K of them closed by the server
 *     within SECS (F and L ms after the last connect; -1 when none).
 *
 * text, file and size print each reply as "STATUS: BODY" (the body without
 * its last newline). Exit 0 with every reply, 3 when one did not come
 * within 3 s or the connection was closed first, 1 on other errors. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctlproto.h"
#include "fdlimit.h"

#define REPLY_TIMEOUT_MS 3000

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int connect_or_die(const char *path)
{
	int fd = ctlproto_connect(path, ctlproto_now_ms() + REPLY_TIMEOUT_MS);
	if (fd < 0) {
		fprintf(stderr, "control_client: %s: %s\n", path, strerror(-fd));
		exit(1);
	}
	return fd;
}

/* Read one reply and print it. 0, 3 when none came, 1 on other errors. */
static int print_reply(int fd)
{
	struct proto_buf body;
	int ok;
	proto_buf_init(&body);
	int rc = ctlproto_recv_reply(fd, &ok, &body, ctlproto_now_ms() + REPLY_TIMEOUT_MS, NULL);
	if (rc != 0) {
		fprintf(stderr, "control_client: no reply: %s\n", strerror(-rc));
		proto_buf_free(&body);
		return rc == -ETIMEDOUT || rc == -ECONNRESET ? 3 : 1;
	}
	size_t len = body.len;
	while (len && body.data[len - 1] == '\n')
		len--;
	printf("%s: %.*s\n", ok ? "ok" : "error", (int)len, len ? body.data : "");
	proto_buf_free(&body);
	return 0;
}

static int send_request(int fd, const char *data, size_t len)
{
	int rc = ctlproto_send_request(fd, data, len, ctlproto_now_ms() + REPLY_TIMEOUT_MS, NULL);
	if (rc != 0 && rc != -EPIPE && rc != -ECONNRESET) {
		fprintf(stderr, "control_client: send: %s\n", strerror(-rc));
		return -1;
	}
	return 0; /* a closed connection shows when the reply is read */
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int time_requests(const char *path, int n, const char *request)
{
	double *ms = calloc((size_t)n, sizeof(*ms));
	if (!ms || n <= 0)
		return 1;
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		int fd = connect_or_die(path), ok;
		struct proto_buf body;
		proto_buf_init(&body);
		uint64_t deadline = ctlproto_now_ms() + REPLY_TIMEOUT_MS;
		if (ctlproto_send_request(fd, request, strlen(request), deadline, NULL) != 0 ||
		    ctlproto_recv_reply(fd, &ok, &body, deadline, NULL) != 0)
			return fprintf(stderr, "control_client: no reply to request %d\n", i), 3;
		ms[i] = now_ms() - t0;
		close(fd);
		if (!ok)
			return fprintf(stderr, "control_client: %s\n", body.data), 1;
		proto_buf_free(&body);
		struct timespec gap = {0, 20 * 1000 * 1000};
		nanosleep(&gap, NULL);
	}
	qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
	printf("round trips: %d  min %.2f ms  median %.2f ms  p99 %.2f ms  max %.2f ms\n", n, ms[0],
	       ms[n / 2], ms[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], ms[n - 1]);
	free(ms);
	return 0;
}

/* Start a connection off in `mode`; it is non-blocking, so noread writes
 * what fits and stops. */
static void begin(int fd, const char *mode)
{
	if (strcmp(mode, "half") == 0) {
		unsigned char frame[CTLPROTO_HEADER + 10];
		ctlproto_put_header(frame, 100);
		memset(frame + CTLPROTO_HEADER, 'x', 10);
		if (send(fd, frame, sizeof(frame), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			perror("control_client: half");
	} else if (strcmp(mode, "noread") == 0) {
		struct proto_buf b;
		proto_buf_init(&b);
		for (int i = 0; i < 4096; i++)
			ctlproto_add_frame(&b, "metrics", 7);
		if (b.failed || send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			perror("control_client: noread");
		proto_buf_free(&b);
	}
}

static int hold(const char *path, int n, int secs, const char *mode)
{
	struct fd_limit lim;
	fdlimit_raise(&lim);
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	double *closed_at = calloc((size_t)n, sizeof(*closed_at));
	if (!p || !closed_at)
		return 1;
	int connected = 0, refused = 0, closed = 0;
	for (int i = 0; i < n; i++) {
		int fd = ctlproto_connect(path, ctlproto_now_ms() + 1000);
		if (fd < 0) {
			if (refused++ == 0)
				fprintf(stderr, "control_client: connection %d: %s\n", i,
					strerror(-fd));
			continue;
		}
		begin(fd, mode);
		p[connected++] = (struct pollfd){.fd = fd, .events = POLLRDHUP};
	}
	double t0 = now_ms(), first = -1, last = -1;
	while (now_ms() - t0 < secs * 1000.0 && closed < connected) {
		int left = (int)(secs * 1000.0 - (now_ms() - t0));
		if (poll(p, (nfds_t)connected, left > 0 ? left : 0) <= 0)
			continue;
		for (int i = 0; i < connected; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
				continue;
			double at = now_ms() - t0;
			if (first < 0)
				first = at;
			last = at;
			closed++;
			close(p[i].fd);
			p[i].fd = -1;
		}
	}
	printf("connected %d refused %d closed %d open %d first_close_ms %.0f last_close_ms %.0f\n",
	       connected, refused, closed, connected - closed, first, last);
	for (int i = 0; i < connected; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	free(p);
	free(closed_at);
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	static char buf[1 << 20];
	if (!f)
		return NULL;
	*len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: control_client SOCKET text|file|size|time|hold ARGS\n");
		return 2;
	}
	const char *path = argv[1], *what = argv[2];
	if (strcmp(what, "time") == 0)
		return time_requests(path, atoi(argv[3]), argc > 4 ? argv[4] : "status");
	if (strcmp(what, "hold") == 0) {
		if (argc != 6)
			return fprintf(stderr, "usage: control_client SOCKET hold N SECS MODE\n"),
			       2;
		return hold(path, atoi(argv[3]), atoi(argv[4]), argv[5]);
	}
	int fd = connect_or_die(path), sent = 0, rc = 0;
	if (strcmp(what, "text") == 0) {
		for (int i = 3; i < argc; i++, sent++)
			if (send_request(fd, argv[i], strlen(argv[i])) != 0)
				return 1;
	} else if (strcmp(what, "file") == 0) {
		size_t len;
		char *data = read_file(argv[3], &len);
		if (!data)
			return perror(argv[3]), 1;
		if (send_request(fd, data, len) != 0)
			return 1;
		sent = 1;
	} else if (strcmp(what, "size") == 0) {
		size_t len = strtoul(argv[3], NULL, 10);
		char *data = malloc(len + 1);
		if (!data)
			return 1;
		memset(data, 'x', len);
		if (send_request(fd, data, len) != 0)
			return 1;
		free(data);
		sent = 1;
	} else {
		fprintf(stderr, "control_client: unknown mode '%s'\n", what);
		return 2;
	}
	for (int i = 0; i < sent && rc == 0; i++)
		rc = print_reply(fd);
	close(fd);
	return rc;
}
