/* naive.c - the design ringmaster replaces, for `make bench-seed` (issue 6):
 * one process, a pool of threads pulling events from a shared queue, and
 * every lookup a round trip to Redis on loopback.
 *
 * It is meant as the honest baseline, not a straw man. Each thread has its
 * own connection. The queue keeps per-key order without serialising
 * unrelated keys: a thread that pulls an event whose key is already being
 * worked on parks it behind that key, and the thread that owns the key runs
 * it next, so events of one key run one at a time, in file order, and the
 * final balances are exactly the ledger's.
 *
 * The business logic is not a copy: this file implements the handler API of
 * common/ringmaster.h on top of hiredis and runs the very ledger handler that
 * ringmaster runs (worker/handlers/ledger.c). Each rm_table_get and
 * rm_state_get is one GET, each rm_state_put one SET, so the ledger costs
 * GET rule, GET account, GET state, SET state per event. With -c the
 * reference tables are read into process memory first (a warm cache of every
 * row), leaving only the state in Redis.
 *
 * Redis keys: a row of table NAME is "t:NAME:ROW", a key's state "s:KEY".
 *
 *   naive load -p PORT NAME=FILE...   flush Redis, then load reference tables
 *   naive run  -p PORT [-t THREADS] [-c] [-d SECONDS] [-o OUTPUT] EVENTS
 *   naive dump -p PORT                every state as `ringctl dump-state` does
 *
 * `run` prints one line, `naive: threads=.. events=.. seconds=..
 * events_per_second=.. ...`; with -d it stops pulling new events after that
 * many seconds and reports the rate so far (complete=no). Exit codes: 0 done,
 * 1 failure (message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "handlers/ledger.h"
#include "ringmaster.h"

#define NAIVE_THREADS_MAX 10000
#define NAIVE_KEY_MAX 255
#define NAIVE_LINE_MAX 65536 /* ringmaster's default max_event_size */
#define NAIVE_TABLE_NAME_MAX 63
#define NAIVE_HELD_MAX 16	     /* replies one event may still be reading */
#define NAIVE_OUT_FLUSH (256 * 1024) /* a thread's output buffer */
#define NAIVE_STACK (256 * 1024)     /* 500 threads need not have 8M each */
#define NAIVE_LOAD_WINDOW 1000	     /* pipelined SETs before reading replies */
#define NAIVE_SCAN_COUNT "1000"
#define NAIVE_CONNECT_TIMEOUT_S 5
#define NAIVE_REPLY_TIMEOUT_S 30

/* ---- a string -> index map ------------------------------------------------
 * Open addressing, insert only. Entries are numbered in insertion order;
 * callers keep whatever goes with an entry in their own arrays, by number. */

struct smap {
	char **keys;
	size_t *lens;
	size_t n, cap;	 /* entries */
	uint32_t *slots; /* entry number + 1; 0 = empty */
	size_t nslots;	 /* a power of two, more than twice n */
};

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t smap_slot(const struct smap *m, const char *k, size_t n)
{
	size_t mask = m->nslots - 1, i = (size_t)hash_bytes(k, n) & mask;

	for (;; i = (i + 1) & mask) {
		uint32_t e = m->slots[i];

		if (e == 0)
			return i;
		if (m->lens[e - 1] == n && memcmp(m->keys[e - 1], k, n) == 0)
			return i;
	}
}

/* The entry number of key, or -1. */
static long smap_find(const struct smap *m, const char *k, size_t n)
{
	if (m->nslots == 0)
		return -1;
	uint32_t e = m->slots[smap_slot(m, k, n)];

	return e ? (long)e - 1 : -1;
}

static int smap_rehash(struct smap *m, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -1;
	free(m->slots);
	m->slots = slots;
	m->nslots = nslots;
	for (size_t e = 0; e < m->n; e++)
		m->slots[smap_slot(m, m->keys[e], m->lens[e])] = (uint32_t)e + 1;
	return 0;
}

/* The entry number of key, adding it (a copy) if it is new; *added says
 * which. -1 when out of memory. */
static long smap_add(struct smap *m, const char *k, size_t n, bool *added)
{
	long found = smap_find(m, k, n);

	*added = false;
	if (found >= 0)
		return found;
	if (m->n >= UINT32_MAX - 1)
		return -1;
	if (2 * (m->n + 1) >= m->nslots && smap_rehash(m, m->nslots ? 2 * m->nslots : 1024) < 0)
		return -1;
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 1024;
		char **keys = realloc(m->keys, cap * sizeof(*keys));

		if (!keys)
			return -1;
		m->keys = keys;
		size_t *lens = realloc(m->lens, cap * sizeof(*lens));

		if (!lens)
			return -1;
		m->lens = lens;
		m->cap = cap;
	}
	char *copy = malloc(n + 1);

	if (!copy)
		return -1;
	memcpy(copy, k, n);
	copy[n] = '\0';
	m->keys[m->n] = copy;
	m->lens[m->n] = n;
	m->slots[smap_slot(m, k, n)] = (uint32_t)m->n + 1;
	*added = true;
	return (long)m->n++;
}

