/* store.c - ringmaster's LMDB storage behind store.h: the config environment
 * (reference tables loaded from TSV files by the supervisor, read by every
 * worker) and the per-partition state shards (one writer each).
 *
 * Choices worth knowing before reading on:
 *
 * - u64 values in a "meta" database are 8 bytes, little-endian.
 * - A reload parses every TSV file into memory first, sorts each table by
 *   key (LMDB's default order) and only then opens the write transaction, so
 *   a bad file never touches the environment and the rows go in with
 *   MDB_APPEND. A duplicate key is an error (found for free after the sort).
 * - Table DBI handles are opened lazily by the first store_table_get that
 *   names them, inside the caller's read transaction; such a transaction is
 *   ended with mdb_txn_commit so the handle outlives it (an aborted or reset
 *   one would close it). Other read transactions are reset and kept for
 *   mdb_txn_renew, which makes a worker's per-batch transaction cheap.
 *   A handle stays valid across reloads in other processes: LMDB re-reads
 *   the table's record by name in each new transaction. A name that was not
 *   there is remembered only for the generation it was looked up in.
 * - A reader whose map is smaller than the writer's grown one gets
 *   MDB_MAP_RESIZED on begin; we adopt the new size and begin again.
 */
#include "store.h"

#include "cfg.h"
#include "durable.h"
#include "log.h"
#include "tsv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_MAX_DBS 256
#define STORE_MAX_TABLES (STORE_MAX_DBS - 8) /* room for meta and spares */
/* Every worker and ringctl holds a reader slot in the config environment. */
#define CONFIG_MAX_READERS (2 * CFG_PARTITIONS_MAX + 64)
#define SHARD_MAX_READERS 126
/* Doubling stops here; past it a full map is reported, not grown. */
#define STORE_MAP_MAX (1ull << 40)
#define TABLE_PREFIX "t."
#define LIVE_SETTINGS "live.settings"
#define LIVE_PARAMS "live.params"
#define LIVE_KAFKA "live.kafka"

enum env_kind { ENV_CONFIG, ENV_SHARD };

/* A table name's DBI in this process, or the generation in which it was
 * looked up and found absent. */
struct table_dbi {
	char *name;
	MDB_dbi dbi;
	int found;
	uint64_t generation;
};

struct store_txn {
	struct store_env *env;
	MDB_txn *txn;
	int active;
	int readonly;
	int opened_dbi; /* end with commit to keep the handle */
	uint64_t generation;
};

struct store_env {
	MDB_env *mdb;
	enum env_kind kind;
	int readonly;
	char path[PATH_MAX];
	MDB_dbi meta;
	MDB_dbi state; /* shards */
	struct table_dbi *tables;
	size_t n_tables, cap_tables;
	/* A process uses one transaction per environment at a time (LMDB allows
	 * one per thread), so it lives here and needs no allocation. */
	struct store_txn txn;
	MDB_txn *spare; /* a reset read transaction, for mdb_txn_renew */
};

/* ---- small helpers ---- */

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err, STORE_ERR_LEN, fmt, ap);
	va_end(ap);
}

/* LMDB's own codes are negative, system errors positive errno values; the
 * latter pass through as -errno since they already say what happened. */
static int map_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
		return STORE_MAP_FULL; /* not -ENOSPC: that is a full disk */
	case MDB_BAD_VALSIZE:
		return -EINVAL;
	}
	return rc > 0 ? -rc : -EIO;
}

static void u64_encode(uint64_t v, unsigned char out[8])
{
	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t u64_decode(const unsigned char in[8])
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | in[i];
	return v;
}

/* mdb codes, not errnos: callers need MDB_NOTFOUND and MDB_MAP_FULL. */
static int get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *v)
{
	MDB_val k = {strlen(name), (void *)name}, d;
	int rc = mdb_get(txn, dbi, &k, &d);

	if (rc)
		return rc;
	if (d.mv_size != 8)
		return MDB_CORRUPTED;
	*v = u64_decode(d.mv_data);
	return 0;
}

static int put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t v)
{
	unsigned char buf[8];
	MDB_val k = {strlen(name), (void *)name}, d = {sizeof(buf), buf};

	u64_encode(v, buf);
	return mdb_put(txn, dbi, &k, &d, 0);
}

/* The environment's directory, made (0700) and durable: every directory
 * created on the way is fsynced into its parent. */
static int make_env_dir(const char *path, char *err)
{
	char msg[DUR_ERR_LEN];
	int rc = dur_mkdir_p(path, 0700, msg);
	if (rc)
		set_err(err, "%s", msg);
	return rc;
}

/* ---- environments and transactions ---- */

