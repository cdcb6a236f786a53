/* ctl_remote.c - ringctl's side of the control socket: find the socket,
 * send one request, wait a bounded time for the reply, print it.
 *
 * libzmq connects to an ipc endpoint in the background and retries
 * silently, so on its own it cannot tell "no such socket" from "nobody
 * there" from "too slow". ringctl therefore looks first: stat() says
 * whether the socket file exists, and a plain non-blocking connect() says
 * whether anybody listens on it (ECONNREFUSED when the file is left over
 * from a ringmaster that did not stop cleanly). Only then does it speak
 * ZeroMQ, and a reply that does not come within the timeout means the
 * supervisor is there but wedged (or stopped with SIGSTOP). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "cfg.h"
#include "ctl.h"

int ctl_is_remote(const char *name)
{
	return strcmp(name, "top") == 0 || proto_find(name, strlen(name)) != NULL;
}

int ctl_client_init(struct ctl_client *c, const char *socket, const char *run_dir, int timeout_ms,
		    int json)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms;
	c->json = json;
	int n;
	if (socket && strncmp(socket, "ipc://", 6) == 0)
		socket += 6;
	else if (socket && strstr(socket, "://")) {
		fprintf(stderr,
			"ringctl: -s takes the socket's path or an ipc:// endpoint, "
			"got '%s'\n",
			socket);
		return 2;
	}
	if (socket)
		n = snprintf(c->path, sizeof(c->path), "%s", socket);
	else
		n = snprintf(c->path, sizeof(c->path), "%s/control.sock", run_dir);
	if (n <= 0 || (size_t)n >= sizeof(c->path)) {
		fprintf(stderr, "ringctl: the socket path %s%s is too long (at most %zu bytes)\n",
			socket ? socket : run_dir, socket ? "" : "/control.sock",
			sizeof(c->path) - 1);
		return 2;
	}
	snprintf(c->endpoint, sizeof(c->endpoint), "ipc://%s", c->path);
	return 0;
}

void ctl_client_close(struct ctl_client *c)
{
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	c->ctx = NULL;
}

/* Is the socket file there, and does anybody listen on it? */
static int check_listener(const char *path, char *err, size_t len)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			snprintf(err, len,
				 "cannot connect: the control socket %s is missing "
				 "(is ringmaster running with this run_dir?)",
				 path);
		else
			snprintf(err, len, "cannot connect: %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, len, "cannot connect: %s exists but is not a socket", path);
		return -1;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, len, "cannot connect: socket: %s", strerror(errno));
		return -1;
	}
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
		return 0; /* listening (maybe too busy to accept: the timeout tells) */
	if (e == ECONNREFUSED)
		snprintf(err, len,
			 "cannot connect: the control socket %s exists but nobody "
			 "answers (connection refused): ringmaster is not running, the "
			 "file is left from one that did not stop cleanly",
			 path);
	else if (e == EACCES || e == EPERM)
		snprintf(err, len,
			 "cannot connect: %s: permission denied (the socket is mode "
			 "0600: run ringctl as the user ringmaster runs as)",
			 path);
	else
		snprintf(err, len, "cannot connect: %s: %s", path, strerror(e));
	return -1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait for a reply until the deadline and take its two frames. */
static int receive_reply(struct ctl_client *c, void *sock, struct ctl_reply *r, char *err,
			 size_t len)
{
	zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
	uint64_t deadline = now_ms() + (uint64_t)c->timeout_ms;
	int rc;
	do { /* a signal (a resized terminal under top) is no reason to give up */
		uint64_t now = now_ms();
		rc = zmq_poll(&item, 1, now < deadline ? (long)(deadline - now) : 0);
	} while (rc < 0 && errno == EINTR && !(c->cancel && *c->cancel));
	if (rc <= 0) {
		if (rc < 0)
			snprintf(err, len, "cannot connect: %s: %s", c->path, zmq_strerror(errno));
		else
			snprintf(err, len,
				 "cannot connect: no answer from %s within %d ms: the "
				 "socket exists but nobody answers (ringmaster wedged or "
				 "stopped?)",
				 c->path, c->timeout_ms);
		return CTL_EXIT_CONNECT;
	}
	unsigned frames = 0;
	int more = 1;
	while (more) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) < 0) {
			snprintf(err, len, "cannot read the reply: %s", zmq_strerror(errno));
			zmq_msg_close(&m);
			return 1;
		}
		more = zmq_msg_more(&m);
		if (frames == 0)
			r->ok = zmq_msg_size(&m) == 2 && memcmp(zmq_msg_data(&m), "ok", 2) == 0;
		else if (frames == 1)
			proto_buf_add(&r->body, zmq_msg_data(&m), zmq_msg_size(&m));
		frames++;
		zmq_msg_close(&m);
	}
	if (frames != 2 || r->body.failed) {
		snprintf(err, len, "malformed reply from %s (%u frames)", c->path, frames);
		return 1;
	}
	return 0;
}

