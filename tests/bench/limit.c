/* limit.c - the limit of this machine for the ledger (issue 19, `make
 * bench-peers`): the very handler ringmaster runs (worker/handlers/ledger.c)
 * in one process and one thread, through the smallest implementation of the
 * handler API that can run it. Events come from a file in ringmaster's
 * format (read whole), tables and state are hash maps, the output lines go
 * into one buffer written once at the end, and nothing is durable. What is
 * left is the work itself: parse, look up, decide, format. Its events/s on
 * one core is the ceiling for this work; ringmaster's CPU per event is
 * reported as a multiple of its.
 *
 *   limit [-P] [-o OUTPUT] [-s STATE] NAME=FILE... EVENTS
 *
 * Tables are loaded first (not timed); then the clock runs over reading
 * EVENTS, running every event and writing OUTPUT (default /dev/null). STATE
 * gets every key's state as `ringctl dump-state` prints it. Output lines are
 * the handler's, in file order; an event the handler rejects as bad (a
 * dead letter in ringmaster) is counted, not written. The lines an event's
 * key will touch are prefetched a few events ahead (-P: not), since on this
 * machine a miss to memory costs more than the rest of an event's work.
 * Prints one line:
 * `limit: events=.. seconds=.. events_per_second=.. cpu_seconds=..
 * cpu_us_per_event=.. complete=yes` (cpu over the timed part). Exit codes:
 * 0 done, 1 failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handlers/ledger.h"
#include "peers/benchio.h"
#include "ringmaster.h"

#define LIMIT_TABLES_MAX 16
/* How many events ahead the lines of a key are asked for: enough to cover
 * a miss to memory (hundreds of ns here) with the work of the events in
 * between. */
#define LIMIT_PREFETCH_AHEAD 8

struct table {
	char name[64];
	struct bio_map rows;
};

struct rm_ctx {
	struct table tables[LIMIT_TABLES_MAX];
	unsigned ntables;
	struct bio_map state;
	struct bio_entry *last; /* of the last rm_state_get: its put needs no lookup */
	char *out;
	size_t out_len, out_cap;
	uint64_t dead;
	bool prefetch;
};

/* ---- the handler API in memory ------------------------------------------- */

int rm_table_get(rm_ctx *c, const char *table, const char *key, size_t key_len,
		 struct rm_value *val)
{
	for (unsigned i = 0; i < c->ntables; i++) {
		if (strcmp(c->tables[i].name, table) != 0)
			continue;
		const struct bio_entry *e = bio_map_get(&c->tables[i].rows, key, key_len);

		if (!e)
			return RM_NOTFOUND;
		*val = (struct rm_value){bio_entry_val(e), e->vlen};
		return RM_FOUND;
	}
	return RM_NOTFOUND;
}

int rm_state_get(rm_ctx *c, const char *key, size_t key_len, struct rm_value *val)
{
	struct bio_entry *e = bio_map_get(&c->state, key, key_len);

	c->last = e;
	if (!e)
		return RM_NOTFOUND;
	*val = (struct rm_value){bio_entry_val(e), e->vlen};
	return RM_FOUND;
}

int rm_state_put(rm_ctx *c, const char *key, size_t key_len, const void *val, size_t val_len)
{
	if (key_len == 0 || key_len > BIO_KEY_MAX)
		return -EINVAL;
	struct bio_entry *e = c->last;
	int rc = e && e->klen == key_len && memcmp(bio_entry_key(e), key, key_len) == 0
		     ? bio_entry_set(e, val, val_len)
		     : bio_map_put(&c->state, key, key_len, val, val_len);

	c->last = NULL; /* a put may have moved the entries */
	return rc < 0 ? -ENOMEM : 0;
}

int rm_state_del(rm_ctx *c, const char *key, size_t key_len)
{
	/* The ledger never deletes; an empty value would not be a deletion. */
	(void)c;
	(void)key;
	(void)key_len;
	return -ENOTSUP;
}

int rm_emit(rm_ctx *c, const char *line, size_t len)
{
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = c->out_cap ? 2 * c->out_cap : 1 << 20;

		while (cap < c->out_len + len + 1)
			cap *= 2;
		char *p = realloc(c->out, cap);

		if (!p)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, line, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	return 0;
}