static int env_new(enum env_kind kind, int readonly, struct store_env **out, char *err,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int env_new(enum env_kind kind, int readonly, struct store_env **out, char *err,
		   const char *fmt, ...)
{
	struct store_env *e = calloc(1, sizeof(*e));
	va_list ap;
	int n;

	if (!e) {
		set_err(err, "out of memory");
		return -ENOMEM;
	}
	va_start(ap, fmt);
	n = vsnprintf(e->path, sizeof(e->path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(e->path)) {
		set_err(err, "%s: path too long", e->path);
		free(e);
		return -ENAMETOOLONG;
	}
	e->kind = kind;
	e->readonly = readonly;
	e->txn.env = e;
	*out = e;
	return 0;
}

/* Create and open the MDB_env at e->path, then clear reader slots left by
 * processes that were killed (they would pin old pages forever). */
static int env_open_mdb(struct store_env *e, uint64_t map_size, unsigned flags,
			unsigned max_readers, char *err)
{
	int rc, dead = 0;

	rc = mdb_env_create(&e->mdb);
	if (rc)
		goto out;
	rc = mdb_env_set_maxdbs(e->mdb, STORE_MAX_DBS);
	if (!rc)
		rc = mdb_env_set_maxreaders(e->mdb, max_readers);
	if (!rc && map_size)
		rc = mdb_env_set_mapsize(e->mdb, (size_t)map_size);
	if (rc)
		goto out;
	rc = mdb_env_open(e->mdb, e->path, flags | (e->readonly ? MDB_RDONLY : 0), 0600);
	if (rc)
		goto out;
	if (!e->readonly) {
		/* LMDB never fsyncs the directory it creates its files in. */
		char msg[DUR_ERR_LEN];
		int drc = dur_fsync_dir(e->path, msg);
		if (drc) {
			set_err(err, "%s", msg);
			return drc;
		}
	}
	rc = mdb_reader_check(e->mdb, &dead);
	if (rc)
		goto out;
	if (dead > 0)
		log_info("%s: cleared %d stale reader slots", e->path, dead);
out:
	if (rc)
		set_err(err, "%s: cannot open: %s", e->path, mdb_strerror(rc));
	return rc ? map_err(rc) : 0;
}

/* Begin a transaction, reusing the spare read transaction when there is one.
 * A writer in another process may have grown the map past ours: adopt its
 * size (legal now, no transaction is open) and try once more. */
static int begin_txn(struct store_env *e, unsigned flags, MDB_txn **txn)
{
	int rc;

	for (int tries = 0;; tries++) {
		if ((flags & MDB_RDONLY) && e->spare) {
			*txn = e->spare;
			e->spare = NULL;
			rc = mdb_txn_renew(*txn);
			if (rc)
				mdb_txn_abort(*txn);
		} else {
			rc = mdb_txn_begin(e->mdb, NULL, flags, txn);
		}
		if (rc != MDB_MAP_RESIZED || tries > 0)
			return rc;
		rc = mdb_env_set_mapsize(e->mdb, 0);
		if (rc)
			return rc;
	}
}

/* End a read transaction. One that opened a DBI must commit to keep the
 * handle; the others are reset and kept for the next begin. */
static void end_read(struct store_env *e, MDB_txn *txn, int opened_dbi)
{
	if (opened_dbi || e->spare) {
		/* A read-only commit cannot lose data; its result does not matter. */
		mdb_txn_commit(txn);
		return;
	}
	mdb_txn_reset(txn);
	e->spare = txn;
}

static void drop_spare(struct store_env *e)
{
	if (e->spare) {
		mdb_txn_abort(e->spare);
		e->spare = NULL;
	}
}

static int txn_start(struct store_env *e, int readonly, struct store_txn **out)
{
	struct store_txn *t = &e->txn;
	int rc;

	if (t->active)
		return -EBUSY;
	if (!readonly && e->readonly)
		return -EROFS;
	rc = begin_txn(e, readonly ? MDB_RDONLY : 0, &t->txn);
	if (rc)
		return map_err(rc);
	t->active = 1;
	t->readonly = readonly;
	t->opened_dbi = 0;
	t->generation = 0;
	*out = t;
	return 0;
}

void store_txn_abort(struct store_txn *t)
{
	if (!t || !t->active)
		return;
	if (t->readonly)
		end_read(t->env, t->txn, t->opened_dbi);
	else
		mdb_txn_abort(t->txn);
	t->active = 0;
	t->txn = NULL;
}

/* Open (creating unless readonly) the named databases in one transaction;
 * `check` then runs in it before the commit that makes the handles last. */
typedef int (*open_check_fn)(struct store_env *e, MDB_txn *txn, void *arg, char *err);

static int open_dbis(struct store_env *e, const char *const *names, MDB_dbi *const *dbis, size_t n,
		     open_check_fn check, void *arg, char *err)
{
	MDB_txn *txn = NULL;
	int rc;

	rc = begin_txn(e, e->readonly ? MDB_RDONLY : 0, &txn);
	if (rc) {
		set_err(err, "%s: cannot begin: %s", e->path, mdb_strerror(rc));
		return map_err(rc);
	}
	for (size_t i = 0; i < n; i++) {
		rc = mdb_dbi_open(txn, names[i], e->readonly ? 0 : MDB_CREATE, dbis[i]);
		if (rc) {
			set_err(err, "%s: database '%s': %s%s", e->path, names[i], mdb_strerror(rc),
				rc == MDB_NOTFOUND ? " (never written by its owner yet)" : "");
			rc = map_err(rc);
			goto out;
		}
	}
	if (check && (rc = check(e, txn, arg, err)) != 0)
		goto out;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc) {
		set_err(err, "%s: cannot commit: %s", e->path, mdb_strerror(rc));
		rc = map_err(rc);
	}
out:
	if (txn)
		mdb_txn_abort(txn);
	return rc;
}

/* A readonly open must not create anything, so say plainly what is missing. */
static int require_dir(const char *path, char *err)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int e = errno;
		set_err(err, "%s: %s", path,
			e == ENOENT ? "does not exist (nothing has written it yet)" : strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		set_err(err, "%s: not a directory", path);
		return -ENOTDIR;
	}
	return 0;
}

