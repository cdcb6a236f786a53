/* ctl_remote.c - ringctl's side of the control socket: find the socket,
 * send one request, wait a bounded time for the reply, print it.
 *
 * The socket is a plain Unix stream socket speaking ctlproto.h's frames,
 * so the ways of not reaching a supervisor are plain too: no file
 * (ENOENT), a file nobody listens on (ECONNREFUSED: left by a ringmaster
 * that did not stop cleanly), no permission (EACCES), a backlog that stays
 * full or a reply that does not come within the timeout (the supervisor is
 * wedged, or stopped with SIGSTOP), and a connection closed before its
 * reply (the supervisor made room for others, or is short of
 * descriptors). Each has its own message; all exit 3. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"
#include "ctlproto.h"

int ctl_is_remote(const char *name)
{
	return strcmp(name, "top") == 0 || strcmp(name, "wait") == 0 ||
	       proto_find(name, strlen(name)) != NULL;
}

/* Aim at `socket` (a path; "ipc://PATH", as earlier versions took, is the
 * same) if given, else at run_dir/control.sock. Returns 0, or 2 (usage)
 * with a message on stderr. Nothing is kept open between calls. */
static int ctl_client_init(struct ctl_client *c, const char *socket, const char *run_dir,
			   int timeout_ms, int json)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = timeout_ms;
	c->json = json;
	int n;
	if (socket && strncmp(socket, "ipc://", 6) == 0)
		socket += 6;
	else if (socket && strstr(socket, "://")) {
		fprintf(stderr, "ringctl: -s takes the socket's path, got '%s'\n", socket);
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
	return 0;
}

/* Why connect() failed, for people. */
static void connect_error(const struct ctl_client *c, int e, char *err, size_t len)
{
	struct stat st;
	if (e == ENOENT)
		snprintf(err, len,
			 "cannot connect: the control socket %s is missing "
			 "(is ringmaster running with this run_dir?)",
			 c->path);
	else if (e == ECONNREFUSED && stat(c->path, &st) == 0 && !S_ISSOCK(st.st_mode))
		snprintf(err, len, "cannot connect: %s exists but is not a socket", c->path);
	else if (e == ECONNREFUSED)
		snprintf(err, len,
			 "cannot connect: the control socket %s exists but nobody "
			 "answers (connection refused): ringmaster is not running, the "
			 "file is left from one that did not stop cleanly",
			 c->path);
	else if (e == EACCES || e == EPERM)
		snprintf(err, len,
			 "cannot connect: %s: permission denied (the socket is mode "
			 "0600: run ringctl as the user ringmaster runs as)",
			 c->path);
	else if (e == ETIMEDOUT)
		snprintf(err, len,
			 "cannot connect: no answer from %s within %d ms: the "
			 "socket exists but nobody answers (ringmaster wedged or "
			 "stopped?)",
			 c->path, c->timeout_ms);
	else
		snprintf(err, len, "cannot connect: %s: %s", c->path, strerror(e));
}

int ctl_call(struct ctl_client *c, const char *request, struct ctl_reply *r, char *err,
	     size_t err_len)
{
	r->ok = 0;
	proto_buf_init(&r->body);
	uint64_t deadline = ctlproto_now_ms() + (uint64_t)c->timeout_ms;
	int fd = ctlproto_connect(c->path, deadline);
	if (fd < 0) {
		connect_error(c, -fd, err, err_len);
		return CTL_EXIT_CONNECT;
	}
	int rc = ctlproto_send_request(fd, request, strlen(request), deadline, c->cancel);
	/* Sent or not (the server may have refused the connection and closed
	 * it already), the reply says what happened. */
	int got = ctlproto_recv_reply(fd, &r->ok, &r->body, deadline, c->cancel);
	close(fd);
	if (got == 0)
		return 0;
	proto_buf_free(&r->body);
	if (got == -ETIMEDOUT || got == -ECANCELED)
		connect_error(c, ETIMEDOUT, err, err_len);
	else if (got == -ECONNRESET)
		snprintf(
		    err, err_len,
		    "cannot connect: %s closed the connection before its reply%s%s (ringmaster "
		    "closes connections to make room when too many are open, or when it is "
		    "short of file descriptors, or it is stopping): try again",
		    c->path, rc ? ": " : "", rc ? strerror(-rc) : "");
	else if (got == -EPROTO) {
		snprintf(err, err_len, "malformed reply from %s", c->path);
		return 1;
	} else if (got == -ENOMEM) {
		snprintf(err, err_len, "out of memory for the reply");
		return 1;
	} else
		snprintf(err, err_len, "cannot read the reply from %s: %s", c->path,
			 strerror(-got));
	return CTL_EXIT_CONNECT;
}

