/* ctl_top.c - ringctl top: a live view of a running ringmaster, refreshed
 * every second, like top(1): the instance's totals, then one line per
 * partition with bars for ring depth (of the ring's capacity) and events/s
 * (of the busiest partition's), restarts, lag and the last exit reason.
 *
 * It asks for `status --tsv` and `workers --tsv`: tab-separated fields
 * under a header line, which need no parser beyond splitting.
 *
 * On a terminal it switches it to non-canonical, no-echo mode to read 'q'
 * without Enter, and restores it on every way out: 'q', SIGINT, SIGTERM,
 * SIGHUP. With -n COUNT, or when stdin or stdout is not a terminal, it
 * prints COUNT plain frames (forever without -n) and leaves the terminal
 * alone. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"

#define TOP_LINE_MAX 1024
#define TOP_ERR_LEN 1024

static volatile sig_atomic_t top_quit; /* SIGINT, SIGTERM, SIGHUP */

static void on_quit(int sig)
{
	(void)sig;
	top_quit = 1;
}

/* SIGWINCH: nothing to note; interrupting the wait redraws at the new size. */
static void on_resize(int sig)
{
	(void)sig;
}

/* ---- TSV replies ---- */

struct tsv {
	char *text;  /* a copy of the body, split in place */
	char **cell; /* (rows + 1) * cols: row 0 is the header */
	size_t cols, rows;
};

