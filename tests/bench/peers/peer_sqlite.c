/* peer_sqlite.c - a peer of `make bench-peers` (issue 19): what a user
 * would build with SQLite. One process, one thread, the database in WAL
 * mode with synchronous=NORMAL (a commit is in the WAL at once and on disk
 * at the next checkpoint: an application crash loses nothing, an OS crash
 * the last moments, as ringmaster's default sync = periodic), prepared
 * statements, one transaction per 4096 events, and a page cache big
 * enough for the whole database.
 *
 * The business logic is not a copy: this file implements the handler API
 * of common/ringmaster.h over SQLite and runs the ledger handler ringmaster
 * runs (worker/handlers/ledger.c). A table row is one SELECT on
 * ref(t, k, v), a state read one SELECT on state(k, v), a write one upsert;
 * each output line is a row of output(line), in the same transaction as
 * the state it goes with, so output and state are exactly once together,
 * as ringmaster's are. An event the handler rejects as bad goes to
 * dead(seq, reason).
 *
 *   peer_sqlite [-d SECONDS] [-o OUTPUT] [-s STATE] DB NAME=FILE... EVENTS
 *
 * DB is created afresh and the tables loaded (not timed); then the clock
 * runs over reading EVENTS and running them. -d stops starting batches
 * after SECONDS (complete=no). Afterwards OUTPUT gets the output lines in
 * order and STATE every state as `ringctl dump-state` prints it. Prints the
 * line of bio_report. Exit codes: 0 done, 1 failure (message on stderr),
 * 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchio.h"
#include "handlers/ledger.h"
#include "ringmaster.h"

#define SQ_TXN_EVENTS 4096
/* Values handed to the handler live here until the event is done: SQLite's
 * own copy goes when its statement is reset. */
#define SQ_ARENA (256 * 1024)

struct rm_ctx {
	sqlite3 *db;
	sqlite3_stmt *table_get, *state_get, *state_put, *state_del, *emit, *dead;
	char arena[SQ_ARENA];
	size_t arena_used;
	char reject[64];
};

static int sq_fail(rm_ctx *c, const char *what)
{
	rm_log(c, RM_LOG_ERROR, "%s: %s", what, sqlite3_errmsg(c->db));
	return -EIO;
}

/* ---- the handler API over SQLite ------------------------------------------ */

/* Step a SELECT of one value: RM_FOUND with a copy in the arena, or
 * RM_NOTFOUND. The statement is reset either way. */
static int select_value(rm_ctx *c, sqlite3_stmt *st, struct rm_value *val)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return RM_NOTFOUND;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return sq_fail(c, "SELECT");
	}
	const void *p = sqlite3_column_blob(st, 0);
	size_t n = (size_t)sqlite3_column_bytes(st, 0);

	if (n > SQ_ARENA - c->arena_used) {
		sqlite3_reset(st);
		rm_log(c, RM_LOG_ERROR, "values of one event beyond %d bytes", SQ_ARENA);
		return -ENOMEM;
	}
	if (n)
		memcpy(c->arena + c->arena_used, p, n);
	val->data = c->arena + c->arena_used;
	val->len = n;
	c->arena_used += n;
	sqlite3_reset(st);
	return RM_FOUND;
}

