/* control_client.c - a raw client for the control socket, for the
 * integration tests: it sends what ringctl never would (binary frames,
 * oversized frames, several frames) and times round trips. The tests
 * compile it with cc and libzmq.
 *
 *   control_client SOCKET text FRAME...   one message, one frame per FRAME
 *   control_client SOCKET file PATH       one frame: the file's bytes
 *   control_client SOCKET size N          one frame of N bytes of 'x'
 *   control_client SOCKET time N REQUEST  N round trips, 20 ms apart: prints
 *                                         min, median, p99 and max in ms
 *
 * Prints the reply as "STATUS: BODY". Exit 0 with a reply, 3 when none
 * came within 3 s (the connection was dropped), 1 on other errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define REPLY_TIMEOUT_MS 3000

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *connect_req(void *ctx, const char *path)
{
	char endpoint[256];
	int linger = 0;
	snprintf(endpoint, sizeof(endpoint), "ipc://%s", path);
	void *sock = zmq_socket(ctx, ZMQ_REQ);
	if (!sock || zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_connect(sock, endpoint) != 0) {
		fprintf(stderr, "control_client: %s: %s\n", endpoint, zmq_strerror(errno));
		exit(1);
	}
	return sock;
}

/* Receive a reply into out (status, ": ", body). 0, or 3 on timeout. */
static int receive(void *sock, char *out, size_t size)
{
	zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
	if (zmq_poll(&item, 1, REPLY_TIMEOUT_MS) <= 0)
		return 3;
	size_t len = 0;
	int more = 1;
	for (int part = 0; more; part++) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0)
			return 1;
		more = zmq_msg_more(&m);
		int n = snprintf(out + len, size - len, "%s%.*s", part ? ": " : "",
				 (int)zmq_msg_size(&m), (const char *)zmq_msg_data(&m));
		if (n > 0 && (size_t)n < size - len)
			len += (size_t)n;
		zmq_msg_close(&m);
	}
	return 0;
}

static int send_frames(void *sock, char **frames, const size_t *lens, int n)
{
	for (int i = 0; i < n; i++)
		if (zmq_send(sock, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
			return -1;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int time_requests(void *ctx, const char *path, int n, const char *request)
{
	double *ms = calloc((size_t)n, sizeof(*ms));
	char reply[1 << 16];
	if (!ms)
		return 1;
	for (int i = 0; i < n; i++) {
		void *sock = connect_req(ctx, path);
		double t0 = now_ms();
		size_t len = strlen(request);
		char *frame = (char *)request;
		if (send_frames(sock, &frame, &len, 1) != 0 || receive(sock, reply, sizeof(reply)))
			return fprintf(stderr, "control_client: no reply to request %d\n", i), 3;
		ms[i] = now_ms() - t0;
		zmq_close(sock);
		if (strncmp(reply, "ok: ", 4) != 0)
			return fprintf(stderr, "control_client: %s\n", reply), 1;
		struct timespec gap = {0, 20 * 1000 * 1000};
		nanosleep(&gap, NULL);
	}
	qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
	printf("round trips: %d  min %.2f ms  median %.2f ms  p99 %.2f ms  max %.2f ms\n", n, ms[0],
	       ms[n / 2], ms[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], ms[n - 1]);
	free(ms);
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
		fprintf(stderr, "usage: control_client SOCKET text|file|size|time ARGS\n");
		return 2;
	}
	void *ctx = zmq_ctx_new();
	if (strcmp(argv[2], "time") == 0)
		return time_requests(ctx, argv[1], atoi(argv[3]), argc > 4 ? argv[4] : "status");
	int n = 1;
	char **frames = &argv[3];
	size_t lens[16];
	if (strcmp(argv[2], "text") == 0) {
		n = argc - 3 < 16 ? argc - 3 : 16;
		for (int i = 0; i < n; i++)
			lens[i] = strlen(frames[i]);
	} else if (strcmp(argv[2], "file") == 0) {
		static char *one;
		one = read_file(argv[3], &lens[0]);
		if (!one)
			return perror(argv[3]), 1;
		frames = &one;
	} else {
		static char *one;
		lens[0] = strtoul(argv[3], NULL, 10);
		if (!(one = malloc(lens[0] + 1)))
			return 1;
		memset(one, 'x', lens[0]);
		frames = &one;
	}
	void *sock = connect_req(ctx, argv[1]);
	char reply[1 << 16];
	if (send_frames(sock, frames, lens, n) != 0)
		return fprintf(stderr, "control_client: send: %s\n", zmq_strerror(errno)), 1;
	int rc = receive(sock, reply, sizeof(reply));
	if (rc == 0)
		printf("%s\n", reply);
	else
		fprintf(stderr, "control_client: no reply within %d ms\n", REPLY_TIMEOUT_MS);
	zmq_close(sock);
	zmq_ctx_term(ctx);
	return rc;
}