static void tsv_free(struct tsv *t)
{
	free(t->text);
	free(t->cell);
	memset(t, 0, sizeof(*t));
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

/* Split a body of '\n'-ended lines of '\t'-separated fields, every line
 * with as many fields as the header. Returns 0, or -1 if it is not so. */
static int tsv_parse(struct tsv *t, const struct proto_buf *body)
{
	memset(t, 0, sizeof(*t));
	if (!body->len || !(t->text = strdup(body->data)))
		return -1;
	size_t lines = count_char(t->text, '\n');
	char *nl = strchr(t->text, '\n');
	if (!lines || !nl)
		goto bad;
	*nl = '\0';
	t->cols = count_char(t->text, '\t') + 1;
	*nl = '\n';
	if (!(t->cell = calloc(lines * t->cols, sizeof(*t->cell))))
		goto bad;
	char *line = t->text;
	for (size_t r = 0; r < lines; r++) {
		char *end = strchr(line, '\n');
		*end = '\0';
		for (size_t c = 0; c < t->cols; c++) {
			t->cell[r * t->cols + c] = line ? strsep(&line, "\t") : NULL;
			if (!t->cell[r * t->cols + c])
				goto bad;
		}
		if (line) /* more fields than the header */
			goto bad;
		line = end + 1;
	}
	t->rows = lines - 1;
	return 0;
bad:
	tsv_free(t);
	return -1;
}

/* The field `name` of data row `row`, or "" when there is no such field. */
static const char *tsv_get(const struct tsv *t, size_t row, const char *name)
{
	for (size_t c = 0; c < t->cols; c++)
		if (strcmp(t->cell[c], name) == 0)
			return t->cell[(row + 1) * t->cols + c];
	return "";
}

static double tsv_num(const struct tsv *t, size_t row, const char *name)
{
	const char *s = tsv_get(t, row, name);
	char *end;
	double v = strtod(s, &end);
	return end == s ? NAN : v;
}

/* ---- fetching ---- */

struct snapshot {
	struct tsv status, workers;
	struct proto_buf stages; /* `stages`, as it is shown; empty if not served */
};

static int fetch_one(struct ctl_client *c, const char *request, struct tsv *t, char *err,
		     size_t len)
{
	struct ctl_reply r;
	int rc = ctl_call(c, request, &r, err, len);
	if (rc != 0)
		return rc;
	if (!r.ok) {
		int n = (int)r.body.len; /* one line: without its newline */
		while (n > 0 && r.body.data[n - 1] == '\n')
			n--;
		snprintf(err, len, "%s: %.*s", request, n, n ? r.body.data : "");
		rc = 1;
	} else if (tsv_parse(t, &r.body) != 0) {
		snprintf(err, len, "%s: the reply is not the expected table", request);
		rc = 1;
	}
	proto_buf_free(&r.body);
	return rc;
}

static int fetch(struct ctl_client *c, struct snapshot *snap, char *err, size_t len)
{
	memset(snap, 0, sizeof(*snap));
	int rc = fetch_one(c, "status --tsv", &snap->status, err, len);
	if (rc == 0 && snap->status.rows != 1) {
		snprintf(err, len, "status: expected one record");
		rc = 1;
	}
	if (rc == 0)
		rc = fetch_one(c, "workers --tsv", &snap->workers, err, len);
	if (rc != 0) {
		tsv_free(&snap->status);
		tsv_free(&snap->workers);
		return rc;
	}
	/* Where the time goes: a ringmaster too old to know `stages` leaves
	 * it out, and the rest is still shown. */
	struct ctl_reply r;
	char ignored[TOP_ERR_LEN];
	if (ctl_call(c, "stages", &r, ignored, sizeof(ignored)) == 0) {
		if (r.ok)
			snap->stages = r.body;
		else
			proto_buf_free(&r.body);
	}
	return 0;
}

static void snapshot_free(struct snapshot *snap)
{
	tsv_free(&snap->status);
	tsv_free(&snap->workers);
	if (snap->stages.data)
		proto_buf_free(&snap->stages);
}

/* ---- drawing ---- */

struct screen {
	struct proto_buf out;
	int cols;  /* terminal width: longer lines are cut */
	int fancy; /* a terminal: clear to the end of each line */
};

static void put_line(struct screen *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_line(struct screen *sc, const char *fmt, ...)
{
	char line[TOP_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (n > sc->cols)
		n = sc->cols;
	proto_buf_add(&sc->out, line, (size_t)n);
	if (sc->fancy)
		proto_buf_add(&sc->out, "\033[K", 3);
	proto_buf_add(&sc->out, "\n", 1);
}

static void bar(char *out, int width, double frac)
{
	if (!(frac >= 0)) /* NaN too */
		frac = 0;
	if (frac > 1)
		frac = 1;
	int full = (int)lround(frac * width);
	out[0] = '[';
	for (int i = 0; i < width; i++)
		out[1 + i] = i < full ? '#' : '.';
	out[width + 1] = ']';
	out[width + 2] = '\0';
}

static void draw_status(struct screen *sc, const struct tsv *st)
{
	char up[32], pos[48] = "";
	proto_human_secs(tsv_num(st, 0, "uptime_seconds"), up, sizeof(up));
	double size = tsv_num(st, 0, "source_size"), at = tsv_num(st, 0, "source_position");
	if (size > 0)
		snprintf(pos, sizeof(pos), " (%.1f%%)", 100.0 * at / size);
	put_line(sc, "ringmaster %s  pid %s  %s  up %s  generation %s  partitions %s",
		 tsv_get(st, 0, "name"), tsv_get(st, 0, "pid"), tsv_get(st, 0, "state"), up,
		 tsv_get(st, 0, "generation"), tsv_get(st, 0, "partitions"));
	put_line(sc, "source %s %s  position %s %s%s  lag %s", tsv_get(st, 0, "source"),
		 tsv_get(st, 0, "source_name"), tsv_get(st, 0, "source_position"),
		 tsv_get(st, 0, "source_unit"), pos, tsv_get(st, 0, "source_lag"));
	if (strncmp(tsv_get(st, 0, "source"), "spool", 5) == 0)
		put_line(sc, "files done %s  waiting %s  reading %s", tsv_get(st, 0, "files_done"),
			 tsv_get(st, 0, "files_waiting"),
			 *tsv_get(st, 0, "source_file") ? tsv_get(st, 0, "source_file") : "-");
	put_line(sc,
		 "events read %s  processed %s  events/s %.0f  dead-lettered %s  "
		 "rejected %s  restarts %s",
		 tsv_get(st, 0, "events_read"), tsv_get(st, 0, "processed"),
		 tsv_num(st, 0, "events_per_second"), tsv_get(st, 0, "source_dead_lettered"),
		 tsv_get(st, 0, "handler_rejected"), tsv_get(st, 0, "restarts"));
}

/* Bars where there is room for them; at 80 columns and so, percentages
 * only, so that LAG and LAST EXIT always show. */
#define TOP_FIXED_COLS 68 /* the columns around the two bars, brackets included */
#define TOP_EXIT_COLS 20  /* room kept for LAST EXIT */
#define TOP_BAR_MIN 6

static void draw_workers(struct screen *sc, const struct tsv *wk)
{
	int bw = (sc->cols - TOP_FIXED_COLS - TOP_EXIT_COLS) / 2;
	bw = bw > 40 ? 40 : bw;
	int bars = bw >= TOP_BAR_MIN;
	double max_rate = 1;
	for (size_t r = 0; r < wk->rows; r++)
		if (tsv_num(wk, r, "events_per_second") > max_rate)
			max_rate = tsv_num(wk, r, "events_per_second");
	if (bars)
		put_line(sc, "%4s %7s %-8s %8s  %-*s %6s  %10s %-*s %9s  %s", "P", "PID", "STATE",
			 "RESTARTS", bw + 2, "RING DEPTH", "", "EV/S", bw + 2, "", "LAG",
			 "LAST EXIT");
	else
		put_line(sc, "%3s %7s %-9s %4s %6s %9s %9s  %s", "P", "PID", "STATE", "RST",
			 "RING%", "EV/S", "LAG", "LAST EXIT");
	for (size_t r = 0; r < wk->rows; r++) {
		char depth_bar[64], rate_bar[64];
		double cap = tsv_num(wk, r, "ring_capacity_bytes");
		double depth = tsv_num(wk, r, "ring_depth_bytes");
		double rate = tsv_num(wk, r, "events_per_second");
		double frac = cap > 0 ? depth / cap : 0;
		if (isnan(rate))
			rate = 0;
		if (!bars) {
			put_line(sc, "%3s %7s %-9s %4s %5.1f%% %9.0f %9s  %s",
				 tsv_get(wk, r, "partition"), tsv_get(wk, r, "pid"),
				 tsv_get(wk, r, "state"), tsv_get(wk, r, "restarts"), 100.0 * frac,
				 rate, tsv_get(wk, r, "lag_records"), tsv_get(wk, r, "last_exit"));
			continue;
		}
		bar(depth_bar, bw, frac);
		bar(rate_bar, bw, rate / max_rate);
		put_line(sc, "%4s %7s %-8s %8s  %s %5.1f%%  %10.0f %s %9s  %s",
			 tsv_get(wk, r, "partition"), tsv_get(wk, r, "pid"),
			 tsv_get(wk, r, "state"), tsv_get(wk, r, "restarts"), depth_bar,
			 100.0 * frac, rate, rate_bar, tsv_get(wk, r, "lag_records"),
			 tsv_get(wk, r, "last_exit"));
	}
}

static int terminal_width(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return TOP_LINE_MAX; /* not a terminal: do not cut */
}

/* One frame: what was fetched, or why nothing was. */
static int draw(struct screen *sc, const struct snapshot *snap, const char *err, double delay_s)
{
	sc->cols = terminal_width();
	proto_buf_init(&sc->out);
	if (sc->fancy)
		proto_buf_add(&sc->out, "\033[H", 3);
	if (err) {
		put_line(sc, "ringctl top: %s", err);
	} else {
		draw_status(sc, &snap->status);
		put_line(sc, "%s", "");
		draw_workers(sc, &snap->workers);
		if (snap->stages.len && !snap->stages.failed) {
			put_line(sc, "%s", "");
			put_line(
			    sc,
			    "where the time goes (share of each process's time since it started):");
			const char *line = snap->stages.data, *nl;
			while ((nl = strchr(line, '\n'))) {
				put_line(sc, "%.*s", (int)(nl - line), line);
				line = nl + 1;
			}
		}
	}
	put_line(sc, "%s", "");
	time_t now = time(NULL);
	char clock[16] = "";
	struct tm tm;
	if (localtime_r(&now, &tm))
		strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	put_line(sc, "%s  refresh %.1fs  %s", sc->fancy ? "q: quit" : "", delay_s, clock);
	if (sc->fancy)
		proto_buf_add(&sc->out, "\033[J", 3);
	int rc = 0;
	if (sc->out.failed || fwrite(sc->out.data, 1, sc->out.len, stdout) != sc->out.len ||
	    fflush(stdout) != 0)
		rc = -1;
	proto_buf_free(&sc->out);
	return rc;
}

/* ---- the terminal ---- */

struct term {
	int raw;
	struct termios saved;
};

static void set_signals(void (*quit)(int), void (*resize)(int))
{
	struct sigaction sa = {.sa_handler = quit};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = resize;
	sigaction(SIGWINCH, &sa, NULL);
}

static int term_raw(struct term *t)
{
	if (tcgetattr(STDIN_FILENO, &t->saved) != 0)
		return -1;
	struct termios raw = t->saved;
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	set_signals(on_quit, on_resize); /* before the change: no way out unrestored */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0)
		return -1;
	t->raw = 1;
	fputs("\033[?1049h\033[?25l\033[2J", stdout); /* alternate screen, no cursor */
	return 0;
}

static void term_restore(struct term *t)
{
	if (!t->raw)
		return;
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	t->raw = 0;
	set_signals(SIG_DFL, SIG_DFL);
}

/* Wait up to delay_ms for a key; 1 when it is time to quit. */
static int wait_key(int delay_ms)
{
	struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
	int rc = poll(&pfd, 1, delay_ms);
	if (rc <= 0)
		return top_quit;
	char keys[64];
	ssize_t n = read(STDIN_FILENO, keys, sizeof(keys));
	if (n == 0)
		return 1; /* end of input */
	for (ssize_t i = 0; i < n; i++)
		if (keys[i] == 'q' || keys[i] == 'Q')
			return 1;
	return top_quit;
}

/* ---- the command ---- */

static int parse_top_options(int argc, char **argv, long *count, uint64_t *delay_ms)
{
	int ch;
	const char *why;
	char *end;
	while ((ch = getopt(argc, argv, "n:d:")) != -1) {
		switch (ch) {
		case 'n':
			*count = strtol(optarg, &end, 10);
			if (*end || *count <= 0) {
				fprintf(stderr, "ringctl top: -n takes a count above 0, got '%s'\n",
					optarg);
				return -1;
			}
			break;
		case 'd':
			if (cfg_parse_duration_ms(optarg, delay_ms, &why) != 0 || *delay_ms < 100) {
				fprintf(stderr,
					"ringctl top: -d takes a delay of at least 100ms, "
					"got '%s'\n",
					optarg);
				return -1;
			}
			break;
		default:
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: ringctl top [-n COUNT] [-d DELAY]\n");
		return -1;
	}
	return 0;
}

int ctl_top(struct ctl_client *c, int argc, char **argv)
{
	long count = 0;
	uint64_t delay_ms = 1000;
	if (parse_top_options(argc, argv, &count, &delay_ms) != 0)
		return 2;
	struct screen sc = {.fancy = !count && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)};
	struct term term = {.raw = 0};
	struct snapshot snap;
	char err[TOP_ERR_LEN];
	c->cancel = &top_quit; /* q, ^C: do not sit out a wedged supervisor's timeout */
	int failed = 0, rc = fetch(c, &snap, err, sizeof(err));
	if (rc != 0) { /* nothing to show at all: say why, as other commands do */
		fprintf(stderr, "ringctl: %s\n", err);
		return rc;
	}
	if (sc.fancy && term_raw(&term) != 0) {
		perror("ringctl top: cannot set up the terminal");
		term_restore(&term);
		failed = 1;
		goto out;
	}
	for (long shown = 0;;) {
		if (draw(&sc, rc == 0 ? &snap : NULL, rc == 0 ? NULL : err,
			 (double)delay_ms / 1000) != 0) {
			failed = 1; /* stdout is gone: nobody to show anything to */
			break;
		}
		if (count && ++shown >= count)
			break;
		if (!sc.fancy)
			putchar('\n');
		if ((sc.fancy && wait_key((int)delay_ms)) || top_quit)
			break;
		if (!sc.fancy)
			poll(NULL, 0, (int)delay_ms);
		snapshot_free(&snap);
		/* A failure now is shown in the frame, and top keeps trying. */
		rc = fetch(c, &snap, err, sizeof(err));
	}
	term_restore(&term);
out:
	snapshot_free(&snap);
	return failed;
}