static void smap_free(struct smap *m)
{
	for (size_t e = 0; e < m->n; e++)
		free(m->keys[e]);
	free(m->keys);
	free(m->lens);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* ---- Redis helpers -------------------------------------------------------- */

struct endpoint {
	const char *host;
	int port;
};

static redisContext *connect_redis(const struct endpoint *ep)
{
	struct timeval connect_timeout = {NAIVE_CONNECT_TIMEOUT_S, 0};
	struct timeval reply_timeout = {NAIVE_REPLY_TIMEOUT_S, 0};
	redisContext *r = redisConnectWithTimeout(ep->host, ep->port, connect_timeout);

	if (!r) {
		fprintf(stderr, "naive: out of memory connecting to Redis\n");
		return NULL;
	}
	if (r->err) {
		fprintf(stderr, "naive: cannot connect to Redis at %s:%d: %s\n", ep->host, ep->port,
			r->errstr);
		redisFree(r);
		return NULL;
	}
	if (redisSetTimeout(r, reply_timeout) != REDIS_OK) {
		fprintf(stderr, "naive: cannot set a reply timeout on the Redis connection: %s\n",
			r->errstr);
		redisFree(r);
		return NULL;
	}
	return r;
}

/* Check a reply: NULL (the connection failed) and error replies are
 * reported with `what` and give -1; so does a type other than `type`. */
static int reply_check(redisContext *r, redisReply *rep, int type, const char *what)
{
	if (!rep) {
		fprintf(stderr, "naive: %s: Redis connection failed: %s\n", what, r->errstr);
		return -1;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "naive: %s: Redis says: %s\n", what, rep->str);
		return -1;
	}
	if (rep->type != type) {
		fprintf(stderr, "naive: %s: unexpected Redis reply type %d\n", what, rep->type);
		return -1;
	}
	return 0;
}

/* Call fn for every key that starts with `prefix` (which holds no glob
 * characters) and its value, SCAN + MGET a thousand at a time. SCAN may
 * return a key twice; callers cope. fn returns 0 or -1 to stop. */
typedef int (*scan_fn)(void *arg, const char *key, size_t klen, const char *val, size_t vlen);

static int scan_mget(redisContext *r, redisReply *keys, scan_fn fn, void *arg)
{
	size_t n = keys->elements;
	const char **argv = malloc((n + 1) * sizeof(*argv));
	size_t *lens = malloc((n + 1) * sizeof(*lens));
	redisReply *vals = NULL;
	int rc = -1;

	if (!argv || !lens) {
		fprintf(stderr, "naive: out of memory reading Redis\n");
		goto out;
	}
	argv[0] = "MGET";
	lens[0] = 4;
	for (size_t i = 0; i < n; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING) {
			fprintf(stderr, "naive: SCAN returned a key that is not a string\n");
			goto out;
		}
		argv[i + 1] = keys->element[i]->str;
		lens[i + 1] = keys->element[i]->len;
	}
	vals = redisCommandArgv(r, (int)n + 1, argv, lens);
	if (reply_check(r, vals, REDIS_REPLY_ARRAY, "MGET") < 0)
		goto out;
	if (vals->elements != n) {
		fprintf(stderr, "naive: MGET of %zu keys returned %zu values\n", n, vals->elements);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		redisReply *v = vals->element[i];

		if (v->type == REDIS_REPLY_NIL)
			continue; /* deleted since the SCAN */
		if (v->type != REDIS_REPLY_STRING) {
			fprintf(stderr, "naive: key '%s' does not hold a string\n", argv[i + 1]);
			goto out;
		}
		if (fn(arg, argv[i + 1], lens[i + 1], v->str, v->len) < 0)
			goto out;
	}
	rc = 0;
out:
	if (vals)
		freeReplyObject(vals);
	free(argv);
	free(lens);
	return rc;
}

