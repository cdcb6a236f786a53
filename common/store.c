/* store.c - the core of ringmaster's LMDB storage (store.h): opening and
 * closing environments, transactions, growing the map, syncing, and the
 * small named values of a "meta" database. The config environment is in
 * store_config.c, the state shards in store_shard.c; what they share with
 * this file is in store_lmdb.h.
 *
 * Choices worth knowing before reading on:
 *
 * - u64 values in a "meta" database are 8 bytes, little-endian.
 * - A process has one transaction per environment at a time, kept in the
 *   environment itself. Read transactions are reset and kept for
 *   mdb_txn_renew, which makes a worker's per-batch transaction cheap; one
 *   that opened a DBI handle is committed instead, so the handle outlives it
 *   (an aborted or reset one would close it).
 * - A reader whose map is smaller than the writer's grown one gets
 *   MDB_MAP_RESIZED on begin; we adopt the new size and begin again.
 */
#include "store.h"

#include "durable.h"
#include "log.h"
#include "store_lmdb.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Doubling stops here; past it a full map is reported, not grown. */
#define STORE_MAP_MAX (1ull << 40)

/* ---- small helpers ---- */

void store_set_err(char *err, const char *fmt, ...)
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
int store_map_err(int rc)
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
int store_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *v)
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

int store_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t v)
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
		store_set_err(err, "%s", msg);
	return rc;
}

/* ---- environments and transactions ---- */

