/* peer_pg.c - a peer of `make bench-peers` (issue 19): what a user would
 * build with PostgreSQL. The ledger is PL/pgSQL (ledger_pg.sql) on a
 * server with synchronous_commit = off; the client sends the events in
 * batches of BATCH, each batch one transaction, one of two ways (-m):
 *
 *   batch  one call of ledger_batch(seqs[], accounts[], types[], amounts[])
 *          a batch, the events as four array parameters;
 *   event  one prepared call of ledger_event(seq, account, type, amount) an
 *          event, pipelined (libpq pipeline mode), BEGIN ... COMMIT around
 *          each batch.
 *
 * With -t T, T connections on T threads, each taking the accounts that hash
 * to it, in file order (per-account order holds, as in ringmaster's
 * partitions; PostgreSQL runs a backend per connection).
 *
 *   peer_pg -c CONNINFO -f SQL [-m batch|event] [-t T] [-b BATCH]
 *           [-d SECONDS] [-o OUTPUT] [-s STATE] rules=FILE accounts=FILE EVENTS
 *
 * Before the clock: SQL run (it recreates the tables and functions), the
 * tables loaded with COPY. Then the clock runs over reading EVENTS and
 * running them; -d stops starting batches after SECONDS (complete=no).
 * The result line counts the CPU of the whole server (postmaster, its
 * background processes and the backends) over the same time: it runs on
 * this machine. Afterwards OUTPUT gets the output lines and STATE every
 * state as `ringctl dump-state` prints it. Exit codes: 0 done, 1 failure
 * (message on stderr), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchio.h"

#define PG_THREADS_MAX 64
/* Pipelined calls sent before their results are read: the server's
 * replies must not fill the socket while the client is still sending. */
#define PG_PIPE_CHUNK 256

enum mode { MODE_BATCH, MODE_EVENT };

static PGconn *connect_pg(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "peer_pg: cannot connect to '%s': %s", conninfo,
			c ? PQerrorMessage(c) : "out of memory\n");
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Consume a result of the expected status; -1 with a message otherwise. */
static int result_ok(PGconn *c, PGresult *res, ExecStatusType want, const char *what)
{
	int ok = res && PQresultStatus(res) == want;

	if (!ok)
		fprintf(stderr, "peer_pg: %s: %s", what,
			res ? PQresultErrorMessage(res) : PQerrorMessage(c));
	PQclear(res);
	return ok ? 0 : -1;
}

/* ---- loading ----------------------------------------------------------------- */

static int copy_row(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	PGconn *c = arg;

	if (PQputCopyData(c, key, (int)klen) != 1 || PQputCopyData(c, "\t", 1) != 1 ||
	    PQputCopyData(c, val, (int)vlen) != 1 || PQputCopyData(c, "\n", 1) != 1) {
		fprintf(stderr, "peer_pg: COPY: %s", PQerrorMessage(c));
		return -1;
	}
	return 0;
}

/* Rows go in as the file has them: key<TAB>value is a row of the table's
 * columns in order (rules: type, sign, max_amount, fee_bps; accounts:
 * account, status, overdraft_limit). */
static int load_table(PGconn *c, const char *arg)
{
	const char *name, *file;
	size_t n;
	char sql[128];

	if (bio_table_arg(arg, &name, &n, &file) < 0)
		return -1;
	if (!(n == 5 && !memcmp(name, "rules", 5)) && !(n == 8 && !memcmp(name, "accounts", 8))) {
		fprintf(stderr,
			"peer_pg: the ledger knows the tables rules and accounts, not '%.*s'\n",
			(int)n, name);
		return -1;
	}
	snprintf(sql, sizeof(sql), "COPY %.*s FROM STDIN", (int)n, name);
	if (result_ok(c, PQexec(c, sql), PGRES_COPY_IN, sql) < 0)
		return -1;
	int rc = bio_table_each(file, copy_row, c);

	if (PQputCopyEnd(c, rc < 0 ? "the table file could not be read" : NULL) != 1)
		rc = -1;
	if (result_ok(c, PQgetResult(c), PGRES_COMMAND_OK, file) < 0)
		rc = -1;
	while (PQgetResult(c))
		;
	return rc;
}