void store_close(struct store_env *e)
{
	if (!e)
		return;
	store_txn_abort(&e->txn);
	drop_spare(e);
	if (e->mdb)
		mdb_env_close(e->mdb);
	for (size_t i = 0; i < e->n_tables; i++)
		free(e->tables[i].name);
	free(e->tables);
	free(e);
}

/* Double the map. The caller's own failed transaction, if still open, is
 * ended first: a put that returned STORE_MAP_FULL leaves it open but useless. */
int store_grow(struct store_env *e, char err[STORE_ERR_LEN])
{
	MDB_envinfo info;
	int rc;

	store_txn_abort(&e->txn);
	drop_spare(e);
	rc = mdb_env_info(e->mdb, &info);
	if (rc) {
		set_err(err, "%s: %s", e->path, mdb_strerror(rc));
		return map_err(rc);
	}
	size_t size = info.me_mapsize * 2;
	if (size > STORE_MAP_MAX) {
		set_err(err, "%s: map is full at %zu MiB and will not grow past %llu MiB", e->path,
			info.me_mapsize >> 20, STORE_MAP_MAX >> 20);
		return STORE_MAP_FULL;
	}
	rc = mdb_env_set_mapsize(e->mdb, size);
	if (rc) {
		set_err(err, "%s: cannot grow the map to %zu MiB: %s", e->path, size >> 20,
			mdb_strerror(rc));
		return map_err(rc);
	}
	log_info("%s: map grown to %zu MiB", e->path, size >> 20);
	return 0;
}

int store_sync(struct store_env *e)
{
	if (e->readonly)
		return 0;
	return map_err(mdb_env_sync(e->mdb, 1));
}

/* ---- config environment: opening, meta values ---- */

int store_config_open(const char *data_dir, uint64_t map_size, int readonly, struct store_env **out,
		      char err[STORE_ERR_LEN])
{
	static const char *const names[] = {"meta"};
	struct store_env *e = NULL;
	MDB_dbi *dbis[1];
	int rc;

	rc = env_new(ENV_CONFIG, readonly, &e, err, "%s/config", data_dir);
	if (rc)
		return rc;
	rc = readonly ? require_dir(e->path, err) : make_env_dir(e->path, err);
	if (rc)
		goto out;
	rc = env_open_mdb(e, map_size, 0, CONFIG_MAX_READERS, err);
	if (rc)
		goto out;
	dbis[0] = &e->meta;
	rc = open_dbis(e, names, dbis, 1, NULL, NULL, err);
out:
	if (rc) {
		store_close(e);
		return rc;
	}
	*out = e;
	return 0;
}

/* Run `fn` inside the environment's current read transaction if one is open
 * (a thread may hold only one), else inside a short one of its own. */
static int with_read(struct store_env *e, int (*fn)(MDB_txn *txn, void *arg), void *arg)
{
	MDB_txn *txn;
	int rc;

	if (e->txn.active)
		return fn(e->txn.txn, arg);
	rc = begin_txn(e, MDB_RDONLY, &txn);
	if (rc)
		return rc;
	rc = fn(txn, arg);
	end_read(e, txn, 0);
	return rc;
}

/* Run `fn` in a write transaction and commit; when the map fills, grow it and
 * run `fn` again from scratch (it must be repeatable). Returns an mdb code. */
static int with_write(struct store_env *e, int (*fn)(MDB_txn *txn, void *arg), void *arg, char *err)
{
	MDB_txn *txn;
	int rc;

	if (e->txn.active)
		return EBUSY;
	for (;;) {
		rc = begin_txn(e, 0, &txn);
		if (rc)
			return rc;
		rc = fn(txn, arg);
		if (rc)
			mdb_txn_abort(txn);
		else
			rc = mdb_txn_commit(txn);
		if (rc != MDB_MAP_FULL)
			return rc;
		if (store_grow(e, err) != 0)
			return MDB_MAP_FULL;
	}
}

struct meta_op {
	struct store_env *env;
	const char *name;
	uint64_t value;
};

static int meta_get_fn(MDB_txn *txn, void *arg)
{
	struct meta_op *op = arg;

	return get_u64(txn, op->env->meta, op->name, &op->value);
}

static int meta_put_fn(MDB_txn *txn, void *arg)
{
	struct meta_op *op = arg;

	return put_u64(txn, op->env->meta, op->name, op->value);
}

int store_meta_get_u64(struct store_env *e, const char *name, uint64_t *v)
{
	struct meta_op op = {e, name, 0};
	int rc = with_read(e, meta_get_fn, &op);

	if (rc)
		return map_err(rc);
	*v = op.value;
	return 0;
}

int store_meta_put_u64(struct store_env *e, const char *name, uint64_t v)
{
	struct meta_op op = {e, name, v};

	if (e->readonly)
		return -EROFS;
	return map_err(with_write(e, meta_put_fn, &op, NULL));
}

/* ---- config environment: reading tables ---- */