int ctl_call(struct ctl_client *c, const char *request, struct ctl_reply *r, char *err,
	     size_t err_len)
{
	r->ok = 0;
	proto_buf_init(&r->body);
	if (check_listener(c->path, err, err_len) != 0)
		return CTL_EXIT_CONNECT;
	if (!c->ctx && !(c->ctx = zmq_ctx_new())) {
		snprintf(err, err_len, "cannot make a libzmq context: %s", zmq_strerror(errno));
		return 1;
	}
	int linger = 0, rc = CTL_EXIT_CONNECT;
	void *sock = zmq_socket(c->ctx, ZMQ_REQ);
	if (!sock) {
		snprintf(err, err_len, "cannot make a socket: %s", zmq_strerror(errno));
		return 1;
	}
	if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_connect(sock, c->endpoint) != 0 ||
	    zmq_send(sock, request, strlen(request), ZMQ_DONTWAIT) < 0) {
		snprintf(err, err_len, "cannot connect: %s: %s", c->endpoint, zmq_strerror(errno));
		goto out;
	}
	rc = receive_reply(c, sock, r, err, err_len);
out:
	zmq_close(sock);
	if (rc != 0)
		proto_buf_free(&r->body);
	return rc;
}

/* The request for argv: the words joined by spaces, plus --json. */
static int build_request(const struct ctl_client *c, int argc, char **argv, struct proto_buf *req)
{
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] == '\0' || strpbrk(argv[i], " \t\n")) {
			fprintf(stderr,
				"ringctl: an argument cannot be empty or hold blanks: '%s'\n",
				argv[i]);
			return -1;
		}
		proto_buf_printf(req, "%s%s", i ? " " : "", argv[i]);
	}
	if (c->json)
		proto_buf_printf(req, " --json");
	if (req->failed) {
		fprintf(stderr, "ringctl: out of memory\n");
		return -1;
	}
	return 0;
}

static void print_body(FILE *f, const char *prefix, const struct proto_buf *b)
{
	fputs(prefix, f);
	if (b->len)
		fwrite(b->data, 1, b->len, f);
	if (!b->len || b->data[b->len - 1] != '\n')
		fputc('\n', f);
}

int ctl_remote(struct ctl_client *c, int argc, char **argv)
{
	struct proto_buf req;
	struct proto_request parsed;
	char err[PROTO_ERR_LEN + 512];
	proto_buf_init(&req);
	int rc = 2;
	if (build_request(c, argc, argv, &req) != 0)
		goto out;
	/* The same parser as the server's: a usage error never leaves ringctl. */
	if (proto_parse(req.data, req.len, 0, &parsed, err, sizeof(err)) != 0) {
		fprintf(stderr, "ringctl: %s\n", err);
		goto out;
	}
	struct ctl_reply r;
	rc = ctl_call(c, req.data, &r, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "ringctl: %s\n", err);
		goto out;
	}
	if (r.ok)
		print_body(stdout, "", &r.body);
	else
		print_body(stderr, "ringctl: ", &r.body);
	rc = r.ok ? 0 : 1;
	proto_buf_free(&r.body);
	if (fflush(stdout) != 0) {
		perror("ringctl: stdout");
		rc = 1;
	}
out:
	proto_buf_free(&req);
	return rc;
}

int ctl_remote_main(const char *socket, const char *run_dir, int timeout_ms, int json, int argc,
		    char **argv)
{
	struct ctl_client c;
	int rc = ctl_client_init(&c, socket, run_dir, timeout_ms, json);
	if (rc != 0)
		return rc;
	if (strcmp(argv[0], "top") == 0)
		rc = ctl_top(&c, argc, argv);
	else
		rc = ctl_remote(&c, argc, argv);
	ctl_client_close(&c);
	return rc;
}

int ctl_parse_timeout(const char *s, int *ms)
{
	uint64_t v;
	const char *why = "must be above 0 and at most 1h";
	if (cfg_parse_duration_ms(s, &v, &why) != 0 || v == 0 || v > 3600 * 1000) {
		fprintf(stderr, "ringctl: -t %s: %s (e.g. 5s, 500ms)\n", s, why);
		return -1;
	}
	*ms = (int)v;
	return 0;
}

void ctl_remote_usage(FILE *f)
{
	struct proto_buf b;
	proto_buf_init(&b);
	proto_render_help(&b);
	fprintf(f,
		"\ncommands for a running ringmaster (its control socket):\n%s"
		"  %-26s %s\n"
		"\n"
		"  -s, --socket PATH  the control socket (default: run_dir/control.sock of -c)\n"
		"  -t, --timeout T    give up on an answer after T (default 5s)\n"
		"      --json         JSON output (status, workers)\n",
		b.data ? b.data : "", "top [-n COUNT] [-d DELAY]",
		"a live view of the workers; q quits");
	proto_buf_free(&b);
}
