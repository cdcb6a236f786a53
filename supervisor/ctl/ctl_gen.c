/* ctl_gen.c - `ringctl gen`: the generator's data as TSV files, so that a
 * demo or a benchmark can run from a file exactly what the `generate` source
 * produces inside ringmaster (same parameters, same bytes, same seqs). With
 * --format jsonl the same events are JSON lines ({"account":KEY,
 * "type":TYPE,"amount":N}: the same state, other seqs, as the seq of a
 * file's line is its byte offset). */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen.h"

#define GEN_DEFAULT_EVENTS 1000000
#define GEN_DEFAULT_KEYS 10000
#define GEN_DEFAULT_SEED 42

/* Output goes through one big buffer and write(2): stdio's per-call locking
 * and small buffer would be the bottleneck at tens of millions of lines. */
#define OUT_BUF_SIZE (1 << 20)

struct out {
	char *buf;
	size_t len;
	int fd;
};

static void gen_usage(FILE *f)
{
	fprintf(f,
		"usage: ringctl gen events [--events N] [--keys N] [--seed N] [--skew X]\n"
		"                          [--format tsv|jsonl]\n"
		"       ringctl gen accounts [--keys N] [--seed N]\n"
		"       ringctl gen rules\n"
		"Writes TSV (or JSON lines: [source] format = jsonl, key = account) to\n"
		"stdout. Defaults: --events %d --keys %d --seed %d --skew 0\n"
		"(uniform; a Zipf exponent such as 0.99 makes a few accounts hot).\n",
		GEN_DEFAULT_EVENTS, GEN_DEFAULT_KEYS, GEN_DEFAULT_SEED);
}

static int out_flush(struct out *o)
{
	size_t done = 0;

	while (done < o->len) {
		ssize_t n = write(o->fd, o->buf + done, o->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "ringctl gen: writing to stdout: %s\n", strerror(errno));
			return -1;
		}
		done += (size_t)n;
	}
	o->len = 0;
	return 0;
}

/* Make room for `need` bytes, flushing if the buffer is too full. */
static inline int out_reserve(struct out *o, size_t need)
{
	if (o->len + need > OUT_BUF_SIZE)
		return out_flush(o);
	return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	/* strtoull accepts "-1" and wraps it; refuse anything but digits. */
	if (*s < '0' || *s > '9')
		goto bad;
	*v = strtoull(s, &end, 10);
	if (errno || *end)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "ringctl gen: %s wants a non-negative integer, got '%s'\n", opt, s);
	return -1;
}

static int parse_skew(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*v) || *v < 0) {
		fprintf(stderr, "ringctl gen: --skew wants a number >= 0, got '%s'\n", s);
		return -1;
	}
	return 0;
}

static int parse_format(const char *s, bool *jsonl)
{
	if (strcmp(s, "tsv") && strcmp(s, "jsonl")) {
		fprintf(stderr, "ringctl gen: --format wants tsv or jsonl, got '%s'\n", s);
		return -1;
	}
	*jsonl = !strcmp(s, "jsonl");
	return 0;
}

/* Store one option's value. Returns 0, -1 for a bad value (message printed),
 * or 1 for an option we do not know. */
static int set_opt(int c, const char *arg, struct gen_params *p, bool *jsonl)
{
	switch (c) {
	case 'f':
		return parse_format(arg, jsonl);
	case 'e':
		return parse_u64("--events", arg, &p->events);
	case 'k':
		return parse_u64("--keys", arg, &p->keys);
	case 's':
		return parse_u64("--seed", arg, &p->seed);
	case 'z':
		return parse_skew(arg, &p->skew);
	default:
		return 1;
	}
}

/* Parse the options of `gen events|accounts` (--events, --skew and --format
 * only for events). Returns 0, 1 for --help, or -1 (message printed). */
