/* peer_redis.c - a peer of `make bench-peers` (issue 19): what a user would
 * build with Redis, the logic inside Redis. The ledger is a Redis Function
 * (ledger_redis.lua, FUNCTION LOAD), called once an event with FCALL,
 * pipelined BATCH calls at a time; the reference tables are preloaded as
 * hashes; the server runs with appendonly yes, appendfsync everysec (at
 * most about a second lost on an OS crash, as ringmaster's default). With
 * -t T, T connections on T threads, each taking the accounts that hash to
 * it, in file order: per-account order holds, as in ringmaster's
 * partitions.
 *
 *   peer_redis -p PORT -f FUNCTION [-t T] [-b BATCH] [-d SECONDS]
 *              [-o OUTPUT] [-s STATE] rules=FILE accounts=FILE EVENTS
 *
 * Before the clock: FLUSHALL, FUNCTION LOAD REPLACE, the tables loaded.
 * Then the clock runs over reading EVENTS and running them; -d stops
 * starting batches after SECONDS (complete=no). The result line counts the
 * CPU of redis-server over the same time (it runs on this machine: its pid
 * from INFO). Afterwards OUTPUT gets the output lines (the list `out`, in
 * the order they were pushed) and STATE every state as `ringctl dump-state`
 * prints it. Exit codes: 0 done, 1 failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchio.h"

#define RP_THREADS_MAX 64
#define RP_LOAD_WINDOW 1000
#define RP_SCAN_COUNT "1000"
#define RP_LRANGE_CHUNK 10000
/* The C ledger's bound on table amounts (ledger.c): 10^14 cents. */
#define RP_AMOUNT_MAX 100000000000000LL

struct endpoint {
	const char *host;
	int port;
};

static redisContext *connect_redis(const struct endpoint *ep)
{
	struct timeval tv = {30, 0};
	redisContext *r = redisConnectWithTimeout(ep->host, ep->port, tv);

	if (!r || r->err) {
		fprintf(stderr, "peer_redis: cannot connect to Redis at %s:%d: %s\n", ep->host,
			ep->port, r ? r->errstr : "out of memory");
		redisFree(r);
		return NULL;
	}
	if (redisSetTimeout(r, tv) != REDIS_OK) {
		fprintf(stderr, "peer_redis: setting a reply timeout: %s\n", r->errstr);
		redisFree(r);
		return NULL;
	}
	return r;
}

/* A reply of the expected type, or -1 with a message naming `what`. */
static int reply_ok(redisContext *r, redisReply *rep, int type, const char *what)
{
	if (!rep) {
		fprintf(stderr, "peer_redis: %s: connection failed: %s\n", what, r->errstr);
		return -1;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "peer_redis: %s: Redis says: %s\n", what, rep->str);
		return -1;
	}
	if (rep->type != type) {
		fprintf(stderr, "peer_redis: %s: unexpected reply type %d\n", what, rep->type);
		return -1;
	}
	return 0;
}

/* Run one command; 0 when its reply has the type expected. */
static int command_ok(redisContext *r, int type, const char *what, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	redisReply *rep = redisvCommand(r, fmt, ap);
	va_end(ap);
	int rc = reply_ok(r, rep, type, what);

	freeReplyObject(rep);
	return rc;
}

