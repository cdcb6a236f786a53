/* ctl_send.c - `ringctl send`: a producer for the zmq source. It reads TSV
 * lines from a file or stdin and PUSHes them to the source's endpoint,
 * whole lines batched into messages of up to SINK_MSG_MAX bytes (the same
 * framing the workers' zmq output uses, lines.h), or with --frames one
 * two-frame message [key, payload] per line.
 *
 * It sends as fast as the receiver takes (a blocking send against libzmq's
 * high-water mark), and before exiting waits until libzmq has handed every
 * message to the connection (ZMQ_LINGER -1): when ringctl send returns 0,
 * nothing is lost as long as the receiving ringmaster keeps running (the
 * zmq source is at-most-once). It waits for a receiver that is not there
 * yet; stop it with ^C.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>
#include <zmq.h>

#include "cfg.h"
#include "clock.h"
#include "lines.h"

/* A line longer than the largest max_event_size (16M) plus a CR can only
 * be dead-lettered: send this much of it (the receiver says too_long and
 * keeps it) and skip the rest. */
#define LINE_SEND_MAX ((16u << 20) + 2)
#define READ_MAX (1u << 20)
#define PROGRESS_NS 250000000u

struct sender {
	void *ctx, *sock;
	char endpoint[512];
	const char *path; /* for messages; "-" is stdin */
	int fd;
	char *buf;
	size_t cap, start, end; /* unsent bytes are buf[start..end) */
	int eof, skipping;
	int frames;
	char delimiter;
	uint64_t lines, msgs, bytes, size, read_bytes;
	int progress;
	uint64_t start_ns, next_progress_ns;
};

static void send_usage(FILE *f)
{
	fprintf(f, "usage: ringctl [-c FILE] send [-e ENDPOINT] [--frames] [FILE]\n"
		   "Push the TSV lines of FILE (default: stdin) to a zmq source.\n"
		   "  -e, --endpoint EP  where to connect (default: the config's [source] bind,\n"
		   "                     with * or 0.0.0.0 taken as 127.0.0.1)\n"
		   "  -F, --frames       one message [key, payload] per line, split at the\n"
		   "                     config's delimiter (tab with -e) instead of batches\n"
		   "                     of lines\n");
}

/* A bind endpoint as something to connect to: every-interface addresses
 * become loopback. Returns 0, or -1 when it does not fit. */
static int connectable(const char *bind, char *out, size_t size)
{
	static const struct {
		const char *any, *local;
	} map[] = {
	    {"tcp://*:", "tcp://127.0.0.1:"},
	    {"tcp://0.0.0.0:", "tcp://127.0.0.1:"},
	    {"tcp://[::]:", "tcp://[::1]:"},
	};
	const char *host = "", *rest = bind;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t n = strlen(map[i].any);
		if (strncmp(bind, map[i].any, n) == 0) {
			host = map[i].local;
			rest = bind + n;
			break;
		}
	}
	int n = snprintf(out, size, "%s%s", host, rest);
	return n >= 0 && (size_t)n < size ? 0 : -1;
}

/* No -e: the endpoint and delimiter come from the configuration. */
static int from_config(struct sender *x, const char *config, char *const *overrides,
		       size_t n_overrides)
{
	struct cfg cfg;
	struct cfg_errors errs = {0};
	if (cfg_load(config, overrides, n_overrides, &cfg, &errs) != 0) {
		fputs(errs.text ? errs.text : "configuration error\n", stderr);
		cfg_errors_free(&errs);
		return EX_CONFIG;
	}
	int rc = 0;
	if (!cfg.zmq_bind || !cfg.zmq_bind[0]) {
		fprintf(stderr, "ringctl send: %s has no [source] bind: give -e ENDPOINT\n",
			cfg.file);
		rc = EX_CONFIG;
	} else if (connectable(cfg.zmq_bind, x->endpoint, sizeof(x->endpoint)) != 0) {
		fprintf(stderr, "ringctl send: [source] bind is too long\n");
		rc = EX_CONFIG;
	}
	x->delimiter = cfg.delimiter;
	cfg_free(&cfg);
	return rc;
}