void rm_reject(rm_ctx *c, const char *reason)
{
	(void)c;
	(void)reason;
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
	fprintf(stderr, "limit: %s: ", level == RM_LOG_ERROR ? "error" : "note");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- loading ------------------------------------------------------------- */

static int add_row(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	if (bio_map_put(arg, key, klen, val, vlen) < 0) {
		fprintf(stderr, "limit: out of memory loading a table\n");
		return -1;
	}
	return 0;
}

static int load_table(rm_ctx *c, const char *arg)
{
	const char *name, *file;
	size_t n;

	if (bio_table_arg(arg, &name, &n, &file) < 0)
		return -1;
	if (c->ntables == LIMIT_TABLES_MAX) {
		fprintf(stderr, "limit: at most %d tables\n", LIMIT_TABLES_MAX);
		return -1;
	}
	struct table *t = &c->tables[c->ntables++];

	memcpy(t->name, name, n);
	t->name[n] = '\0';
	return bio_table_each(file, add_row, &t->rows);
}

/* ---- the run ------------------------------------------------------------- */

/* The state of an event's key, and the rows of tables keyed by it (the
 * ledger's accounts), are random accesses over the whole key space: ask for
 * them a few events before they are needed, as a worker that sees a batch of
 * events ahead could. A table keyed by something else merely gets a useless
 * prefetch. */
static void prefetch_key(const rm_ctx *c, const struct rm_event *ev)
{
	uint64_t h = bio_hash(ev->key, ev->key_len);

	bio_map_prefetch(&c->state, h);
	for (unsigned t = 0; t < c->ntables; t++)
		bio_map_prefetch(&c->tables[t].rows, h);
}

static int run(rm_ctx *c, const char *events_path, const char *out_path, uint64_t *done)
{
	const struct rm_handler *h = &ledger_handler;
	struct bio_events ev;
	void *hs = NULL;
	int fd, rc = -1;

	if (h->init && h->init(c, &hs) != 0)
		return -1;
	if (bio_events_load(events_path, &ev) < 0)
		goto out_handler;
	for (size_t i = 0; i < ev.n; i++) {
		if (c->prefetch && i + LIMIT_PREFETCH_AHEAD < ev.n)
			prefetch_key(c, &ev.ev[i + LIMIT_PREFETCH_AHEAD]);
		c->last = NULL;
		switch (h->process(c, hs, &ev.ev[i])) {
		case RM_OK:
			break;
		case RM_REJECT:
			c->dead++;
			break;
		default:
			fprintf(stderr, "limit: the handler failed on the event at seq %llu\n",
				(unsigned long long)ev.ev[i].seq);
			goto out;
		}
	}
	*done = ev.n;
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "limit: cannot open %s: %s\n", out_path, strerror(errno));
		goto out;
	}
	int w = bio_write_all(fd, c->out, c->out_len);

	if (close(fd) < 0 && w == 0)
		w = -errno;
	if (w < 0) {
		fprintf(stderr, "limit: writing %s: %s\n", out_path, strerror(-w));
		goto out;
	}
	rc = 0;
out:
	bio_events_free(&ev);
out_handler:
	if (h->fini)
		h->fini(c, hs);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: limit [-P] [-o OUTPUT] [-s STATE] NAME=FILE... EVENTS\n"
		   "runs the ledger handler over EVENTS in memory, one thread, no durability;\n"
		   "tables are TSV files (key<TAB>value), OUTPUT gets the output lines\n"
		   "(default /dev/null), STATE every key's final state, sorted;\n"
		   "-P: no prefetching of the keys of the events ahead.\n");
}

int main(int argc, char **argv)
{
	static rm_ctx c; /* big, and zeroed */
	const char *out_path = "/dev/null", *state_path = NULL;
	uint64_t done = 0;
	int opt, rc = 1;

	c.prefetch = true;
	while ((opt = getopt(argc, argv, "hPo:s:")) != -1) {
		switch (opt) {
		case 'P':
			c.prefetch = false;
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
	if (argc - optind < 2) {
		usage(stderr);
		return 2;
	}
	for (int i = optind; i < argc - 1; i++)
		if (load_table(&c, argv[i]) < 0)
			goto out;

	double t0 = bio_now(), cpu0 = bio_cpu();

	if (run(&c, argv[argc - 1], out_path, &done) < 0)
		goto out;
	double secs = bio_now() - t0, cpu = bio_cpu() - cpu0;

	if (state_path && bio_map_dump(&c.state, state_path) < 0)
		goto out;
	bio_report(c.prefetch ? "limit" : "limit_noprefetch", done, secs, cpu, 0, true);
	rc = 0;
out:
	for (unsigned i = 0; i < c.ntables; i++)
		bio_map_free(&c.tables[i].rows);
	bio_map_free(&c.state);
	free(c.out);
	return rc;
}