/* Read n pipelined replies of the expected type. */
static int replies_ok(redisContext *r, size_t n, int type, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		void *rep = NULL;

		if (redisGetReply(r, &rep) != REDIS_OK)
			rep = NULL;
		int rc = reply_ok(r, rep, type, what);

		freeReplyObject(rep);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* ---- loading ----------------------------------------------------------------- */

struct load {
	redisContext *r;
	const char *file;
	bool rules; /* else accounts */
	size_t pending;
};

/* The fields of a row: `sign max fee` or `status limit`. The Function
 * trusts them, so they are checked here as the C ledger checks them. */
static int load_row(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct load *l = arg;
	char f[3][32];
	int n = 0;
	size_t start = 0;

	for (size_t i = 0; i <= vlen && n < 3; i++) {
		if (i < vlen && val[i] != '\t')
			continue;
		if (i - start >= sizeof(f[0]))
			break;
		memcpy(f[n], val + start, i - start);
		f[n++][i - start] = '\0';
		start = i + 1;
	}
	char *end1, *end2;
	long long a = n > 1 ? strtoll(f[1], &end1, 10) : 0;
	long long b = n > 2 ? strtoll(f[2], &end2, 10) : 0;
	bool ok = l->rules
		      ? n == 3 && start == vlen + 1 &&
			    (!strcmp(f[0], "1") || !strcmp(f[0], "+1") || !strcmp(f[0], "-1")) &&
			    *f[1] && !*end1 && a >= 1 && a <= RP_AMOUNT_MAX && *f[2] && !*end2 &&
			    b >= 0 && b <= 10000
		      : n == 2 && start == vlen + 1 &&
			    (!strcmp(f[0], "active") || !strcmp(f[0], "frozen")) && *f[1] &&
			    !*end1 && a >= 0 && a <= RP_AMOUNT_MAX;

	if (!ok) {
		fprintf(stderr, "peer_redis: %s: row '%.*s' is not a %s row: '%.*s'\n", l->file,
			(int)klen, key, l->rules ? "rules" : "accounts", (int)vlen, val);
		return -1;
	}
	if (l->rules)
		redisAppendCommand(l->r, "HSET r:%b sign %s max %s fee %s", key, klen,
				   f[0][0] == '-' ? "-1" : "1", f[1], f[2]);
	else
		redisAppendCommand(l->r, "HSET a:%b status %s limit %s", key, klen, f[0], f[1]);
	if (++l->pending == RP_LOAD_WINDOW) {
		l->pending = 0;
		return replies_ok(l->r, RP_LOAD_WINDOW, REDIS_REPLY_INTEGER, l->file);
	}
	return 0;
}

static int load(redisContext *r, const char *function_path, char **tables, int ntables)
{
	char *lua = NULL;
	size_t len = 0;
	FILE *f = fopen(function_path, "r");

	if (!f) {
		fprintf(stderr, "peer_redis: cannot open %s: %s\n", function_path, strerror(errno));
		return -1;
	}
	if (getdelim(&lua, &len, '\0', f) < 0) {
		fprintf(stderr, "peer_redis: reading %s: %s\n", function_path,
			ferror(f) ? strerror(errno) : "empty file");
		fclose(f);
		free(lua);
		return -1;
	}
	fclose(f);
	int rc = command_ok(r, REDIS_REPLY_STATUS, "FLUSHALL", "FLUSHALL") < 0 ||
			 command_ok(r, REDIS_REPLY_STRING, function_path,
				    "FUNCTION LOAD REPLACE %s", lua) < 0
		     ? -1
		     : 0;

	free(lua);
	for (int i = 0; rc == 0 && i < ntables; i++) {
		struct load l = {.r = r};
		const char *name;
		size_t n;

		if (bio_table_arg(tables[i], &name, &n, &l.file) < 0)
			return -1;
		if (!(n == 5 && !memcmp(name, "rules", 5)) &&
		    !(n == 8 && !memcmp(name, "accounts", 8))) {
			fprintf(stderr,
				"peer_redis: the Function knows the tables rules and accounts, "
				"not '%.*s'\n",
				(int)n, name);
			return -1;
		}
		l.rules = n == 5;
		if (bio_table_each(l.file, load_row, &l) < 0 ||
		    replies_ok(r, l.pending, REDIS_REPLY_INTEGER, l.file) < 0)
			rc = -1;
	}
	return rc;
}

/* ---- the run ------------------------------------------------------------------- */

struct worker {
	const struct endpoint *ep;
	const struct bio_events *ev;
	size_t *idx; /* this connection's events, in file order */
	size_t n;
	unsigned batch;
	double deadline;
	size_t done;
	bool failed;
	pthread_t thread;
};

/* Append the FCALL of one event. */
static void append_fcall(redisContext *r, const struct rm_event *e)
{
	char seq[24], skey[2 + BIO_KEY_MAX], akey[2 + BIO_KEY_MAX], rkey[2 + BIO_LINE_MAX];
	const char *tab = memchr(e->payload, '\t', e->payload_len);
	size_t tlen = tab ? (size_t)(tab - e->payload) : e->payload_len;
	const char *amount = tab ? tab + 1 : "";
	size_t alen = tab ? e->payload_len - tlen - 1 : 0;
	int slen = snprintf(seq, sizeof(seq), "%llu", (unsigned long long)e->seq);

	memcpy(skey, "s:", 2);
	memcpy(skey + 2, e->key, e->key_len);
	memcpy(akey, "a:", 2);
	memcpy(akey + 2, e->key, e->key_len);
	memcpy(rkey, "r:", 2);
	memcpy(rkey + 2, e->payload, tlen);
	const char *argv[] = {"FCALL", "ledger", "5", skey,   akey,	  rkey,
			      "out",   "dead",	 seq, e->key, e->payload, amount};
	size_t lens[] = {5,	   6,	1, 2 + e->key_len, 2 + e->key_len,
			 2 + tlen, 3,	4, (size_t)slen,   e->key_len,
			 tlen,	   alen};

	redisAppendCommandArgv(r, 12, argv, lens);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	redisContext *r = connect_redis(w->ep);

	if (!r) {
		w->failed = true;
		return NULL;
	}
	for (size_t i = 0; i < w->n;) {
		if (w->deadline > 0 && bio_now() >= w->deadline)
			break;
		size_t end = i + w->batch < w->n ? i + w->batch : w->n;

		for (size_t k = i; k < end; k++)
			append_fcall(r, &w->ev->ev[w->idx[k]]);
		if (replies_ok(r, end - i, REDIS_REPLY_INTEGER, "FCALL ledger") < 0) {
			w->failed = true;
			break;
		}
		w->done = i = end;
	}
	redisFree(r);
	return NULL;
}

/* The events of each connection, by account. */
static int split(const struct bio_events *ev, struct worker *w, unsigned t)
{
	for (unsigned i = 0; i < t; i++) {
		w[i].idx = malloc((ev->n ? ev->n : 1) * sizeof(*w[i].idx));
		if (!w[i].idx) {
			fprintf(stderr, "peer_redis: out of memory splitting the events\n");
			return -1;
		}
	}
	for (size_t k = 0; k < ev->n; k++) {
		struct worker *to = &w[bio_split(ev->ev[k].key, ev->ev[k].key_len, t)];

		to->idx[to->n++] = k;
	}
	return 0;
}

/* ---- reading back ------------------------------------------------------------------ */

static int dump_output(redisContext *r, const char *path)
{
	FILE *f = fopen(path, "w");
	int rc = -1;

	if (!f) {
		fprintf(stderr, "peer_redis: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (long long from = 0;; from += RP_LRANGE_CHUNK) {
		redisReply *rep =
		    redisCommand(r, "LRANGE out %lld %lld", from, from + RP_LRANGE_CHUNK - 1);

		if (reply_ok(r, rep, REDIS_REPLY_ARRAY, "LRANGE out") < 0) {
			freeReplyObject(rep);
			goto out;
		}
		for (size_t i = 0; i < rep->elements; i++)
			fprintf(f, "%.*s\n", (int)rep->element[i]->len, rep->element[i]->str);
		size_t got = rep->elements;

		freeReplyObject(rep);
		if (got < RP_LRANGE_CHUNK)
			break;
	}
	rc = 0;
out:
	if (fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "peer_redis: writing %s: %s\n", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

/* Every s:ACCOUNT hash as `ACCOUNT<TAB>balance=.. count=..`, sorted (in a
 * map first: SCAN may return a key twice). */
static int dump_state(redisContext *r, const char *path)
{
	struct bio_map m = {0};
	char cursor[32] = "0";
	int rc = -1;

	do {
		redisReply *rep = redisCommand(r, "SCAN %s MATCH s:* COUNT " RP_SCAN_COUNT, cursor);

		if (reply_ok(r, rep, REDIS_REPLY_ARRAY, "SCAN") < 0 || rep->elements != 2 ||
		    rep->element[0]->len >= sizeof(cursor)) {
			freeReplyObject(rep);
			goto out;
		}
		memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
		redisReply *keys = rep->element[1];

		for (size_t i = 0; i < keys->elements; i++) {
			redisReply *v = redisCommand(r, "HMGET %b balance count",
						     keys->element[i]->str, keys->element[i]->len);
			char line[96];
			int n;

			if (reply_ok(r, v, REDIS_REPLY_ARRAY, "HMGET") < 0 || v->elements != 2 ||
			    v->element[0]->type != REDIS_REPLY_STRING ||
			    v->element[1]->type != REDIS_REPLY_STRING) {
				fprintf(stderr, "peer_redis: state %s is not {balance, count}\n",
					keys->element[i]->str);
				freeReplyObject(v);
				freeReplyObject(rep);
				goto out;
			}
			n = snprintf(line, sizeof(line), "balance=%s count=%s", v->element[0]->str,
				     v->element[1]->str);
			freeReplyObject(v);
			if (bio_map_put(&m, keys->element[i]->str + 2, keys->element[i]->len - 2,
					line, (size_t)n) < 0) {
				fprintf(stderr, "peer_redis: out of memory reading the state\n");
				freeReplyObject(rep);
				goto out;
			}
		}
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);
	rc = bio_map_dump(&m, path);
out:
	bio_map_free(&m);
	return rc;
}

/* redis-server's pid, from INFO server (it runs on this machine). */
static long server_pid(redisContext *r)
{
	redisReply *rep = redisCommand(r, "INFO server");
	long pid = -1;

	if (reply_ok(r, rep, REDIS_REPLY_STRING, "INFO") == 0) {
		const char *p = strstr(rep->str, "process_id:");

		if (p)
			pid = strtol(p + 11, NULL, 10);
	}
	freeReplyObject(rep);
	return pid;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: peer_redis -p PORT -f FUNCTION [-H HOST] [-t T] [-b BATCH] [-d SECONDS]\n"
		"                  [-o OUTPUT] [-s STATE] rules=FILE accounts=FILE EVENTS\n"
		"flushes Redis, loads FUNCTION (ledger_redis.lua) and the tables, then runs\n"
		"EVENTS through FCALL ledger on T connections, BATCH calls pipelined.\n");
}

int main(int argc, char **argv)
{
	struct endpoint ep = {"127.0.0.1", 0};
	const char *function_path = NULL, *out_path = NULL, *state_path = NULL;
	unsigned long t = 1, batch = 256, secs_max = 0, v;
	struct worker w[RP_THREADS_MAX] = {0};
	struct bio_events ev = {0};
	redisContext *r = NULL;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "hH:p:f:t:b:d:o:s:")) != -1) {
		switch (opt) {
		case 'H':
			ep.host = optarg;
			break;
		case 'p':
			if (bio_parse_uint("-p", optarg, 1, 65535, &v) < 0)
				return 2;
			ep.port = (int)v;
			break;
		case 'f':
			function_path = optarg;
			break;
		case 't':
			if (bio_parse_uint("-t", optarg, 1, RP_THREADS_MAX, &t) < 0)
				return 2;
			break;
		case 'b':
			if (bio_parse_uint("-b", optarg, 1, 100000, &batch) < 0)
				return 2;
			break;
		case 'd':
			if (bio_parse_uint("-d", optarg, 1, 86400, &secs_max) < 0)
				return 2;
			break;
		case 'o':
			out_path = optarg;
			break;
		case 's':
			state_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!ep.port || !function_path || argc - optind < 2) {
		usage(stderr);
		return 2;
	}
	r = connect_redis(&ep);
	if (!r || load(r, function_path, argv + optind, argc - optind - 1) < 0)
		goto out;
	long pid = server_pid(r);

	if (pid < 0) {
		fprintf(stderr, "peer_redis: INFO server gives no process_id\n");
		goto out;
	}
	double t0 = bio_now(), cpu0 = bio_cpu(), server0 = bio_tree_cpu(pid);

	if (server0 < 0) {
		fprintf(stderr,
			"peer_redis: cannot read the CPU time of redis-server (pid %ld): "
			"is it on this machine?\n",
			pid);
		goto out;
	}
	if (bio_events_load(argv[argc - 1], &ev) < 0 || split(&ev, w, (unsigned)t) < 0)
		goto out;
	unsigned started = 0;

	for (; started < t; started++) {
		w[started] = (struct worker){.ep = &ep,
					     .ev = &ev,
					     .idx = w[started].idx,
					     .n = w[started].n,
					     .batch = (unsigned)batch,
					     .deadline = secs_max ? t0 + (double)secs_max : 0};
		int err = pthread_create(&w[started].thread, NULL, worker_main, &w[started]);

		if (err) {
			fprintf(stderr, "peer_redis: cannot start a thread: %s\n", strerror(err));
			break;
		}
	}
	size_t done = 0;
	bool failed = started < t;

	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		done += w[i].done;
		failed |= w[i].failed;
	}
	double secs = bio_now() - t0, cpu = bio_cpu() - cpu0, server = bio_tree_cpu(pid) - server0;

	if (failed)
		goto out;
	char name[32];

	snprintf(name, sizeof(name), "redis_t%lu", t);
	bio_report(name, done, secs, cpu, server, done == ev.n);
	if ((out_path && dump_output(r, out_path) < 0) ||
	    (state_path && dump_state(r, state_path) < 0))
		goto out;
	rc = 0;
out:
	for (unsigned i = 0; i < t; i++)
		free(w[i].idx);
	bio_events_free(&ev);
	redisFree(r);
	return rc;
}