int rm_table_get(rm_ctx *c, const char *table, const char *key, size_t key_len,
		 struct rm_value *val)
{
	if (sqlite3_bind_text(c->table_get, 1, table, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(c->table_get, 2, key, (int)key_len, SQLITE_STATIC) != SQLITE_OK)
		return sq_fail(c, "binding a table lookup");
	return select_value(c, c->table_get, val);
}

int rm_state_get(rm_ctx *c, const char *key, size_t key_len, struct rm_value *val)
{
	if (sqlite3_bind_blob(c->state_get, 1, key, (int)key_len, SQLITE_STATIC) != SQLITE_OK)
		return sq_fail(c, "binding a state lookup");
	return select_value(c, c->state_get, val);
}

/* Step a statement that returns no row, and reset it. */
static int step_done(rm_ctx *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sq_fail(c, what);
}

int rm_state_put(rm_ctx *c, const char *key, size_t key_len, const void *val, size_t val_len)
{
	if (key_len == 0 || key_len > BIO_KEY_MAX)
		return -EINVAL;
	if (sqlite3_bind_blob(c->state_put, 1, key, (int)key_len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(c->state_put, 2, val, (int)val_len, SQLITE_STATIC) != SQLITE_OK)
		return sq_fail(c, "binding a state write");
	return step_done(c, c->state_put, "writing a state");
}

int rm_state_del(rm_ctx *c, const char *key, size_t key_len)
{
	if (key_len == 0 || key_len > BIO_KEY_MAX)
		return -EINVAL;
	if (sqlite3_bind_blob(c->state_del, 1, key, (int)key_len, SQLITE_STATIC) != SQLITE_OK)
		return sq_fail(c, "binding a state delete");
	return step_done(c, c->state_del, "deleting a state");
}

int rm_emit(rm_ctx *c, const char *line, size_t len)
{
	if (sqlite3_bind_blob(c->emit, 1, line, (int)len, SQLITE_STATIC) != SQLITE_OK)
		return sq_fail(c, "binding an output line");
	return step_done(c, c->emit, "writing an output line");
}

void rm_reject(rm_ctx *c, const char *reason)
{
	snprintf(c->reject, sizeof(c->reject), "%s", reason);
}

void rm_count(rm_ctx *c, const char *outcome)
{
	(void)c;
	(void)outcome;
}

const char *rm_param(rm_ctx *c, const char *name)
{
	(void)c;
	(void)name;
	return NULL;
}

unsigned rm_partition(rm_ctx *c)
{
	(void)c;
	return 0;
}

unsigned rm_partitions(rm_ctx *c)
{
	(void)c;
	return 1;
}

void rm_log(rm_ctx *c, int level, const char *fmt, ...)
{
	va_list ap;

	(void)c;
	fprintf(stderr, "peer_sqlite: %s: ", level == RM_LOG_ERROR ? "error" : "note");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the database ---------------------------------------------------------- */

static int exec(rm_ctx *c, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(c->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "peer_sqlite: %s: %s\n", sql, err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static int prepare(rm_ctx *c, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		fprintf(stderr, "peer_sqlite: %s: %s\n", sql, sqlite3_errmsg(c->db));
		return -1;
	}
	return 0;
}

static int open_db(rm_ctx *c, const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "peer_sqlite: cannot remove the old %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	/* One thread: no mutexes. */
	if (sqlite3_open_v2(path, &c->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		fprintf(stderr, "peer_sqlite: cannot open %s: %s\n", path,
			c->db ? sqlite3_errmsg(c->db) : "out of memory");
		return -1;
	}
	/* A page cache that holds the whole database (256 MB; the default 2 MB
	 * would read most pages back from the kernel). */
	if (exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		    "PRAGMA cache_size=-262144;"
		    "CREATE TABLE ref(t TEXT, k BLOB, v BLOB, PRIMARY KEY (t, k)) WITHOUT ROWID;"
		    "CREATE TABLE state(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID;"
		    "CREATE TABLE output(line BLOB);"
		    "CREATE TABLE dead(seq INTEGER, reason TEXT);") < 0)
		return -1;
	return prepare(c, "INSERT INTO ref(t, k, v) VALUES (?1, ?2, ?3)", &c->table_get);
}

struct load {
	rm_ctx *c;
	const char *name;
	size_t name_len;
};

static int load_row(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct load *l = arg;
	sqlite3_stmt *st = l->c->table_get; /* the INSERT, while loading */

	if (sqlite3_bind_text(st, 1, l->name, (int)l->name_len, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, key, (int)klen, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, val, (int)vlen, SQLITE_STATIC) != SQLITE_OK ||
	    step_done(l->c, st, "loading a table row") < 0) {
		fprintf(stderr, "peer_sqlite: table %.*s, row '%.*s': %s\n", (int)l->name_len,
			l->name, (int)klen, key, sqlite3_errmsg(l->c->db));
		return -1;
	}
	return 0;
}

static int load_tables(rm_ctx *c, char **args, int n)
{
	if (exec(c, "BEGIN") < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct load l = {.c = c};
		const char *file;

		if (bio_table_arg(args[i], &l.name, &l.name_len, &file) < 0 ||
		    bio_table_each(file, load_row, &l) < 0)
			return -1;
	}
	sqlite3_finalize(c->table_get);
	c->table_get = NULL;
	if (exec(c, "COMMIT") < 0)
		return -1;
	return prepare(c, "SELECT v FROM ref WHERE t = ?1 AND k = ?2", &c->table_get) ||
		       prepare(c, "SELECT v FROM state WHERE k = ?1", &c->state_get) ||
		       prepare(c,
			       "INSERT INTO state(k, v) VALUES (?1, ?2) "
			       "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
			       &c->state_put) ||
		       prepare(c, "DELETE FROM state WHERE k = ?1", &c->state_del) ||
		       prepare(c, "INSERT INTO output(line) VALUES (?1)", &c->emit) ||
		       prepare(c, "INSERT INTO dead(seq, reason) VALUES (?1, ?2)", &c->dead)
		   ? -1
		   : 0;
}

/* ---- the run --------------------------------------------------------------- */

static int run_event(rm_ctx *c, void *hs, const struct rm_event *ev)
{
	int rc;

	c->arena_used = 0;
	switch (ledger_handler.process(c, hs, ev)) {
	case RM_OK:
		return 0;
	case RM_REJECT:
		rc = sqlite3_bind_int64(c->dead, 1, (sqlite3_int64)ev->seq);
		if (rc == SQLITE_OK)
			rc = sqlite3_bind_text(c->dead, 2, c->reject[0] ? c->reject : "rejected",
					       -1, SQLITE_TRANSIENT);
		c->reject[0] = '\0';
		if (rc != SQLITE_OK)
			return sq_fail(c, "binding a dead letter");
		return step_done(c, c->dead, "writing a dead letter");
	default:
		fprintf(stderr, "peer_sqlite: the handler failed on the event at seq %llu\n",
			(unsigned long long)ev->seq);
		return -1;
	}
}

/* Run the events, SQ_TXN_EVENTS to a transaction, until the end or the
 * deadline (0: none). *done counts the events committed. */
static int run(rm_ctx *c, const struct bio_events *e, double deadline, uint64_t *done)
{
	void *hs = NULL;
	int rc = -1;

	if (ledger_handler.init(c, &hs) != 0)
		return -1;
	for (size_t i = 0; i < e->n;) {
		if (deadline > 0 && bio_now() >= deadline)
			break;
		size_t end = i + SQ_TXN_EVENTS < e->n ? i + SQ_TXN_EVENTS : e->n;

		if (exec(c, "BEGIN") < 0)
			goto out;
		for (; i < end; i++)
			if (run_event(c, hs, &e->ev[i]) < 0) {
				(void)exec(c, "ROLLBACK");
				goto out;
			}
		if (exec(c, "COMMIT") < 0)
			goto out;
		*done = end;
	}
	rc = 0;
out:
	ledger_handler.fini(c, hs);
	return rc;
}

static int dump(rm_ctx *c, const char *sql, const char *path)
{
	sqlite3_stmt *st;
	FILE *f = fopen(path, "w");
	int rc = -1, step;

	if (!f) {
		fprintf(stderr, "peer_sqlite: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (prepare(c, sql, &st) < 0)
		goto out;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		for (int col = 0; col < sqlite3_column_count(st); col++) {
			const void *p = sqlite3_column_blob(st, col);

			if (col)
				fputc('\t', f);
			fwrite(p, 1, (size_t)sqlite3_column_bytes(st, col), f);
		}
		fputc('\n', f);
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		fprintf(stderr, "peer_sqlite: %s: %s\n", sql, sqlite3_errmsg(c->db));
		goto out;
	}
	rc = 0;
out:
	if (fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "peer_sqlite: writing %s: %s\n", path, strerror(errno));
		rc = -1;
	}
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: peer_sqlite [-d SECONDS] [-o OUTPUT] [-s STATE] DB NAME=FILE... EVENTS\n"
		"creates DB afresh, loads the tables (TSV, key<TAB>value), runs the ledger\n"
		"over EVENTS in %d-event transactions; -d: stop after SECONDS; OUTPUT and\n"
		"STATE get the output lines and the final states afterwards.\n",
		SQ_TXN_EVENTS);
}

int main(int argc, char **argv)
{
	static rm_ctx c;
	const char *out_path = NULL, *state_path = NULL;
	unsigned long secs_max = 0;
	struct bio_events ev = {0};
	uint64_t done = 0;
	int opt, rc = 1;

	while ((opt = getopt(argc, argv, "hd:o:s:")) != -1) {
		switch (opt) {
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
	if (argc - optind < 3) {
		usage(stderr);
		return 2;
	}
	if (open_db(&c, argv[optind]) < 0 ||
	    load_tables(&c, argv + optind + 1, argc - optind - 2) < 0)
		goto out;

	double t0 = bio_now(), cpu0 = bio_cpu();

	if (bio_events_load(argv[argc - 1], &ev) < 0 ||
	    run(&c, &ev, secs_max ? t0 + (double)secs_max : 0, &done) < 0)
		goto out;
	double secs = bio_now() - t0, cpu = bio_cpu() - cpu0;

	bio_report("sqlite", done, secs, cpu, 0, done == ev.n);
	if (out_path && dump(&c, "SELECT line FROM output ORDER BY rowid", out_path) < 0)
		goto out;
	if (state_path && dump(&c, "SELECT k, v FROM state ORDER BY k", state_path) < 0)
		goto out;
	rc = 0;
out:
	bio_events_free(&ev);
	sqlite3_stmt *sts[] = {c.table_get, c.state_get, c.state_put, c.state_del, c.emit, c.dead};

	for (size_t i = 0; i < sizeof(sts) / sizeof(*sts); i++)
		sqlite3_finalize(sts[i]);
	if (c.db && sqlite3_close(c.db) != SQLITE_OK)
		fprintf(stderr, "peer_sqlite: closing the database: %s\n", sqlite3_errmsg(c.db));
	return rc;
}