int store_config_read(struct store_env *e, struct store_txn **out)
{
	struct store_txn *t;
	int rc;

	if (e->kind != ENV_CONFIG)
		return -EINVAL;
	rc = txn_start(e, 1, &t);
	if (rc)
		return rc;
	rc = get_u64(t->txn, e->meta, "generation", &t->generation);
	if (rc == MDB_NOTFOUND)
		rc = 0; /* nothing loaded yet */
	if (rc) {
		store_txn_abort(t);
		return map_err(rc);
	}
	*out = t;
	return 0;
}

uint64_t store_config_generation(struct store_txn *t)
{
	return t->generation;
}

static struct table_dbi *cache_find(struct store_env *e, const char *name)
{
	for (size_t i = 0; i < e->n_tables; i++)
		if (strcmp(e->tables[i].name, name) == 0)
			return &e->tables[i];
	return NULL;
}

static struct table_dbi *cache_add(struct store_env *e, const char *name)
{
	if (e->n_tables == e->cap_tables) {
		size_t cap = e->cap_tables ? e->cap_tables * 2 : 8;
		struct table_dbi *n = realloc(e->tables, cap * sizeof(*n));
		if (!n)
			return NULL;
		e->tables = n;
		e->cap_tables = cap;
	}
	struct table_dbi *c = &e->tables[e->n_tables];
	c->name = strdup(name);
	if (!c->name)
		return NULL;
	e->n_tables++;
	return c;
}

/* The handle was closed by mdb_drop: forget it whatever becomes of the txn. */
static void cache_forget(struct store_env *e, const char *name)
{
	struct table_dbi *c = cache_find(e, name);

	if (!c)
		return;
	free(c->name);
	*c = e->tables[--e->n_tables];
}

static int table_dbi(struct store_txn *t, const char *table, MDB_dbi *dbi)
{
	struct store_env *e = t->env;
	struct table_dbi *c = cache_find(e, table);
	char name[STORE_KEY_MAX + 1];
	int rc;

	if (c && c->found) {
		*dbi = c->dbi;
		return 0;
	}
	if (c && c->generation == t->generation)
		return -ENOENT;
	if ((size_t)snprintf(name, sizeof(name), TABLE_PREFIX "%s", table) >= sizeof(name))
		return -ENOENT;
	rc = mdb_dbi_open(t->txn, name, 0, dbi);
	if (rc && rc != MDB_NOTFOUND)
		return map_err(rc);
	if (!rc)
		t->opened_dbi = 1;
	if (!c && !(c = cache_add(e, table)))
		return rc ? -ENOENT : 0; /* uncached, still correct */
	c->found = !rc;
	c->dbi = rc ? 0 : *dbi;
	c->generation = t->generation;
	return rc ? -ENOENT : 0;
}

int store_table_get(struct store_txn *t, const char *table, const void *key, size_t key_len,
		    struct store_val *val)
{
	MDB_val k = {key_len, (void *)key}, d;
	MDB_dbi dbi;
	int rc;

	if (!t->active || t->env->kind != ENV_CONFIG)
		return -EINVAL;
	if (key_len == 0 || key_len > STORE_KEY_MAX)
		return -ENOENT; /* no such key can have been loaded */
	rc = table_dbi(t, table, &dbi);
	if (rc)
		return rc;
	rc = mdb_get(t->txn, dbi, &k, &d);
	if (rc)
		return map_err(rc);
	val->data = d.mv_data;
	val->len = d.mv_size;
	return 0;
}

/* ---- config environment: parsing TSV tables ---- */

/* Messages for people, appended one per line; what does not fit is counted
 * and summed up at the end rather than cut mid-line. */
struct errbuf {
	char *buf;
	size_t cap, len;
	unsigned count, dropped;
};

#define ERRBUF_TAIL 48 /* kept free for the "and N more" line */

static void errbuf_add(struct errbuf *eb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void errbuf_add(struct errbuf *eb, const char *fmt, ...)
{
	char *line;
	va_list ap;
	int n;

	eb->count++;
	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0 || !eb->buf || eb->len + (size_t)n + 2 + ERRBUF_TAIL > eb->cap) {
		eb->dropped++;
		if (n >= 0)
			free(line);
		return;
	}
	memcpy(eb->buf + eb->len, line, (size_t)n);
	free(line);
	eb->len += (size_t)n;
	eb->buf[eb->len++] = '\n';
	eb->buf[eb->len] = '\0';
}

static void errbuf_finish(struct errbuf *eb)
{
	if (!eb->dropped || !eb->buf || eb->cap <= eb->len)
		return;
	snprintf(eb->buf + eb->len, eb->cap - eb->len, "... and %u more\n", eb->dropped);
}

struct table_rows {
	const struct cfg_table *table;
	char *text;
	size_t text_len;
	struct tsv_rows rows; /* point into text */
};

static void table_rows_free(struct table_rows *tr, size_t n)
{
	for (size_t i = 0; tr && i < n; i++) {
		free(tr[i].text);
		tsv_rows_free(&tr[i].rows);
	}
	free(tr);
}

/* One table's problems, kept until the whole file has been looked at so
 * that they are given in line order (duplicates are found after a sort). */
struct table_msg {
	unsigned line;
	size_t seq;
	char *text;
};

struct table_msgs {
	struct table_msg *v;
	size_t n, cap;
	const struct cfg_table *table;
	int oom;
};