static int load(PGconn *c, const char *sql_path, char **tables, int ntables)
{
	char *sql = NULL;
	size_t len = 0;
	FILE *f = fopen(sql_path, "r");

	if (!f) {
		fprintf(stderr, "peer_pg: cannot open %s: %s\n", sql_path, strerror(errno));
		return -1;
	}
	if (getdelim(&sql, &len, '\0', f) < 0) {
		fprintf(stderr, "peer_pg: reading %s: %s\n", sql_path,
			ferror(f) ? strerror(errno) : "empty file");
		fclose(f);
		free(sql);
		return -1;
	}
	fclose(f);
	int rc = result_ok(c, PQexec(c, sql), PGRES_COMMAND_OK, sql_path);

	free(sql);
	for (int i = 0; rc == 0 && i < ntables; i++)
		rc = load_table(c, tables[i]);
	/* The reference tables only: statistics of an empty state table would
	 * plan its lookups as scans, which the functions' cached plans would
	 * keep as it grows. */
	if (rc == 0)
		rc =
		    result_ok(c, PQexec(c, "ANALYZE rules, accounts"), PGRES_COMMAND_OK, "ANALYZE");
	return rc;
}

/* ---- the run ------------------------------------------------------------------- */

struct worker {
	const char *conninfo;
	const struct bio_events *ev;
	size_t *idx; /* this connection's events, in file order */
	size_t n;
	unsigned batch;
	enum mode mode;
	double deadline;
	size_t done;
	bool failed;
	pthread_t thread;
};

/* A growing text buffer for the array literals. */
struct buf {
	char *p;
	size_t len, cap;
};

static int buf_put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 65536;

		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);

		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* One element of a text[] literal, quoted. */
static int buf_elem(struct buf *b, const char *s, size_t n)
{
	int rc = buf_put(b, b->len > 1 ? ",\"" : "\"", b->len > 1 ? 2 : 1);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = s[i] == '"' || s[i] == '\\' ? buf_put(b, "\\", 1) || buf_put(b, s + i, 1)
						 : buf_put(b, s + i, 1);
	return rc ? -1 : buf_put(b, "\"", 1);
}

/* type and amount of a payload: split at the first tab (no tab: the
 * amount is empty, which the ledger calls malformed). */
static void split_payload(const struct rm_event *e, const char **type, size_t *tlen,
			  const char **amount, size_t *alen)
{
	const char *tab = memchr(e->payload, '\t', e->payload_len);

	*type = e->payload;
	*tlen = tab ? (size_t)(tab - e->payload) : e->payload_len;
	*amount = tab ? tab + 1 : "";
	*alen = tab ? e->payload_len - *tlen - 1 : 0;
}

static int run_batch(PGconn *c, struct worker *w, size_t from, size_t to, struct buf b[4])
{
	for (int k = 0; k < 4; k++) {
		b[k].len = 0;
		if (buf_put(&b[k], "{", 1) < 0)
			goto oom;
	}
	for (size_t i = from; i < to; i++) {
		const struct rm_event *e = &w->ev->ev[w->idx[i]];
		const char *type, *amount;
		size_t tlen, alen;
		char seq[24];
		int n = snprintf(seq, sizeof(seq), "%s%llu", b[0].len > 1 ? "," : "",
				 (unsigned long long)e->seq);

		split_payload(e, &type, &tlen, &amount, &alen);
		if (buf_put(&b[0], seq, (size_t)n) < 0 || buf_elem(&b[1], e->key, e->key_len) < 0 ||
		    buf_elem(&b[2], type, tlen) < 0 || buf_elem(&b[3], amount, alen) < 0)
			goto oom;
	}
	const char *params[4];

	for (int k = 0; k < 4; k++) {
		if (buf_put(&b[k], "}", 1) < 0)
			goto oom;
		params[k] = b[k].p;
	}
	return result_ok(c, PQexecPrepared(c, "batch", 4, params, NULL, NULL, 0), PGRES_TUPLES_OK,
			 "ledger_batch");
oom:
	fprintf(stderr, "peer_pg: out of memory building a batch\n");
	return -1;
}

/* Read the results of n pipelined queries. */
static int pipe_results(PGconn *c, size_t n, ExecStatusType want, const char *what)
{
	for (size_t i = 0; i < n; i++) {
		if (result_ok(c, PQgetResult(c), want, what) < 0)
			return -1;
		PGresult *end = PQgetResult(c); /* NULL between the queries' results */

		if (end) {
			PQclear(end);
			fprintf(stderr, "peer_pg: %s: more results than queries\n", what);
			return -1;
		}
	}
	return 0;
}