/* One SCAN from *cursor (a string of `size` bytes), which it advances. */
static int scan_step(redisContext *r, const char *prefix, char *cursor, size_t size, scan_fn fn,
		     void *arg)
{
	redisReply *rep =
	    redisCommand(r, "SCAN %s MATCH %s* COUNT " NAIVE_SCAN_COUNT, cursor, prefix);
	int rc = -1;

	if (reply_check(r, rep, REDIS_REPLY_ARRAY, "SCAN") < 0)
		goto out;
	if (rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[0]->len >= size || rep->element[1]->type != REDIS_REPLY_ARRAY) {
		fprintf(stderr, "naive: SCAN returned something unexpected\n");
		goto out;
	}
	memcpy(cursor, rep->element[0]->str, rep->element[0]->len + 1);
	if (rep->element[1]->elements && scan_mget(r, rep->element[1], fn, arg) < 0)
		goto out;
	rc = 0;
out:
	if (rep)
		freeReplyObject(rep);
	return rc;
}

static int scan_prefix(redisContext *r, const char *prefix, scan_fn fn, void *arg)
{
	char cursor[32] = "0";

	do {
		if (scan_step(r, prefix, cursor, sizeof(cursor), fn, arg) < 0)
			return -1;
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

/* ---- the handler API over Redis ------------------------------------------- */

struct cache {
	struct smap rows;      /* "t:NAME:ROW" */
	struct rm_value *vals; /* by entry number */
	size_t cap;
};

struct event {
	struct event *next; /* the next event parked behind the same key */
	uint32_t key_id;
	struct rm_event ev; /* key and payload point into text */
	char text[];
};

struct keystate {
	bool busy;		   /* a thread is running an event of this key */
	struct event *head, *tail; /* events parked until that thread is done */
};

/* The shared queue: the file, read a line at a time under the lock. */
struct queue {
	pthread_mutex_t lock;
	FILE *in;
	const char *path;
	char *line;
	size_t line_cap;
	uint64_t offset; /* of the next line: the seq, as ringmaster counts */
	bool eof;
	bool stop; /* deadline passed, or a thread failed */
	bool failed;
	uint64_t deadline_ns; /* 0 = none */
	uint64_t lines, source_dead;
	struct smap keys;
	struct keystate *ks; /* by key number */
	size_t ks_cap;
};

struct run {
	struct endpoint ep;
	unsigned threads;
	const struct rm_handler *handler;
	bool cached; /* tables from `cache`, not from Redis */
	struct cache cache;
	int out_fd;
	struct queue q;
};

/* One per thread: the handler's view of the world. */
struct rm_ctx {
	struct run *run;
	unsigned index;
	redisContext *redis;
	void *handler_state;
	bool handler_ready;
	redisReply *held[NAIVE_HELD_MAX];
	unsigned n_held;
	char *out;
	size_t out_len;
	char reject[64];
	uint64_t done, accepted, rejected, dead;
	bool failed;
	pthread_t thread;
	bool started;
};

static void release_held(rm_ctx *c)
{
	for (unsigned i = 0; i < c->n_held; i++)
		freeReplyObject(c->held[i]);
	c->n_held = 0;
}

/* The reply to a GET, as a value: the reply is held until the event is
 * done, as the handler API promises. Returns RM_FOUND, RM_NOTFOUND or a
 * negative errno. */
static int get_reply(rm_ctx *c, redisReply *rep, struct rm_value *val)
{
	if (rep && c->n_held == NAIVE_HELD_MAX) {
		rm_log(c, RM_LOG_ERROR, "more than %d lookups in one event", NAIVE_HELD_MAX);
		freeReplyObject(rep);
		return -ENOMEM;
	}
	if (!rep) {
		rm_log(c, RM_LOG_ERROR, "Redis connection failed: %s", c->redis->errstr);
		return -EIO;
	}
	if (rep->type == REDIS_REPLY_NIL) {
		freeReplyObject(rep);
		return RM_NOTFOUND;
	}
	if (rep->type != REDIS_REPLY_STRING) {
		rm_log(c, RM_LOG_ERROR, "GET: unexpected Redis reply (type %d%s%s)", rep->type,
		       rep->type == REDIS_REPLY_ERROR ? ": " : "",
		       rep->type == REDIS_REPLY_ERROR ? rep->str : "");
		freeReplyObject(rep);
		return -EIO;
	}
	c->held[c->n_held++] = rep;
	val->data = rep->str;
	val->len = rep->len;
	return RM_FOUND;
}

int rm_table_get(rm_ctx *c, const char *table, const char *key, size_t key_len,
		 struct rm_value *val)
{
	size_t tlen = strlen(table);

	if (!c->run->cached)
		return get_reply(c, redisCommand(c->redis, "GET t:%s:%b", table, key, key_len),
				 val);

	char name[2 + NAIVE_TABLE_NAME_MAX + 1 + NAIVE_KEY_MAX];

	if (tlen > NAIVE_TABLE_NAME_MAX || key_len > NAIVE_KEY_MAX)
		return RM_NOTFOUND;
	memcpy(name, "t:", 2);
	memcpy(name + 2, table, tlen);
	name[2 + tlen] = ':';
	memcpy(name + 3 + tlen, key, key_len);

	long e = smap_find(&c->run->cache.rows, name, 3 + tlen + key_len);

	if (e < 0)
		return RM_NOTFOUND;
	*val = c->run->cache.vals[e];
	return RM_FOUND;
}

int rm_state_get(rm_ctx *c, const char *key, size_t key_len, struct rm_value *val)
{
	return get_reply(c, redisCommand(c->redis, "GET s:%b", key, key_len), val);
}

/* A command whose reply is a status or an integer. */
static int ctx_write(rm_ctx *c, redisReply *rep, const char *what)
{
	int rc = 0;

	if (!rep) {
		rm_log(c, RM_LOG_ERROR, "%s: Redis connection failed: %s", what, c->redis->errstr);
		return -EIO;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		rm_log(c, RM_LOG_ERROR, "%s: Redis says: %s", what, rep->str);
		rc = -EIO;
	}
	freeReplyObject(rep);
	return rc;
}

int rm_state_put(rm_ctx *c, const char *key, size_t key_len, const void *val, size_t val_len)
{
	if (key_len == 0 || key_len > NAIVE_KEY_MAX)
		return -EINVAL;
	return ctx_write(c, redisCommand(c->redis, "SET s:%b %b", key, key_len, val, val_len),
			 "SET");
}

int rm_state_del(rm_ctx *c, const char *key, size_t key_len)
{
	if (key_len == 0 || key_len > NAIVE_KEY_MAX)
		return -EINVAL;
	return ctx_write(c, redisCommand(c->redis, "DEL s:%b", key, key_len), "DEL");
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Each thread appends whole buffers to the one output file (O_APPEND), so
 * lines never tear; their order across threads is the order of the flushes. */
static int flush_out(rm_ctx *c)
{
	int rc = write_all(c->run->out_fd, c->out, c->out_len);

	if (rc < 0)
		rm_log(c, RM_LOG_ERROR, "writing the output: %s", strerror(-rc));
	c->out_len = 0;
	return rc;
}

static int out_append(rm_ctx *c, const char *s, size_t n)
{
	if (n + 1 > NAIVE_OUT_FLUSH)
		return -EINVAL;
	if (c->out_len + n + 1 > NAIVE_OUT_FLUSH) {
		int rc = flush_out(c);

		if (rc < 0)
			return rc;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	return 0;
}

int rm_emit(rm_ctx *c, const char *line, size_t len)
{
	return out_append(c, line, len);
}

void rm_reject(rm_ctx *c, const char *reason)
{
	snprintf(c->reject, sizeof(c->reject), "%s", reason);
}

void rm_count(rm_ctx *c, const char *outcome)
{
	if (strcmp(outcome, "accepted") == 0)
		c->accepted++;
	else
		c->rejected++;
}

const char *rm_param(rm_ctx *c, const char *name)
{
	(void)c;
	(void)name;
	return NULL;
}

unsigned rm_partition(rm_ctx *c)
{
	return c->index;
}

unsigned rm_partitions(rm_ctx *c)
{
	return c->run->threads;
}

void rm_log(rm_ctx *c, int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "naive: thread %u: %s: %s\n", c->index,
		level >= 0 && level <= RM_LOG_DEBUG ? names[level] : "?", msg);
}

/* ---- the queue ------------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Read the next line as an event (called with the lock held). Returns NULL
 * at the end of the file, on an error (q->failed), or for a line that is not
 * an event, which is counted as ringmaster's file source would dead-letter it. */
static struct event *read_event(struct queue *q)
{
	errno = 0;
	ssize_t got = getline(&q->line, &q->line_cap, q->in);

	if (got < 0) {
		if (ferror(q->in)) {
			fprintf(stderr, "naive: reading %s: %s\n", q->path, strerror(errno));
			q->failed = q->stop = true;
		}
		q->eof = true;
		return NULL;
	}
	uint64_t seq = q->offset;
	size_t len = (size_t)got;

	q->offset += len;
	q->lines++;
	if (len && q->line[len - 1] == '\n')
		len--;
	if (len && q->line[len - 1] == '\r')
		len--;

	const char *tab = memchr(q->line, '\t', len);
	size_t klen = tab ? (size_t)(tab - q->line) : 0;

	if (len > NAIVE_LINE_MAX || !tab || klen == 0 || klen > NAIVE_KEY_MAX) {
		q->source_dead++;
		return NULL;
	}

	bool added;
	long id = smap_add(&q->keys, q->line, klen, &added);
	struct event *e = malloc(sizeof(*e) + len);

	if (id < 0 || !e) {
		fprintf(stderr, "naive: out of memory reading events\n");
		free(e);
		q->failed = q->stop = true;
		return NULL;
	}
	if ((size_t)id >= q->ks_cap) {
		size_t cap = q->keys.cap;
		struct keystate *ks = realloc(q->ks, cap * sizeof(*ks));

		if (!ks) {
			fprintf(stderr, "naive: out of memory reading events\n");
			free(e);
			q->failed = q->stop = true;
			return NULL;
		}
		memset(ks + q->ks_cap, 0, (cap - q->ks_cap) * sizeof(*ks));
		q->ks = ks;
		q->ks_cap = cap;
	}
	memcpy(e->text, q->line, len);
	e->next = NULL;
	e->key_id = (uint32_t)id;
	e->ev.seq = seq;
	e->ev.key = e->text;
	e->ev.key_len = klen;
	e->ev.payload = e->text + klen + 1;
	e->ev.payload_len = len - klen - 1;
	return e;
}

/* Hand `done` back (NULL the first time) and take the next event: first
 * one parked behind the key just finished, else a new one from the file.
 * NULL when there is nothing more to do. */
static struct event *next_event(struct queue *q, struct event *done)
{
	struct event *e = NULL;

	pthread_mutex_lock(&q->lock);
	if (done) {
		struct keystate *k = &q->ks[done->key_id];

		if (k->head && !q->stop) {
			e = k->head;
			k->head = e->next;
			if (!k->head)
				k->tail = NULL;
		} else {
			k->busy = false;
		}
	}
	while (!e && !q->stop && !q->eof) {
		if (q->deadline_ns && now_ns() >= q->deadline_ns) {
			q->stop = true;
			break;
		}
		struct event *n = read_event(q);

		if (!n)
			continue;
		struct keystate *k = &q->ks[n->key_id];

		if (!k->busy) {
			k->busy = true;
			e = n;
		} else if (k->tail) {
			k->tail->next = n;
			k->tail = n;
		} else {
			k->head = k->tail = n;
		}
	}
	pthread_mutex_unlock(&q->lock);
	free(done);
	return e;
}

static void queue_fail(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->failed = q->stop = true;
	pthread_mutex_unlock(&q->lock);
}

static void queue_free(struct queue *q)
{
	for (size_t i = 0; i < q->keys.n; i++) {
		struct event *e = q->ks[i].head;

		while (e) {
			struct event *next = e->next;

			free(e);
			e = next;
		}
	}
	free(q->ks);
	smap_free(&q->keys);
	free(q->line);
	if (q->in)
		fclose(q->in);
}

/* ---- the threads ---------------------------------------------------------- */

static int run_event(rm_ctx *c, const struct event *e)
{
	char line[128];
	int n, rc = c->run->handler->process(c, c->handler_state, &e->ev);

	release_held(c);
	switch (rc) {
	case RM_OK:
		break;
	case RM_REJECT:
		/* A bad event: one line where ringmaster writes a dead letter. */
		n = snprintf(line, sizeof(line), "%llu\tdead_letter\t%s",
			     (unsigned long long)e->ev.seq, c->reject[0] ? c->reject : "rejected");
		if (n < 0 || (size_t)n >= sizeof(line))
			n = (int)sizeof(line) - 1;
		c->reject[0] = '\0';
		c->dead++;
		if (out_append(c, line, (size_t)n) < 0)
			return -1;
		break;
	default:
		rm_log(c, RM_LOG_ERROR, "the handler failed on the event at seq %llu",
		       (unsigned long long)e->ev.seq);
		return -1;
	}
	c->done++;
	return 0;
}

static void *thread_main(void *arg)
{
	rm_ctx *c = arg;
	struct queue *q = &c->run->q;
	struct event *e = next_event(q, NULL);

	while (e) {
		if (run_event(c, e) < 0) {
			c->failed = true;
			queue_fail(q);
			free(e);
			break;
		}
		e = next_event(q, e);
	}
	if (c->out_len && flush_out(c) < 0 && !c->failed) {
		c->failed = true;
		queue_fail(q);
	}
	return NULL;
}

/* ---- subcommands ---------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: naive load -p PORT [-H HOST] NAME=FILE...\n"
		   "       naive run  -p PORT [-H HOST] [-t THREADS] [-c] [-d SECONDS] "
		   "[-o OUTPUT] EVENTS\n"
		   "       naive dump -p PORT [-H HOST]\n"
		   "load flushes Redis and loads reference tables (TSV, key<TAB>value);\n"
		   "run applies the ledger to EVENTS with THREADS threads (-c: tables cached\n"
		   "in memory, -d: stop after SECONDS); dump prints every state, sorted.\n");
}

static int parse_uint(const char *what, const char *s, unsigned long lo, unsigned long hi,
		      unsigned long *v)
{
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		goto bad;
	*v = strtoul(s, &end, 10);
	if (errno || *end || *v < lo || *v > hi)
		goto bad;
	return 0;
bad:
	fprintf(stderr, "naive: %s must be an integer in %lu..%lu, got '%s'\n", what, lo, hi, s);
	return -1;
}

static bool table_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > NAIVE_TABLE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!(ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z')))
			return false;
	}
	return true;
}

/* Read the replies of `n` pipelined SETs. */
static int load_replies(redisContext *r, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		void *rep = NULL;

		if (redisGetReply(r, &rep) != REDIS_OK) {
			fprintf(stderr, "naive: loading %s: Redis connection failed: %s\n", path,
				r->errstr);
			return -1;
		}
		int rc = reply_check(r, rep, REDIS_REPLY_STATUS, path);

		freeReplyObject(rep);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* One table file, rows as ringmaster reads them: the key up to the first
 * tab, the rest is the value; empty lines and '#' lines are skipped, and a
 * trailing CR is dropped. */
static int load_table(redisContext *r, const char *name, size_t name_len, const char *path,
		      size_t *rows)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, pending = 0, lineno = 0;
	ssize_t got;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "naive: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((got = getline(&line, &cap, f)) >= 0) {
		size_t len = (size_t)got;

		lineno++;
		if (len && line[len - 1] == '\n')
			len--;
		if (len && line[len - 1] == '\r')
			len--;
		if (len == 0 || line[0] == '#')
			continue;
		char *tab = memchr(line, '\t', len);
		size_t klen = tab ? (size_t)(tab - line) : len;
		const char *val = tab ? tab + 1 : line + len;

		if (klen == 0 || klen > NAIVE_KEY_MAX) {
			fprintf(stderr, "naive: %s:%zu: a key is 1..%d bytes\n", path, lineno,
				NAIVE_KEY_MAX);
			goto out;
		}
		if (redisAppendCommand(r, "SET t:%b:%b %b", name, name_len, line, klen, val,
				       (size_t)(line + len - val)) != REDIS_OK) {
			fprintf(stderr, "naive: loading %s: %s\n", path, r->errstr);
			goto out;
		}
		(*rows)++;
		if (++pending == NAIVE_LOAD_WINDOW) {
			if (load_replies(r, pending, path) < 0)
				goto out;
			pending = 0;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "naive: reading %s: %s\n", path, strerror(errno));
		goto out;
	}
	rc = load_replies(r, pending, path);
out:
	free(line);
	fclose(f);
	return rc;
}

static int cmd_load(const struct endpoint *ep, int argc, char **argv)
{
	redisContext *r;
	redisReply *rep;
	size_t rows = 0;
	int rc = 1;

	if (argc == 0) {
		usage(stderr);
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (!eq || !table_name_ok(argv[i], (size_t)(eq - argv[i])) || !eq[1]) {
			fprintf(stderr,
				"naive: '%s' is not NAME=FILE (NAME: 1..%d of "
				"A-Z a-z 0-9 _)\n",
				argv[i], NAIVE_TABLE_NAME_MAX);
			return 2;
		}
	}
	r = connect_redis(ep);
	if (!r)
		return 1;
	rep = redisCommand(r, "FLUSHALL");
	if (reply_check(r, rep, REDIS_REPLY_STATUS, "FLUSHALL") < 0)
		goto out;
	for (int i = 0; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (load_table(r, argv[i], (size_t)(eq - argv[i]), eq + 1, &rows) < 0)
			goto out;
	}
	printf("naive: loaded %zu rows from %d tables\n", rows, argc);
	rc = 0;
out:
	if (rep)
		freeReplyObject(rep);
	redisFree(r);
	return rc;
}

static int cache_row(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct cache *c = arg;
	bool added;
	long e = smap_add(&c->rows, key, klen, &added);

	if (e < 0)
		goto oom;
	if (!added)
		return 0; /* SCAN repeats itself sometimes */
	if ((size_t)e >= c->cap) {
		struct rm_value *v = realloc(c->vals, c->rows.cap * sizeof(*v));

		if (!v)
			goto oom;
		c->vals = v;
		c->cap = c->rows.cap;
	}
	char *copy = malloc(vlen ? vlen : 1);

	if (!copy)
		goto oom;
	memcpy(copy, val, vlen);
	c->vals[e].data = copy;
	c->vals[e].len = vlen;
	return 0;
oom:
	fprintf(stderr, "naive: out of memory caching the tables\n");
	return -1;
}

static void cache_free(struct cache *c)
{
	for (size_t e = 0; e < c->rows.n; e++)
		free((void *)c->vals[e].data);
	free(c->vals);
	smap_free(&c->rows);
}

static int cache_load(const struct endpoint *ep, struct cache *c)
{
	redisContext *r = connect_redis(ep);
	int rc;

	if (!r)
		return -1;
	rc = scan_prefix(r, "t:", cache_row, c);
	redisFree(r);
	return rc;
}

/* 500 threads with a connection each, plus files: lift the soft limit on
 * descriptors as far as the hard one allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			fprintf(stderr, "naive: cannot raise the descriptor limit: %s\n",
				strerror(errno));
	}
}

static int start_threads(struct run *run, rm_ctx *ctx)
{
	pthread_attr_t attr;
	int rc = pthread_attr_init(&attr);

	if (rc == 0)
		rc = pthread_attr_setstacksize(&attr, NAIVE_STACK);
	if (rc != 0) {
		fprintf(stderr, "naive: thread attributes: %s\n", strerror(rc));
		return -1;
	}
	for (unsigned i = 0; i < run->threads; i++) {
		rc = pthread_create(&ctx[i].thread, &attr, thread_main, &ctx[i]);
		if (rc != 0) {
			fprintf(stderr, "naive: cannot start thread %u of %u: %s\n", i + 1,
				run->threads, strerror(rc));
			queue_fail(&run->q);
			break;
		}
		ctx[i].started = true;
	}
	pthread_attr_destroy(&attr);
	return rc == 0 ? 0 : -1;
}

/* Connect every thread's Redis and set up its handler, before the clock. */
static int prepare_ctx(struct run *run, rm_ctx *ctx)
{
	for (unsigned i = 0; i < run->threads; i++) {
		rm_ctx *c = &ctx[i];

		c->run = run;
		c->index = i;
		c->out = malloc(NAIVE_OUT_FLUSH);
		if (!c->out) {
			fprintf(stderr, "naive: out of memory for thread %u\n", i);
			return -1;
		}
		c->redis = connect_redis(&run->ep);
		if (!c->redis)
			return -1;
		if (run->handler->init && run->handler->init(c, &c->handler_state) != 0) {
			fprintf(stderr, "naive: the %s handler did not start\n",
				run->handler->name);
			return -1;
		}
		c->handler_ready = true;
	}
	return 0;
}

static void report(const struct run *run, const rm_ctx *ctx, double secs)
{
	uint64_t done = 0, accepted = 0, rejected = 0, dead = 0;

	for (unsigned i = 0; i < run->threads; i++) {
		done += ctx[i].done;
		accepted += ctx[i].accepted;
		rejected += ctx[i].rejected;
		dead += ctx[i].dead;
	}
	printf("naive: threads=%u cached=%s events=%llu seconds=%.3f events_per_second=%.0f "
	       "accepted=%llu rejected=%llu dead_lettered=%llu complete=%s\n",
	       run->threads, run->cached ? "yes" : "no", (unsigned long long)done, secs,
	       secs > 0 ? (double)done / secs : 0.0, (unsigned long long)accepted,
	       (unsigned long long)rejected, (unsigned long long)(dead + run->q.source_dead),
	       run->q.eof && !run->q.failed && done + run->q.source_dead == run->q.lines ? "yes"
											 : "no");
}

static int cmd_run(struct run *run, const char *events_path, const char *out_path)
{
	rm_ctx *ctx = calloc(run->threads, sizeof(*ctx));
	bool failed = false;
	int rc = 1;

	run->out_fd = -1;
	run->q.path = events_path;
	if (!ctx) {
		fprintf(stderr, "naive: out of memory for %u threads\n", run->threads);
		return 1;
	}
	raise_fd_limit();
	run->q.in = fopen(events_path, "r");
	if (!run->q.in) {
		fprintf(stderr, "naive: cannot open %s: %s\n", events_path, strerror(errno));
		goto out;
	}
	run->out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (run->out_fd < 0) {
		fprintf(stderr, "naive: cannot open %s: %s\n", out_path, strerror(errno));
		goto out;
	}
	if (run->cached && cache_load(&run->ep, &run->cache) < 0)
		goto out;
	if (prepare_ctx(run, ctx) < 0)
		goto out;

	uint64_t start = now_ns();

	if (run->q.deadline_ns)
		run->q.deadline_ns += start;
	if (start_threads(run, ctx) < 0)
		failed = true;
	for (unsigned i = 0; i < run->threads; i++) {
		if (!ctx[i].started)
			continue;
		int jrc = pthread_join(ctx[i].thread, NULL);

		if (jrc != 0) {
			fprintf(stderr, "naive: joining thread %u: %s\n", i, strerror(jrc));
			failed = true;
		}
		failed |= ctx[i].failed;
	}
	double secs = (double)(now_ns() - start) / 1e9;

	if (failed || run->q.failed)
		goto out;
	report(run, ctx, secs);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "naive: writing the report: %s\n", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	for (unsigned i = 0; i < run->threads; i++) {
		if (ctx[i].handler_ready && run->handler->fini)
			run->handler->fini(&ctx[i], ctx[i].handler_state);
		release_held(&ctx[i]);
		if (ctx[i].redis)
			redisFree(ctx[i].redis);
		free(ctx[i].out);
	}
	free(ctx);
	cache_free(&run->cache);
	queue_free(&run->q);
	if (run->out_fd >= 0 && close(run->out_fd) != 0 && rc == 0) {
		fprintf(stderr, "naive: closing %s: %s\n", out_path, strerror(errno));
		rc = 1;
	}
	return rc;
}

struct state_rows {
	char **lines; /* key, NUL, value, NUL */
	size_t n, cap;
};

static int collect_state(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
	struct state_rows *s = arg;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 4096;
		char **l = realloc(s->lines, cap * sizeof(*l));

		if (!l)
			goto oom;
		s->lines = l;
		s->cap = cap;
	}
	/* Drop "s:"; a key holds no NUL (it came from a text line). */
	char *line = malloc(klen - 2 + 1 + vlen + 1);

	if (!line)
		goto oom;
	memcpy(line, key + 2, klen - 2);
	line[klen - 2] = '\0';
	memcpy(line + klen - 1, val, vlen);
	line[klen - 1 + vlen] = '\0';
	s->lines[s->n++] = line;
	return 0;
oom:
	fprintf(stderr, "naive: out of memory reading the state\n");
	return -1;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_dump(const struct endpoint *ep)
{
	struct state_rows s = {0};
	redisContext *r = connect_redis(ep);
	int rc = 1;

	if (!r)
		return 1;
	if (scan_prefix(r, "s:", collect_state, &s) < 0)
		goto out;
	qsort(s.lines, s.n, sizeof(*s.lines), by_key);
	for (size_t i = 0; i < s.n; i++) {
		const char *k = s.lines[i];

		if (i > 0 && strcmp(k, s.lines[i - 1]) == 0)
			continue; /* SCAN gave it twice */
		printf("%s\t%s\n", k, k + strlen(k) + 1);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "naive: writing the state: %s\n", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < s.n; i++)
		free(s.lines[i]);
	free(s.lines);
	redisFree(r);
	return rc;
}

int main(int argc, char **argv)
{
	struct run run = {.ep = {"127.0.0.1", 0}, .threads = 1, .handler = &ledger_handler};
	const char *out_path = "/dev/null";
	bool cached = false;
	unsigned long v;
	int c;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];

	argc--;
	argv++;
	while ((c = getopt(argc, argv, "H:p:t:cd:o:")) != -1) {
		switch (c) {
		case 'H':
			run.ep.host = optarg;
			break;
		case 'p':
			if (parse_uint("-p", optarg, 1, 65535, &v) < 0)
				return 2;
			run.ep.port = (int)v;
			break;
		case 't':
			if (parse_uint("-t", optarg, 1, NAIVE_THREADS_MAX, &v) < 0)
				return 2;
			run.threads = (unsigned)v;
			break;
		case 'c':
			cached = true;
			break;
		case 'd':
			if (parse_uint("-d", optarg, 0, 86400, &v) < 0)
				return 2;
			run.q.deadline_ns = (uint64_t)v * 1000000000u;
			break;
		case 'o':
			out_path = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (run.ep.port == 0) {
		fprintf(stderr, "naive: -p PORT is required\n");
		return 2;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "load") == 0)
		return cmd_load(&run.ep, argc, argv);
	if (strcmp(cmd, "dump") == 0 && argc == 0)
		return cmd_dump(&run.ep);
	if (strcmp(cmd, "run") == 0 && argc == 1) {
		int rc = pthread_mutex_init(&run.q.lock, NULL);

		if (rc != 0) {
			fprintf(stderr, "naive: cannot make the queue lock: %s\n", strerror(rc));
			return 1;
		}
		run.cached = cached;
		rc = cmd_run(&run, argv[0], out_path);
		pthread_mutex_destroy(&run.q.lock);
		return rc;
	}
	usage(stderr);
	return 2;
}