static int table_msg_cmp(const void *a, const void *b)
{
	const struct table_msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* tsv_report_fn: "path:line: message (table NAME, ORIGIN)", ORIGIN being
 * the line of the INI file (or the -o override) that named the file. */
static void tsv_error(void *arg, unsigned line, const char *msg)
{
	struct table_msgs *tm = arg;
	const struct cfg_table *t = tm->table;
	char *text;
	int rc;

	if (tm->n == tm->cap) {
		size_t cap = tm->cap ? tm->cap * 2 : 16;
		struct table_msg *v = realloc(tm->v, cap * sizeof(*v));
		if (!v) {
			tm->oom = 1;
			return;
		}
		tm->v = v;
		tm->cap = cap;
	}
	if (t->origin)
		rc = asprintf(&text, "%s:%u: %s (table %s, %s)", t->path, line, msg, t->name,
			      t->origin);
	else
		rc = asprintf(&text, "%s:%u: %s (table %s)", t->path, line, msg, t->name);
	if (rc < 0) {
		tm->oom = 1;
		return;
	}
	tm->v[tm->n].line = line;
	tm->v[tm->n].seq = tm->n;
	tm->v[tm->n].text = text;
	tm->n++;
}

/* Hand a table's problems over in line order. */
static void table_msgs_flush(struct table_msgs *tm, struct errbuf *eb)
{
	if (tm->n > 1)
		qsort(tm->v, tm->n, sizeof(tm->v[0]), table_msg_cmp);
	for (size_t i = 0; i < tm->n; i++) {
		errbuf_add(eb, "%s", tm->v[i].text);
		free(tm->v[i].text);
	}
	if (tm->oom)
		errbuf_add(eb, "%s: out of memory", tm->table->path);
	free(tm->v);
}

/* A problem with a table's file as a whole: "ORIGIN: [table.NAME] path =
 * PATH: what". */
static void table_error(struct errbuf *eb, const struct cfg_table *t, const char *what, int err)
{
	errbuf_add(eb, "%s%s[table.%s] path = %s: %s%s%s", t->origin ? t->origin : "",
		   t->origin ? ": " : "", t->name, t->path, what, err ? ": " : "",
		   err ? strerror(err) : "");
}

/* Read the whole file: the rows point into it until the load is over. */
static int slurp(const struct cfg_table *t, char **text, size_t *len, struct errbuf *eb)
{
	size_t cap = 0, n = 0;
	char *buf = NULL;
	int fd, rc = 0;

	fd = open(t->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		table_error(eb, t, "cannot open", errno);
		return -1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			char *b = realloc(buf, cap);
			if (!b) {
				table_error(eb, t, "out of memory", 0);
				rc = -1;
				goto out;
			}
			buf = b;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			table_error(eb, t, "cannot read", errno);
			rc = -1;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
out:
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*text = buf;
	*len = n;
	return 0;
}

/* Table names become database names and are compared by the workers. */
static int check_table_names(const struct cfg *cfg, struct errbuf *eb)
{
	int bad = 0;

	if (cfg->n_tables > STORE_MAX_TABLES) {
		errbuf_add(eb, "%zu tables configured, at most %d are allowed", cfg->n_tables,
			   STORE_MAX_TABLES);
		bad = 1;
	}
	for (size_t i = 0; i < cfg->n_tables; i++) {
		const char *name = cfg->tables[i].name;
		if (!name || !*name || strlen(name) > STORE_KEY_MAX - strlen(TABLE_PREFIX)) {
			errbuf_add(eb, "table %zu: name must be 1..%zu bytes", i + 1,
				   STORE_KEY_MAX - strlen(TABLE_PREFIX));
			bad = 1;
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (cfg->tables[j].name && strcmp(cfg->tables[j].name, name) == 0) {
				errbuf_add(eb, "table '%s' is configured twice", name);
				bad = 1;
			}
	}
	return bad ? -1 : 0;
}

/* Parse every table of `cfg` into memory. Returns 0, or -1 with every
 * problem in `eb` (all files are read even after the first error). */
static int parse_tables(const struct cfg *cfg, struct table_rows **out, struct errbuf *eb)
{
	struct table_rows *tr;
	int bad = check_table_names(cfg, eb);

	tr = calloc(cfg->n_tables ? cfg->n_tables : 1, sizeof(*tr));
	if (!tr) {
		errbuf_add(eb, "out of memory");
		return -1;
	}
	/* The tables in the order of the configuration, each one's problems in
	 * line order. */
	for (size_t i = 0; i < cfg->n_tables; i++) {
		tr[i].table = &cfg->tables[i];
		if (!tr[i].table->path) {
			errbuf_add(eb, "table '%s': no path", tr[i].table->name);
			bad = 1;
			continue;
		}
		if (slurp(tr[i].table, &tr[i].text, &tr[i].text_len, eb) < 0) {
			bad = 1;
			continue;
		}
		struct table_msgs tm = {.table = tr[i].table};
		/* sort the good rows even after a bad one: duplicates are news too */
		if (tsv_parse(tr[i].text, tr[i].text_len, STORE_KEY_MAX, &tr[i].rows, tsv_error,
			      &tm) < 0)
			bad = 1;
		if (tsv_sort(&tr[i].rows, tsv_error, &tm) < 0)
			bad = 1;
		table_msgs_flush(&tm, eb);
	}
	if (bad) {
		table_rows_free(tr, cfg->n_tables);
		return -1;
	}
	*out = tr;
	return 0;
}

int store_config_check(const struct cfg *cfg, char *errs, size_t errs_len)
{
	struct errbuf eb = {errs, errs_len, 0, 0, 0};
	struct table_rows *tr = NULL;
	int rc;

	if (errs && errs_len)
		errs[0] = '\0';
	rc = parse_tables(cfg, &tr, &eb);
	errbuf_finish(&eb);
	if (rc)
		return -EINVAL;
	table_rows_free(tr, cfg->n_tables);
	return 0;
}

/* ---- config environment: the load transaction ---- */

struct load {
	struct store_env *env;
	struct table_rows *tables;
	size_t n_tables;
	uint64_t generation;
	size_t dropped;
	const char *failed; /* the table being written when an error struck */
	const struct cfg *cfg;
};

static int load_fill(MDB_txn *txn, struct table_rows *tr)
{
	char name[STORE_KEY_MAX + 1];
	MDB_dbi dbi;
	int rc;

	snprintf(name, sizeof(name), TABLE_PREFIX "%s", tr->table->name);
	rc = mdb_dbi_open(txn, name, MDB_CREATE, &dbi);
	if (!rc)
		rc = mdb_drop(txn, dbi, 0);
	for (size_t i = 0; !rc && i < tr->rows.n; i++) {
		MDB_val k = {tr->rows.v[i].key_len, (void *)tr->rows.v[i].key};
		MDB_val v = {tr->rows.v[i].val_len, (void *)tr->rows.v[i].val};
		rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
	}
	return rc;
}

static int is_configured(const struct load *ld, const char *name, size_t len)
{
	for (size_t i = 0; i < ld->n_tables; i++) {
		const char *t = ld->tables[i].table->name;
		if (strlen(t) == len && memcmp(t, name, len) == 0)
			return 1;
	}
	return 0;
}

/* Collect the "t.*" databases that no configured table names. The main
 * database cannot change under its own cursor, so drop them afterwards. */
static int load_stale(MDB_txn *txn, const struct load *ld, char ***out, size_t *n_out)
{
	const size_t plen = strlen(TABLE_PREFIX);
	MDB_val k = {plen, (void *)TABLE_PREFIX}, d;
	MDB_cursor *cur;
	char **names = NULL;
	size_t n = 0;
	int rc;

	rc = mdb_cursor_open(txn, 1 /* the main database */, &cur);
	if (rc)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); !rc;
	     rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size <= plen || memcmp(k.mv_data, TABLE_PREFIX, plen) != 0)
			break;
		if (is_configured(ld, (char *)k.mv_data + plen, k.mv_size - plen))
			continue;
		char **more = realloc(names, (n + 1) * sizeof(*names));
		if (!more) {
			rc = ENOMEM;
			break;
		}
		names = more;
		if (!(names[n] = strndup(k.mv_data, k.mv_size))) {
			rc = ENOMEM;
			break;
		}
		n++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	*out = names;
	*n_out = n;
	return rc;
}

static int load_drop_stale(MDB_txn *txn, struct load *ld)
{
	char **names = NULL;
	size_t n = 0;
	MDB_dbi dbi;
	int rc;

	rc = load_stale(txn, ld, &names, &n);
	for (size_t i = 0; !rc && i < n; i++) {
		rc = mdb_dbi_open(txn, names[i], 0, &dbi);
		if (!rc)
			rc = mdb_drop(txn, dbi, 1);
		/* mdb_drop closed the handle, even if this txn aborts later */
		cache_forget(ld->env, names[i] + strlen(TABLE_PREFIX));
	}
	ld->dropped = n;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* Key/value pairs as one value, "name\0value\0" each. */
static int put_pairs(MDB_txn *txn, MDB_dbi meta, const char *name, const struct cfg_kv *kv,
		     size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(kv[i].key) + strlen(kv[i].value) + 2;
	char *buf = malloc(len + 1);
	if (!buf)
		return ENOMEM;
	char *p = buf;
	for (size_t i = 0; i < n; i++) {
		p = stpcpy(p, kv[i].key) + 1;
		p = stpcpy(p, kv[i].value) + 1;
	}
	MDB_val k = {strlen(name), (void *)name}, d = {len, buf};
	int rc = mdb_put(txn, meta, &k, &d, 0);
	free(buf);
	return rc;
}

static int get_pairs(MDB_txn *txn, MDB_dbi meta, const char *name, const char **pairs, size_t *len)
{
	MDB_val k = {strlen(name), (void *)name}, d;
	int rc = mdb_get(txn, meta, &k, &d);
	if (rc)
		return rc;
	*pairs = d.mv_data;
	*len = d.mv_size;
	return 0;
}

/* The live settings (cfg.c's table says which), the [handler] params and the
 * [kafka] properties, for the workers: a worker is forked from a copy of the
 * configuration made at start (forksrv.h), so it takes what a reload
 * changed from here, with the generation they belong to. */
static int put_live(MDB_txn *txn, MDB_dbi meta, const struct cfg *cfg)
{
	char *settings;
	size_t len;
	int rc;

	if (cfg_live_pack(cfg, &settings, &len) != 0)
		return ENOMEM;
	MDB_val k = {strlen(LIVE_SETTINGS), (void *)LIVE_SETTINGS}, d = {len, settings};
	rc = mdb_put(txn, meta, &k, &d, 0);
	free(settings);
	if (!rc)
		rc = put_pairs(txn, meta, LIVE_PARAMS, cfg->params, cfg->n_params);
	if (!rc)
		rc = put_pairs(txn, meta, LIVE_KAFKA, cfg->kafka, cfg->n_kafka);
	return rc;
}

int store_config_live(struct store_txn *t, struct store_live *out)
{
	struct store_env *e = t->env;
	struct cfg some = {0};
	int rc = get_pairs(t->txn, e->meta, LIVE_SETTINGS, &out->settings, &out->settings_len);

	if (!rc)
		rc = get_pairs(t->txn, e->meta, LIVE_PARAMS, &out->params, &out->params_len);
	if (!rc)
		rc = get_pairs(t->txn, e->meta, LIVE_KAFKA, &out->kafka, &out->kafka_len);
	if (rc)
		return map_err(rc);
	if (cfg_live_unpack(&some, out->settings, out->settings_len) != 0)
		return -EIO; /* not what put_live wrote */
	out->batch_max = some.batch_max;
	out->log_level = some.log_level;
	out->stop_timeout_ms = some.stop_timeout_ms;
	out->watchdog_ms = some.watchdog_ms;
	return 0;
}

static int load_fn(MDB_txn *txn, void *arg)
{
	struct load *ld = arg;
	uint64_t gen = 0;
	int rc;

	ld->failed = NULL;
	rc = load_drop_stale(txn, ld);
	for (size_t i = 0; !rc && i < ld->n_tables; i++) {
		rc = load_fill(txn, &ld->tables[i]);
		if (rc)
			ld->failed = ld->tables[i].table->name;
	}
	if (!rc) {
		rc = get_u64(txn, ld->env->meta, "generation", &gen);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (!rc)
		rc = put_u64(txn, ld->env->meta, "generation", ld->generation = gen + 1);
	if (!rc)
		rc = put_live(txn, ld->env->meta, ld->cfg);
	return rc;
}

int store_config_load(struct store_env *e, const struct cfg *cfg, uint64_t *generation, char *errs,
		      size_t errs_len)
{
	struct errbuf eb = {errs, errs_len, 0, 0, 0};
	struct load ld = {e, NULL, cfg->n_tables, 0, 0, NULL, cfg};
	char err[STORE_ERR_LEN] = "";
	int rc;

	if (errs && errs_len)
		errs[0] = '\0';
	if (e->kind != ENV_CONFIG || e->readonly) {
		errbuf_add(&eb, "%s: opened read-only, cannot load", e->path);
		rc = -EROFS;
		goto out;
	}
	if (parse_tables(cfg, &ld.tables, &eb) < 0) {
		rc = -EINVAL;
		goto out;
	}
	rc = with_write(e, load_fn, &ld, err);
	if (rc) {
		errbuf_add(&eb, "%s: loading%s%s: %s%s%s", e->path, ld.failed ? " table " : "",
			   ld.failed ? ld.failed : "", mdb_strerror(rc), *err ? ": " : "", err);
		rc = map_err(rc);
		goto out;
	}
	log_info("%s: generation %llu: %zu tables loaded, %zu dropped", e->path,
		 (unsigned long long)ld.generation, ld.n_tables, ld.dropped);
	if (generation)
		*generation = ld.generation;
out:
	errbuf_finish(&eb);
	table_rows_free(ld.tables, cfg->n_tables);
	return rc;
}

/* ---- state shards ---- */

struct shard_check {
	unsigned partitions;
};

/* The partition count is fixed for a data directory: a key's partition is
 * its hash modulo the count, so another count would scatter existing state. */
static int shard_check(struct store_env *e, MDB_txn *txn, void *arg, char *err)
{
	const struct shard_check *sc = arg;
	uint64_t made_for;
	int rc = get_u64(txn, e->meta, "partitions", &made_for);

	if (rc == MDB_NOTFOUND) {
		if (e->readonly)
			return 0;
		rc = put_u64(txn, e->meta, "partitions", sc->partitions);
	} else if (!rc && sc->partitions && made_for != sc->partitions) {
		set_err(err,
			"%s was made for %llu partitions, not %u: use partitions = %llu, "
			"or start with an empty data_dir",
			e->path, (unsigned long long)made_for, sc->partitions,
			(unsigned long long)made_for);
		return -EEXIST;
	}
	if (rc)
		set_err(err, "%s: partitions: %s", e->path, mdb_strerror(rc));
	return map_err(rc);
}

int store_shard_open(const char *data_dir, unsigned partition, unsigned partitions,
		     uint64_t map_size, enum store_sync sync, int readonly, struct store_env **out,
		     char err[STORE_ERR_LEN])
{
	static const char *const names[] = {"state", "meta"};
	struct shard_check sc = {partitions};
	struct store_env *e = NULL;
	MDB_dbi *dbis[2];
	int rc;

	rc = env_new(ENV_SHARD, readonly, &e, err, "%s/state/p%u", data_dir, partition);
	if (rc)
		return rc;
	rc = readonly ? require_dir(e->path, err) : make_env_dir(e->path, err);
	if (rc)
		goto out;
	/* Without MDB_NOSYNC every commit is an fsync; the periodic mode calls
	 * store_sync instead. A killed process loses nothing either way. */
	rc = env_open_mdb(e, map_size, sync == STORE_SYNC_BATCH ? 0 : MDB_NOSYNC, SHARD_MAX_READERS,
			  err);
	if (rc)
		goto out;
	dbis[0] = &e->state;
	dbis[1] = &e->meta;
	rc = open_dbis(e, names, dbis, 2, shard_check, &sc, err);
out:
	if (rc) {
		store_close(e);
		return rc;
	}
	*out = e;
	return 0;
}

struct progress {
	struct store_env *env;
	uint64_t has_applied, applied_seq, output_len;
};

static int progress_fn(MDB_txn *txn, void *arg)
{
	struct progress *p = arg;
	const char *names[] = {"has_applied", "applied_seq", "output_len"};
	uint64_t *vals[] = {&p->has_applied, &p->applied_seq, &p->output_len};

	for (int i = 0; i < 3; i++) {
		int rc = get_u64(txn, p->env->meta, names[i], vals[i]);
		if (rc == MDB_NOTFOUND)
			*vals[i] = 0;
		else if (rc)
			return rc;
	}
	return 0;
}

int store_shard_progress(struct store_env *shard, int *has_applied, uint64_t *applied_seq,
			 uint64_t *output_len)
{
	struct progress p = {shard, 0, 0, 0};
	int rc;

	if (shard->kind != ENV_SHARD)
		return -EINVAL;
	rc = with_read(shard, progress_fn, &p);
	if (rc)
		return map_err(rc);
	*has_applied = p.has_applied != 0;
	*applied_seq = p.applied_seq;
	*output_len = p.output_len;
	return 0;
}

int store_shard_begin(struct store_env *shard, struct store_txn **out)
{
	if (shard->kind != ENV_SHARD)
		return -EINVAL;
	return txn_start(shard, shard->readonly, out);
}

int store_shard_read(struct store_env *shard, struct store_txn **out)
{
	if (shard->kind != ENV_SHARD)
		return -EINVAL;
	return txn_start(shard, 1, out);
}

static int state_txn_ok(const struct store_txn *t)
{
	return t && t->active && t->env->kind == ENV_SHARD;
}

int store_state_get(struct store_txn *t, const void *key, size_t key_len, struct store_val *val)
{
	MDB_val k = {key_len, (void *)key}, d;
	int rc;

	if (!state_txn_ok(t))
		return -EINVAL;
	if (key_len == 0 || key_len > STORE_KEY_MAX)
		return -ENOENT;
	rc = mdb_get(t->txn, t->env->state, &k, &d);
	if (rc)
		return map_err(rc);
	val->data = d.mv_data;
	val->len = d.mv_size;
	return 0;
}

int store_state_put(struct store_txn *t, const void *key, size_t key_len, const void *val,
		    size_t val_len)
{
	MDB_val k = {key_len, (void *)key}, d = {val_len, (void *)val};

	if (!state_txn_ok(t))
		return -EINVAL;
	if (t->readonly)
		return -EROFS;
	if (key_len == 0 || key_len > STORE_KEY_MAX)
		return -EINVAL;
	return map_err(mdb_put(t->txn, t->env->state, &k, &d, 0));
}

int store_state_del(struct store_txn *t, const void *key, size_t key_len)
{
	MDB_val k = {key_len, (void *)key};

	if (!state_txn_ok(t))
		return -EINVAL;
	if (t->readonly)
		return -EROFS;
	if (key_len == 0 || key_len > STORE_KEY_MAX)
		return -ENOENT;
	return map_err(mdb_del(t->txn, t->env->state, &k, NULL));
}

int store_shard_meta_put_u64(struct store_txn *t, const char *name, uint64_t v)
{
	if (!state_txn_ok(t))
		return -EINVAL;
	if (t->readonly)
		return -EROFS;
	return map_err(put_u64(t->txn, t->env->meta, name, v));
}

int store_shard_commit(struct store_txn *t, uint64_t applied_seq, uint64_t output_len)
{
	MDB_dbi meta;
	int rc;

	if (!state_txn_ok(t))
		return -EINVAL;
	if (t->readonly) {
		store_txn_abort(t);
		return -EROFS;
	}
	meta = t->env->meta;
	rc = put_u64(t->txn, meta, "applied_seq", applied_seq);
	if (!rc)
		rc = put_u64(t->txn, meta, "output_len", output_len);
	if (!rc)
		rc = put_u64(t->txn, meta, "has_applied", 1);
	if (rc)
		mdb_txn_abort(t->txn);
	else
		rc = mdb_txn_commit(t->txn);
	t->active = 0;
	t->txn = NULL;
	return map_err(rc);
}

int store_state_foreach(struct store_env *shard, store_iter_fn fn, void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, d;
	int rc, stop = 0;

	if (shard->kind != ENV_SHARD)
		return -EINVAL;
	if (shard->txn.active)
		return -EBUSY; /* LMDB: one transaction per thread */
	rc = begin_txn(shard, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc);
	rc = mdb_cursor_open(txn, shard->state, &cur);
	if (rc)
		goto out;
	rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
	while (!rc) {
		const struct store_val key = {k.mv_data, k.mv_size};
		const struct store_val val = {d.mv_data, d.mv_size};
		stop = fn(arg, &key, &val);
		if (stop)
			break;
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	if (cur)
		mdb_cursor_close(cur);
	end_read(shard, txn, 0);
	return stop ? stop : map_err(rc);
}