/* The request for argv: the words joined by spaces, plus --json. */
/* The supervisor reads the file a replay names, from its own working
 * directory: send the absolute path. */
static int absolute_path(int argc, char **argv)
{
	static char abs[PATH_MAX]; /* argv[1] points here: one request a run */
	if (argc != 2 || strcmp(argv[0], "replay") != 0)
		return 0;
	if (!realpath(argv[1], abs)) {
		fprintf(stderr, "ringctl: %s: %s\n", argv[1], strerror(errno));
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)abs; *p; p++)
		if (*p <= ' ' || *p >= 0x7f) {
			fprintf(stderr,
				"ringctl: %s: the control protocol carries a path of printable "
				"ASCII without blanks: copy or link the file under such a name\n",
				abs);
			return -1;
		}
	argv[1] = abs;
	return 0;
}

static int build_request(const struct ctl_client *c, int argc, char **argv, struct proto_buf *req)
{
	if (absolute_path(argc, argv) != 0)
		return -1;
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

/* ringctl COMMAND [ARGS]: send it, print the body (stdout when ok, stderr
 * when not). Exit 0 ok, 1 error reply, 2 usage, 3 cannot connect. */
static int ctl_remote(struct ctl_client *c, int argc, char **argv)
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
	/* --json: errors are JSON too, on stdout for the script that parses it */
	if (r.ok || c->json)
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

#define WAIT_DEFAULT_MS 30000
#define WAIT_RETRY_MS 50

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ringctl wait [-t T]: until the instance answers a status request, or T
 * (30s) passed. Silent when it answers (exit 0); else the last reason it
 * could not be reached (exit 3). For scripts that start ringmaster in the
 * background and talk to it next. */
static int ctl_wait(struct ctl_client *c, int argc, char **argv)
{
	int limit_ms = WAIT_DEFAULT_MS, ch;
	while ((ch = getopt(argc, argv, "t:")) != -1) {
		if (ch != 't' || ctl_parse_timeout(optarg, &limit_ms) != 0) {
			fprintf(stderr, "usage: ringctl wait [-t TIMEOUT]\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringctl: wait takes no argument, got '%s'\n", argv[optind]);
		return 2;
	}
	char *status[] = {"status"};
	struct proto_buf req;
	char err[PROTO_ERR_LEN + 512] = "";
	uint64_t end = now_ms() + (uint64_t)limit_ms;
	int rc = CTL_EXIT_CONNECT, json = c->json;
	proto_buf_init(&req);
	c->json = 0;
	if (build_request(c, 1, status, &req) != 0) {
		rc = 1;
		goto out;
	}
	for (;;) {
		uint64_t now = now_ms();
		if (now >= end)
			break;
		struct ctl_reply r;
		c->timeout_ms = (int)(end - now);
		if ((rc = ctl_call(c, req.data, &r, err, sizeof(err))) == 0) {
			rc = r.ok ? 0 : 1;
			if (!r.ok)
				print_body(stderr, "ringctl: ", &r.body);
			proto_buf_free(&r.body);
			goto out;
		}
		if (rc != CTL_EXIT_CONNECT)
			break;
		usleep(WAIT_RETRY_MS * 1000);
	}
	fprintf(stderr, "ringctl: wait: no answer within %d ms: %s\n", limit_ms,
		err[0] ? err : "timed out");
	rc = rc ? rc : CTL_EXIT_CONNECT;
out:
	c->json = json;
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
		return ctl_top(&c, argc, argv);
	if (strcmp(argv[0], "wait") == 0)
		return ctl_wait(&c, argc, argv);
	if (strcmp(argv[0], "savepoint") == 0)
		return ctl_savepoint(&c, argc, argv);
	return ctl_remote(&c, argc, argv);
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
		"  %-26s %s\n"
		"\n"
		"  -s, --socket PATH  the control socket (default: run_dir/control.sock of -c)\n"
		"  -t, --timeout T    give up on an answer after T (default 5s)\n"
		"      --json         JSON output: status and workers as objects, every other\n"
		"                     command as {\"ok\", \"command\", \"message\"}\n",
		b.data ? b.data : "", "top [-n COUNT] [-d DELAY]",
		"a live view of the workers; q quits", "wait [-t TIMEOUT]",
		"until the instance answers (default 30s)");
	proto_buf_free(&b);
}