static int send_plain(PGconn *c, const char *sql)
{
	if (PQsendQueryParams(c, sql, 0, NULL, NULL, NULL, NULL, 0) != 1) {
		fprintf(stderr, "peer_pg: %s: %s", sql, PQerrorMessage(c));
		return -1;
	}
	return 0;
}

static int run_events(PGconn *c, struct worker *w, size_t from, size_t to)
{
	bool first = true;

	if (send_plain(c, "BEGIN") < 0)
		return -1;
	for (size_t i = from; i < to;) {
		size_t end = i + PG_PIPE_CHUNK < to ? i + PG_PIPE_CHUNK : to, sent = end - i;

		for (; i < end; i++) {
			const struct rm_event *e = &w->ev->ev[w->idx[i]];
			const char *type, *amount;
			size_t tlen, alen;
			char seq[24];

			split_payload(e, &type, &tlen, &amount, &alen);
			snprintf(seq, sizeof(seq), "%llu", (unsigned long long)e->seq);
			/* Text in binary format is its bytes: no copies to add NULs. */
			const char *params[4] = {seq, e->key, type, amount};
			int lens[4] = {0, (int)e->key_len, (int)tlen, (int)alen};
			int fmts[4] = {0, 1, 1, 1};

			if (PQsendQueryPrepared(c, "event", 4, params, lens, fmts, 0) != 1) {
				fprintf(stderr, "peer_pg: ledger_event: %s", PQerrorMessage(c));
				return -1;
			}
		}
		if (PQsendFlushRequest(c) != 1 || PQflush(c) != 0) {
			fprintf(stderr, "peer_pg: sending: %s", PQerrorMessage(c));
			return -1;
		}
		if (first && pipe_results(c, 1, PGRES_COMMAND_OK, "BEGIN") < 0)
			return -1;
		first = false;
		if (pipe_results(c, sent, PGRES_TUPLES_OK, "ledger_event") < 0)
			return -1;
	}
	if (send_plain(c, "COMMIT") < 0 || PQpipelineSync(c) != 1 ||
	    pipe_results(c, 1, PGRES_COMMAND_OK, "COMMIT") < 0)
		return -1;
	return result_ok(c, PQgetResult(c), PGRES_PIPELINE_SYNC, "sync");
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct buf b[4] = {{0}};
	PGconn *c = connect_pg(w->conninfo);

	w->failed = true;
	if (!c)
		return NULL;
	if (w->mode == MODE_BATCH
		? result_ok(c,
			    PQprepare(c, "batch",
				      "SELECT ledger_batch($1::bigint[], $2::text[], $3::text[], "
				      "$4::text[])",
				      4, NULL),
			    PGRES_COMMAND_OK, "preparing ledger_batch") < 0
		: result_ok(c,
			    PQprepare(c, "event", "SELECT ledger_event($1::bigint, $2, $3, $4)", 4,
				      (Oid[]){20, 25, 25, 25}),
			    PGRES_COMMAND_OK, "preparing ledger_event") < 0 ||
		      PQenterPipelineMode(c) != 1)
		goto out;
	for (size_t i = 0; i < w->n;) {
		if (w->deadline > 0 && bio_now() >= w->deadline)
			break;
		size_t end = i + w->batch < w->n ? i + w->batch : w->n;

		if ((w->mode == MODE_BATCH ? run_batch(c, w, i, end, b)
					   : run_events(c, w, i, end)) < 0)
			goto out;
		w->done = i = end;
	}
	w->failed = false;
out:
	for (int k = 0; k < 4; k++)
		free(b[k].p);
	PQfinish(c);
	return NULL;
}