int store_env_new(enum env_kind kind, int readonly, struct store_env **out, char *err,
		  const char *fmt, ...)
{
	struct store_env *e = calloc(1, sizeof(*e));
	va_list ap;
	int n;

	if (!e) {
		store_set_err(err, "out of memory");
		return -ENOMEM;
	}
	va_start(ap, fmt);
	n = vsnprintf(e->path, sizeof(e->path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(e->path)) {
		store_set_err(err, "%s: path too long", e->path);
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
int store_env_open(struct store_env *e, uint64_t map_size, unsigned flags, unsigned max_readers,
		   char *err)
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
			store_set_err(err, "%s", msg);
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
		store_set_err(err, "%s: cannot open: %s", e->path, mdb_strerror(rc));
	return rc ? store_map_err(rc) : 0;
}

/* Begin a transaction, reusing the spare read transaction when there is one.
 * A writer in another process may have grown the map past ours: adopt its
 * size (legal now, no transaction is open) and try once more. */
int store_begin(struct store_env *e, unsigned flags, MDB_txn **txn)
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
void store_end_read(struct store_env *e, MDB_txn *txn, int opened_dbi)
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

int store_txn_start(struct store_env *e, int readonly, struct store_txn **out)
{
	struct store_txn *t = &e->txn;
	int rc;

	if (t->active)
		return -EBUSY;
	if (!readonly && e->readonly)
		return -EROFS;
	rc = store_begin(e, readonly ? MDB_RDONLY : 0, &t->txn);
	if (rc)
		return store_map_err(rc);
	t->active = 1;
	t->readonly = readonly;
	t->opened_dbi = 0;
	t->generation = 0;
	t->state_cur = NULL;
	t->state_cur_sorted = 0;
	*out = t;
	return 0;
}

void store_txn_drop_cursor(struct store_txn *t)
{
	if (t->state_cur)
		mdb_cursor_close(t->state_cur);
	t->state_cur = NULL;
	t->state_cur_sorted = 0;
}

void store_txn_abort(struct store_txn *t)
{
	if (!t || !t->active)
		return;
	store_txn_drop_cursor(t);
	if (t->readonly)
		store_end_read(t->env, t->txn, t->opened_dbi);
	else
		mdb_txn_abort(t->txn);
	t->active = 0;
	t->txn = NULL;
}

/* The handles must outlive the transaction, so it commits even when it only
 * read. */
int store_open_dbis(struct store_env *e, const char *const *names, MDB_dbi *const *dbis, size_t n,
		    store_open_check_fn check, void *arg, char *err)
{
	MDB_txn *txn = NULL;
	int rc;

	rc = store_begin(e, e->readonly ? MDB_RDONLY : 0, &txn);
	if (rc) {
		store_set_err(err, "%s: cannot begin: %s", e->path, mdb_strerror(rc));
		return store_map_err(rc);
	}
	for (size_t i = 0; i < n; i++) {
		rc = mdb_dbi_open(txn, names[i], e->readonly ? 0 : MDB_CREATE, dbis[i]);
		if (rc) {
			store_set_err(
			    err, "%s: database '%s': %s%s", e->path, names[i], mdb_strerror(rc),
			    rc == MDB_NOTFOUND ? " (never written by its owner yet)" : "");
			rc = store_map_err(rc);
			goto out;
		}
	}
	if (check && (rc = check(e, txn, arg, err)) != 0)
		goto out;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc) {
		store_set_err(err, "%s: cannot commit: %s", e->path, mdb_strerror(rc));
		rc = store_map_err(rc);
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
		store_set_err(err, "%s: %s", path,
			      e == ENOENT ? "does not exist (nothing has written it yet)"
					  : strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		store_set_err(err, "%s: not a directory", path);
		return -ENOTDIR;
	}
	return 0;
}

int store_env_dir(struct store_env *e, char *err)
{
	return e->readonly ? require_dir(e->path, err) : make_env_dir(e->path, err);
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
		store_set_err(err, "%s: %s", e->path, mdb_strerror(rc));
		return store_map_err(rc);
	}
	size_t size = info.me_mapsize * 2;
	if (size > STORE_MAP_MAX) {
		store_set_err(err, "%s: map is full at %zu MiB and will not grow past %llu MiB",
			      e->path, info.me_mapsize >> 20, STORE_MAP_MAX >> 20);
		return STORE_MAP_FULL;
	}
	rc = mdb_env_set_mapsize(e->mdb, size);
	if (rc) {
		store_set_err(err, "%s: cannot grow the map to %zu MiB: %s", e->path, size >> 20,
			      mdb_strerror(rc));
		return store_map_err(rc);
	}
	log_info("%s: map grown to %zu MiB", e->path, size >> 20);
	return 0;
}

int store_sync(struct store_env *e)
{
	if (e->readonly)
		return 0;
	return store_map_err(mdb_env_sync(e->mdb, 1));
}

/* ---- running code in a transaction, meta values ---- */

/* Inside the current read transaction if one is open (a thread may hold
 * only one), else inside a short one of its own. */
int store_with_read(struct store_env *e, int (*fn)(MDB_txn *txn, void *arg), void *arg)
{
	MDB_txn *txn;
	int rc;

	if (e->txn.active)
		return fn(e->txn.txn, arg);
	rc = store_begin(e, MDB_RDONLY, &txn);
	if (rc)
		return rc;
	rc = fn(txn, arg);
	store_end_read(e, txn, 0);
	return rc;
}

/* Run `fn` in a write transaction and commit; when the map fills, grow it and
 * run `fn` again from scratch (it must be repeatable). Returns an mdb code. */
int store_with_write(struct store_env *e, int (*fn)(MDB_txn *txn, void *arg), void *arg, char *err)
{
	MDB_txn *txn;
	int rc;

	if (e->txn.active)
		return EBUSY;
	for (;;) {
		rc = store_begin(e, 0, &txn);
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

	return store_get_u64(txn, op->env->meta, op->name, &op->value);
}

static int meta_put_fn(MDB_txn *txn, void *arg)
{
	struct meta_op *op = arg;

	return store_put_u64(txn, op->env->meta, op->name, op->value);
}

int store_meta_get_u64(struct store_env *e, const char *name, uint64_t *v)
{
	struct meta_op op = {e, name, 0};
	int rc = store_with_read(e, meta_get_fn, &op);

	if (rc)
		return store_map_err(rc);
	*v = op.value;
	return 0;
}

int store_meta_put_u64(struct store_env *e, const char *name, uint64_t v)
{
	struct meta_op op = {e, name, v};

	if (e->readonly)
		return -EROFS;
	return store_map_err(store_with_write(e, meta_put_fn, &op, NULL));
}

struct meta_ops {
	struct store_env *env;
	const char *const *names;
	const uint64_t *values;
	size_t n;
};

static int meta_put_all_fn(MDB_txn *txn, void *arg)
{
	struct meta_ops *op = arg;
	int rc = 0;

	for (size_t i = 0; i < op->n && rc == 0; i++)
		rc = store_put_u64(txn, op->env->meta, op->names[i], op->values[i]);
	return rc;
}

int store_meta_put_u64s(struct store_env *e, const char *const *names, const uint64_t *v, size_t n)
{
	struct meta_ops op = {e, names, v, n};

	if (e->readonly)
		return -EROFS;
	return store_map_err(store_with_write(e, meta_put_all_fn, &op, NULL));
}

struct meta_bytes {
	struct store_env *env;
	size_t n;
	const char *const *names;
	const void *const *vals;
	const size_t *lens;
	void *buf;
	size_t cap, len;
};

static int meta_get_bytes_fn(MDB_txn *txn, void *arg)
{
	struct meta_bytes *op = arg;
	MDB_val k = {strlen(op->names[0]), (void *)op->names[0]}, d;
	int rc = mdb_get(txn, op->env->meta, &k, &d);

	if (rc)
		return rc;
	op->len = d.mv_size;
	memcpy(op->buf, d.mv_data, d.mv_size < op->cap ? d.mv_size : op->cap);
	return 0;
}

int store_meta_get(struct store_env *e, const char *name, void *buf, size_t cap, size_t *len)
{
	struct meta_bytes op = {.env = e, .n = 1, .names = &name, .buf = buf, .cap = cap};
	int rc = store_with_read(e, meta_get_bytes_fn, &op);

	if (rc)
		return store_map_err(rc);
	*len = op.len;
	return 0;
}

static int meta_put_bytes_fn(MDB_txn *txn, void *arg)
{
	struct meta_bytes *op = arg;
	int rc = 0;

	for (size_t i = 0; i < op->n && rc == 0; i++) {
		MDB_val k = {strlen(op->names[i]), (void *)op->names[i]};
		MDB_val d = {op->lens ? op->lens[i] : 0, (void *)op->vals[i]};

		if (op->vals[i])
			rc = mdb_put(txn, op->env->meta, &k, &d, 0);
		else if ((rc = mdb_del(txn, op->env->meta, &k, NULL)) == MDB_NOTFOUND)
			rc = 0;
	}
	return rc;
}

int store_meta_put(struct store_env *e, size_t n, const char *const *names, const void *const *vals,
		   const size_t *lens)
{
	struct meta_bytes op = {.env = e, .n = n, .names = names, .vals = vals, .lens = lens};

	if (e->readonly)
		return -EROFS;
	return store_map_err(store_with_write(e, meta_put_bytes_fn, &op, NULL));
}

int store_copy(struct store_env *e, int fd)
{
	return store_map_err(mdb_env_copyfd2(e->mdb, fd, MDB_CP_COMPACT));
}

struct store_copy_job {
	pthread_t thread;
	MDB_env *env;
	int fd, rc;
	_Atomic int done;
};

static void *copy_thread(void *arg)
{
	struct store_copy_job *j = arg;
	j->rc = store_map_err(mdb_env_copyfd2(j->env, j->fd, MDB_CP_COMPACT));
	atomic_store(&j->done, 1);
	return NULL;
}

struct reader_look {
	char thread[32]; /* " <pthread_t in hex> ", as mdb_reader_list prints it */
	int seen;
};

static int reader_line(const char *line, void *arg)
{
	struct reader_look *r = arg;
	if (strstr(line, r->thread))
		r->seen = 1;
	return 0;
}

int store_copy_start(struct store_env *e, int fd, struct store_copy_job **out)
{
	struct store_copy_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->env = e->mdb;
	j->fd = fd;
	int rc = pthread_create(&j->thread, NULL, copy_thread, j);
	if (rc != 0) {
		free(j);
		return -rc;
	}
	/* The copy's snapshot is taken when its read transaction begins: its
	 * thread then has a reader slot (kept until the thread ends). Until
	 * then this process writes nothing, so the snapshot is now's. */
	struct reader_look look = {.seen = 0};
	snprintf(look.thread, sizeof(look.thread), " %zx ", (size_t)j->thread);
	while (!look.seen && !atomic_load(&j->done)) {
		mdb_reader_list(e->mdb, reader_line, &look);
		if (!look.seen)
			sched_yield();
	}
	*out = j;
	return 0;
}

int store_copy_finish(struct store_copy_job *j)
{
	pthread_join(j->thread, NULL);
	int rc = j->rc;
	free(j);
	return rc;
}