static int parse_args(struct sender *x, const char *config, char *const *overrides,
		      size_t n_overrides, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"endpoint", required_argument, NULL, 'e'},
	    {"frames", no_argument, NULL, 'F'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *endpoint = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "e:Fh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			endpoint = optarg;
			break;
		case 'F':
			x->frames = 1;
			break;
		case 'h':
			send_usage(stdout);
			return -1;
		default:
			send_usage(stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		send_usage(stderr);
		return 2;
	}
	x->path = optind < argc ? argv[optind] : "-";
	x->delimiter = '\t';
	if (!endpoint)
		return from_config(x, config, overrides, n_overrides);
	if (connectable(endpoint, x->endpoint, sizeof(x->endpoint)) != 0) {
		fprintf(stderr, "ringctl send: endpoint too long\n");
		return 2;
	}
	return 0;
}

static int open_all(struct sender *x)
{
	int linger = -1; /* close waits until everything is delivered */
	int ipv6 = strchr(x->endpoint, '[') != NULL;
	if (strcmp(x->path, "-") == 0) {
		x->fd = STDIN_FILENO;
	} else if ((x->fd = open(x->path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "ringctl send: %s: %s\n", x->path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(x->fd, &st) == 0 && S_ISREG(st.st_mode))
		x->size = (uint64_t)st.st_size;
	x->cap = LINE_SEND_MAX + READ_MAX;
	if (!(x->buf = malloc(x->cap))) {
		fprintf(stderr, "ringctl send: out of memory\n");
		return -1;
	}
	x->ctx = zmq_ctx_new();
	if (!x->ctx || !(x->sock = zmq_socket(x->ctx, ZMQ_PUSH)) ||
	    zmq_setsockopt(x->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_setsockopt(x->sock, ZMQ_IPV6, &ipv6, sizeof(ipv6)) != 0 ||
	    zmq_connect(x->sock, x->endpoint) != 0) {
		fprintf(stderr, "ringctl send: %s: %s\n", x->endpoint, zmq_strerror(zmq_errno()));
		return -1;
	}
	x->progress = isatty(STDERR_FILENO);
	x->start_ns = shm_now_ns();
	return 0;
}

static void show_progress(struct sender *x, int final)
{
	uint64_t now = shm_now_ns();
	if (!final && now < x->next_progress_ns)
		return;
	x->next_progress_ns = now + PROGRESS_NS;
	double secs = (double)(now - x->start_ns) / 1e9;
	char pct[16] = "";
	if (x->size)
		snprintf(pct, sizeof(pct), "%5.1f%%  ",
			 100.0 * (double)x->read_bytes / (double)x->size);
	fprintf(stderr, "\r  %s%12llu lines  %9llu messages  %10.1f MB  %10.0f lines/s %s", pct,
		(unsigned long long)x->lines, (unsigned long long)x->msgs, (double)x->bytes / 1e6,
		secs > 0 ? (double)x->lines / secs : 0.0, final ? "\n" : "");
}

/* One frame; `more` for the key of a [key, payload] pair. */
static int send_frame(struct sender *x, const char *data, size_t len, int more)
{
	while (zmq_send(x->sock, data, len, more ? ZMQ_SNDMORE : 0) < 0) {
		if (zmq_errno() == EINTR)
			continue; /* a stop and continue (^Z, fg) */
		fprintf(stderr, "ringctl send: %s: %s\n", x->endpoint, zmq_strerror(zmq_errno()));
		return -1;
	}
	x->bytes += len;
	x->msgs += !more;
	return 0;
}

/* --frames: one line (without its newline) as [key, payload]; a line
 * without the delimiter goes as it is, for the receiver to dead-letter. */
static int send_pair(struct sender *x, const char *line, size_t len)
{
	const char *d = memchr(line, x->delimiter, len);
	if (!d)
		return send_frame(x, line, len, 0);
	size_t key_len = (size_t)(d - line);
	if (send_frame(x, line, key_len, 1) != 0)
		return -1;
	return send_frame(x, d + 1, len - key_len - 1, 0);
}

static size_t count_lines(const char *p, size_t len)
{
	size_t n = 0;
	for (const char *end = p + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		n++;
	return n;
}

/* Send the complete lines waiting in the buffer (all of it at the end of
 * the input). Returns 0 or -1. */
static int send_ready(struct sender *x)
{
	while (x->start < x->end) {
		const char *p = x->buf + x->start;
		size_t avail = x->end - x->start, n;
		int rc;
		if (x->frames) {
			const char *nl = memchr(p, '\n', avail);
			n = nl ? (size_t)(nl - p) + 1 : x->eof ? avail : 0;
			rc = n ? send_pair(x, p, nl ? n - 1 : n) : 0;
		} else {
			n = sink_chunk_len(p, avail, SINK_MSG_MAX);
			if (n == 0 && x->eof)
				n = avail;
			rc = n ? send_frame(x, p, n, 0) : 0;
		}
		if (rc != 0)
			return -1;
		if (n == 0)
			return 0; /* a partial line: read more */
		x->lines += x->frames ? 1 : count_lines(p, n) + (p[n - 1] != '\n');
		x->start += n;
		if (x->progress)
			show_progress(x, 0);
	}
	return 0;
}

/* A line that fills the whole buffer: send its first LINE_SEND_MAX bytes
 * as a message of their own, drop the rest up to its newline. */
static int send_overlong(struct sender *x)
{
	fprintf(stderr,
		"%sringctl send: %s: line %llu is longer than %u bytes: sending its first "
		"%u bytes (the receiver dead-letters it as too_long)\n",
		x->progress ? "\n" : "", x->path, (unsigned long long)x->lines + 1, LINE_SEND_MAX,
		LINE_SEND_MAX);
	if (send_frame(x, x->buf + x->start, LINE_SEND_MAX, 0) != 0)
		return -1;
	x->lines++;
	x->start += LINE_SEND_MAX;
	x->skipping = 1;
	return 0;
}

/* Drop the rest of an overlong line. */
static void skip_rest(struct sender *x)
{
	const char *p = x->buf + x->start;
	const char *nl = memchr(p, '\n', x->end - x->start);
	x->start = nl ? (size_t)(nl - x->buf) + 1 : x->end;
	x->skipping = !nl;
}

/* Read more, keeping the unsent bytes. Returns 0 or -1. */
static int fill(struct sender *x)
{
	if (x->start > 0) {
		memmove(x->buf, x->buf + x->start, x->end - x->start);
		x->end -= x->start;
		x->start = 0;
	}
	size_t room = x->cap - x->end;
	ssize_t n = read(x->fd, x->buf + x->end, room < READ_MAX ? room : READ_MAX);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n < 0) {
		fprintf(stderr, "%sringctl send: %s: %s\n", x->progress ? "\n" : "", x->path,
			strerror(errno));
		return -1;
	}
	x->eof = n == 0;
	x->end += (size_t)n;
	x->read_bytes += (uint64_t)n;
	return 0;
}

static int send_all(struct sender *x)
{
	while (!x->eof) {
		if (fill(x) != 0)
			return -1;
		if (x->skipping)
			skip_rest(x);
		if (send_ready(x) != 0)
			return -1;
		if (x->end - x->start >= LINE_SEND_MAX && send_overlong(x) != 0)
			return -1;
	}
	return 0;
}

static void close_all(struct sender *x)
{
	if (x->sock)
		zmq_close(x->sock);
	/* Waits (linger -1) until every message is on its way. */
	while (x->ctx && zmq_ctx_term(x->ctx) != 0 && zmq_errno() == EINTR)
		;
	if (x->fd > STDIN_FILENO)
		close(x->fd);
	free(x->buf);
}

int ctl_send(const char *config, char *const *overrides, size_t n_overrides, int argc, char **argv)
{
	struct sender x = {.fd = -1};
	int rc = parse_args(&x, config, overrides, n_overrides, argc, argv);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	rc = 1;
	if (open_all(&x) == 0 && send_all(&x) == 0)
		rc = 0;
	if (x.progress)
		show_progress(&x, 1);
	close_all(&x);
	return rc;
}