/* The events of each connection, by account. */
static int split(const struct bio_events *ev, struct worker *w, unsigned t)
{
	for (unsigned i = 0; i < t; i++) {
		w[i].idx = malloc((ev->n ? ev->n : 1) * sizeof(*w[i].idx));
		if (!w[i].idx) {
			fprintf(stderr, "peer_pg: out of memory splitting the events\n");
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

/* Write the one text column of every row of sql to path, a line each. */
static int dump(PGconn *c, const char *sql, const char *path)
{
	PGresult *res = PQexec(c, sql);
	FILE *f;
	int rc = -1;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return result_ok(c, res, PGRES_TUPLES_OK, sql);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "peer_pg: cannot write %s: %s\n", path, strerror(errno));
		PQclear(res);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++)
		fprintf(f, "%s\n", PQgetvalue(res, i, 0));
	rc = 0;
	if (fclose(f) != 0) {
		fprintf(stderr, "peer_pg: writing %s: %s\n", path, strerror(errno));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* The postmaster's pid: the parent of this connection's backend. */
static long postmaster_pid(PGconn *c)
{
	char path[64], buf[512];
	long ppid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", PQbackendPID(c));
	f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);

	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');

	if (!p || sscanf(p + 2, "%*c %ld", &ppid) != 1)
		return -1;
	return ppid;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: peer_pg -c CONNINFO -f SQL [-m batch|event] [-t T] [-b BATCH]\n"
		   "               [-d SECONDS] [-o OUTPUT] [-s STATE] rules=FILE accounts=FILE "
		   "EVENTS\n"
		   "runs SQL (ledger_pg.sql), loads the tables, then runs EVENTS through\n"
		   "ledger_batch (a call a batch) or ledger_event (a pipelined call an event)\n"
		   "on T connections, a transaction a batch of BATCH events.\n");
}

int main(int argc, char **argv)
{
	const char *conninfo = NULL, *sql_path = NULL, *out_path = NULL, *state_path = NULL;
	unsigned long t = 1, batch = 4096, secs_max = 0;
	enum mode mode = MODE_BATCH;
	struct worker w[PG_THREADS_MAX] = {0};
	struct bio_events ev = {0};
	PGconn *c = NULL;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "hc:f:m:t:b:d:o:s:")) != -1) {
		switch (opt) {
		case 'c':
			conninfo = optarg;
			break;
		case 'f':
			sql_path = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "batch") != 0 && strcmp(optarg, "event") != 0) {
				fprintf(stderr, "peer_pg: -m is batch or event, got '%s'\n",
					optarg);
				return 2;
			}
			mode = optarg[0] == 'b' ? MODE_BATCH : MODE_EVENT;
			break;
		case 't':
			if (bio_parse_uint("-t", optarg, 1, PG_THREADS_MAX, &t) < 0)
				return 2;
			break;
		case 'b':
			if (bio_parse_uint("-b", optarg, 1, 1000000, &batch) < 0)
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
	if (!conninfo || !sql_path || argc - optind < 2) {
		usage(stderr);
		return 2;
	}
	c = connect_pg(conninfo);
	if (!c || load(c, sql_path, argv + optind, argc - optind - 1) < 0)
		goto out;
	long pid = postmaster_pid(c);
	double t0 = bio_now(), cpu0 = bio_cpu(), server0 = pid > 0 ? bio_tree_cpu(pid) : -1;

	if (server0 < 0) {
		fprintf(stderr,
			"peer_pg: cannot read the server's CPU time (backend %d): "
			"is it on this machine?\n",
			PQbackendPID(c));
		goto out;
	}
	if (bio_events_load(argv[argc - 1], &ev) < 0 || split(&ev, w, (unsigned)t) < 0)
		goto out;
	unsigned started = 0;

	for (; started < t; started++) {
		w[started] = (struct worker){.conninfo = conninfo,
					     .ev = &ev,
					     .idx = w[started].idx,
					     .n = w[started].n,
					     .batch = (unsigned)batch,
					     .mode = mode,
					     .deadline = secs_max ? t0 + (double)secs_max : 0};
		int err = pthread_create(&w[started].thread, NULL, worker_main, &w[started]);

		if (err) {
			fprintf(stderr, "peer_pg: cannot start a thread: %s\n", strerror(err));
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
	double secs = bio_now() - t0, cpu = bio_cpu() - cpu0;
	/* The backends that ended are counted once the postmaster has reaped
	 * them: the session that loaded is still open, the others are gone. */
	double server = bio_tree_cpu(pid) - server0;

	if (failed)
		goto out;
	char name[48];

	snprintf(name, sizeof(name), "postgres_%s_t%lu", mode == MODE_BATCH ? "batch" : "event", t);
	bio_report(name, done, secs, cpu, server, done == ev.n);
	if ((out_path && dump(c, "SELECT line FROM output ORDER BY seq", out_path) < 0) ||
	    (state_path &&
	     dump(c,
		  "SELECT account || E'\\t' || 'balance=' || balance || ' count=' || events "
		  "FROM state ORDER BY account COLLATE \"C\"",
		  state_path) < 0))
		goto out;
	rc = 0;
out:
	for (unsigned i = 0; i < t; i++)
		free(w[i].idx);
	bio_events_free(&ev);
	PQfinish(c);
	return rc;
}