static int parse_opts(int argc, char **argv, bool events, struct gen_params *p, bool *jsonl)
{
	static const struct option opts[] = {
	    {"events", required_argument, NULL, 'e'},
	    {"keys", required_argument, NULL, 'k'},
	    {"seed", required_argument, NULL, 's'},
	    {"skew", required_argument, NULL, 'z'},
	    {"format", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	/* 0, not 1: GNU getopt then forgets any state from ringctl's own
	 * options. Our messages, not getopt's (it would name "events"). */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:", opts, NULL)) != -1) {
		int rc = 0;

		if ((c == 'e' || c == 'z' || c == 'f') && !events) {
			fprintf(stderr, "ringctl gen accounts: --%s applies to events only\n",
				c == 'e'   ? "events"
				: c == 'z' ? "skew"
					   : "format");
			return -1;
		}
		if (c == 'h')
			return 1;
		if (c == ':') {
			fprintf(stderr, "ringctl gen: %s needs a value\n", argv[optind - 1]);
			return -1;
		}
		rc = set_opt(c, optarg, p, jsonl);
		if (rc > 0)
			fprintf(stderr, "ringctl gen: unknown option '%s'\n", argv[optind - 1]);
		if (rc != 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "ringctl gen: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (p->keys < 1 || p->keys > GEN_KEYS_MAX) {
		fprintf(stderr, "ringctl gen: --keys must be 1..%llu, got %llu\n",
			(unsigned long long)GEN_KEYS_MAX, (unsigned long long)p->keys);
		return -1;
	}
	return 0;
}

/* The longest JSON line: the fixed text around the three fields. */
#define JSON_LINE_MAX (GEN_KEY_MAX + GEN_PAYLOAD_MAX + 48)

/* {"account":"acct00000001","type":"deposit","amount":123} from a key and
 * a TSV payload `type<TAB>amount`. The generator's keys, types and amounts
 * are letters, digits and underscores: nothing to escape. */
static size_t json_line(char *w, const char *key, size_t kl, const char *payload, size_t pl)
{
	const char *tab = memchr(payload, '\t', pl);
	size_t tl = tab ? (size_t)(tab - payload) : pl;
	char *p = w;

#define PUT(s, n) (memcpy(p, (s), (n)), p += (n))
	PUT("{\"account\":\"", 12);
	PUT(key, kl);
	PUT("\",\"type\":\"", 10);
	PUT(payload, tl);
	PUT("\",\"amount\":", 11);
	PUT(payload + tl + 1, pl - tl - 1);
	PUT("}\n", 2);
#undef PUT
	return (size_t)(p - w);
}

static int write_events(struct out *o, const struct gen_params *p, bool jsonl)
{
	struct gen *g = gen_new(p);
	char key[GEN_KEY_MAX], payload[GEN_PAYLOAD_MAX];
	size_t kl, pl;
	uint64_t seq;
	int rc = 1;

	if (!g) {
		fprintf(stderr, "ringctl gen events: cannot set up the generator: %s\n",
			strerror(errno));
		return 1;
	}
	while (gen_next(g, key, &kl, payload, &pl, &seq)) {
		if (out_reserve(o, JSON_LINE_MAX) < 0)
			goto out;
		char *w = o->buf + o->len;

		if (jsonl) {
			o->len += json_line(w, key, kl, payload, pl);
			continue;
		}
		memcpy(w, key, kl);
		w[kl] = '\t';
		memcpy(w + kl + 1, payload, pl);
		w[kl + 1 + pl] = '\n';
		o->len += kl + pl + 2;
	}
	rc = out_flush(o) < 0 ? 1 : 0;
out:
	gen_free(g);
	return rc;
}

static int write_accounts(struct out *o, const struct gen_params *p)
{
	for (uint64_t i = 0; i < p->keys; i++) {
		if (out_reserve(o, 64) < 0)
			return 1;
		size_t n = gen_account_row(p->seed, i, o->buf + o->len, 63);

		o->buf[o->len + n] = '\n';
		o->len += n + 1;
	}
	return out_flush(o) < 0 ? 1 : 0;
}

static int write_rules(struct out *o)
{
	const char *r = gen_rules_tsv();
	size_t n = strlen(r);

	if (n > OUT_BUF_SIZE)
		return 1;
	memcpy(o->buf, r, n);
	o->len = n;
	return out_flush(o) < 0 ? 1 : 0;
}

int ctl_gen(int argc, char **argv)
{
	struct gen_params p = {.events = GEN_DEFAULT_EVENTS,
			       .keys = GEN_DEFAULT_KEYS,
			       .seed = GEN_DEFAULT_SEED,
			       .skew = 0};
	struct out o = {.fd = STDOUT_FILENO};
	const char *what = argc > 1 ? argv[1] : "";
	bool jsonl = false;
	int rc;

	if (!strcmp(what, "-h") || !strcmp(what, "--help")) {
		gen_usage(stdout);
		return 0;
	}
	bool events = !strcmp(what, "events");

	if (!events && strcmp(what, "accounts") && strcmp(what, "rules")) {
		fprintf(stderr, "ringctl gen: say what to generate: events, accounts or rules\n");
		gen_usage(stderr);
		return 2;
	}
	if (!strcmp(what, "rules") && argc > 2) {
		fprintf(stderr, "ringctl gen rules: takes no options, got '%s'\n", argv[2]);
		return 2;
	}
	rc = parse_opts(argc - 1, argv + 1, events, &p, &jsonl);
	if (rc != 0) {
		gen_usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	o.buf = malloc(OUT_BUF_SIZE);
	if (!o.buf) {
		fprintf(stderr, "ringctl gen: out of memory\n");
		return 1;
	}
	if (events)
		rc = write_events(&o, &p, jsonl);
	else if (!strcmp(what, "accounts"))
		rc = write_accounts(&o, &p);
	else
		rc = write_rules(&o);
	free(o.buf);
	return rc;
}
