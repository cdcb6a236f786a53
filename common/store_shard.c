/* store_shard.c - the state shards of ringmaster's LMDB storage (store.h):
 * data_dir/state/pN, one environment per partition, written by its worker
 * alone. Database "state" holds the handler's keys, "meta" the partition
 * count the shard was made for and what the last committed batch applied
 * (applied_seq, output_len), committed in the batch's own transaction, and
 * replay_applied: the highest replay seq (replay.h) applied, kept apart from
 * applied_seq so that replays and the source never hide each other's events.
 */
#include "store.h"

#include "store_lmdb.h"

#include <errno.h>
#include <string.h>

#define SHARD_MAX_READERS 126

struct shard_check {
	unsigned partitions;
};

/* The partition count is fixed for a data directory: a key's partition is
 * its hash modulo the count, so another count would scatter existing state. */
static int shard_check(struct store_env *e, MDB_txn *txn, void *arg, char *err)
{
	const struct shard_check *sc = arg;
	uint64_t made_for;
	int rc = store_get_u64(txn, e->meta, "partitions", &made_for);

	if (rc == MDB_NOTFOUND) {
		if (e->readonly)
			return 0;
		rc = store_put_u64(txn, e->meta, "partitions", sc->partitions);
	} else if (!rc && sc->partitions && made_for != sc->partitions) {
		store_set_err(err,
			      "%s was made for %llu partitions, not %u: use partitions = %llu, "
			      "or start with an empty data_dir",
			      e->path, (unsigned long long)made_for, sc->partitions,
			      (unsigned long long)made_for);
		return -EEXIST;
	}
	if (rc)
		store_set_err(err, "%s: partitions: %s", e->path, mdb_strerror(rc));
	return store_map_err(rc);
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

	rc = store_env_new(ENV_SHARD, readonly, &e, err, "%s/state/p%u", data_dir, partition);
	if (rc)
		return rc;
	rc = store_env_dir(e, err);
	if (rc)
		goto out;
	/* Without MDB_NOSYNC every commit is an fsync; the periodic mode calls
	 * store_sync instead. A killed process loses nothing either way. */
	rc = store_env_open(e, map_size, sync == STORE_SYNC_BATCH ? 0 : MDB_NOSYNC,
			    SHARD_MAX_READERS, err);
	if (rc)
		goto out;
	dbis[0] = &e->state;
	dbis[1] = &e->meta;
	rc = store_open_dbis(e, names, dbis, 2, shard_check, &sc, err);
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
		int rc = store_get_u64(txn, p->env->meta, names[i], vals[i]);
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
	rc = store_with_read(shard, progress_fn, &p);
	if (rc)
		return store_map_err(rc);
	*has_applied = p.has_applied != 0;
	*applied_seq = p.applied_seq;
	*output_len = p.output_len;
	return 0;
}

static int state_txn_ok(const struct store_txn *t);

struct replay_mark {
	struct store_env *env;
	uint64_t seq;
	int rc;
};

static int replay_fn(MDB_txn *txn, void *arg)
{
	struct replay_mark *m = arg;
	m->rc = store_get_u64(txn, m->env->meta, "replay_applied", &m->seq);
	return m->rc == MDB_NOTFOUND ? 0 : m->rc;
}

int store_shard_replay_applied(struct store_env *shard, int *has, uint64_t *seq)
{
	struct replay_mark m = {shard, 0, 0};
	if (shard->kind != ENV_SHARD)
		return -EINVAL;
	int rc = store_with_read(shard, replay_fn, &m);
	if (rc)
		return store_map_err(rc);
	*has = m.rc == 0;
	*seq = *has ? m.seq : 0;
	return 0;
}

int store_shard_commit_state(struct store_txn *t)
{
	int rc;
	if (!state_txn_ok(t))
		return -EINVAL;
	if (t->readonly) {
		store_txn_abort(t);
		return -EROFS;
	}
	rc = mdb_txn_commit(t->txn);
	t->active = 0;
	t->txn = NULL;
	return store_map_err(rc);
}

int store_shard_begin(struct store_env *shard, struct store_txn **out)
{
	if (shard->kind != ENV_SHARD)
		return -EINVAL;
	return store_txn_start(shard, shard->readonly, out);
}

int store_shard_read(struct store_env *shard, struct store_txn **out)
{
	if (shard->kind != ENV_SHARD)
		return -EINVAL;
	return store_txn_start(shard, 1, out);
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
		return store_map_err(rc);
	val->data = d.mv_data;
	val->len = d.mv_size;
	return 0;
}

/* The transaction's cursor on "state", opened at first use. */
static int state_cursor(struct store_txn *t)
{
	if (t->state_cur)
		return 0;
	int rc = mdb_cursor_open(t->txn, t->env->state, &t->state_cur);
	if (rc) {
		t->state_cur = NULL;
		t->state_cur_sorted = 0;
	}
	return store_map_err(rc);
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
	int rc = state_cursor(t);
	if (rc)
		return rc;
	t->state_cur_sorted = 0;
	return store_map_err(mdb_cursor_put(t->state_cur, &k, &d, 0));
}

/* How many keys the cursor steps over before it searches instead. */
#define SORTED_STEPS 4

static int key_cmp(const MDB_val *a, const MDB_val *b)
{
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int d = memcmp(a->mv_data, b->mv_data, n);
	return d ? d : (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}

int store_state_write_sorted(struct store_txn *t, const void *key, size_t key_len, const void *val,
			     size_t val_len, int present)
{
	MDB_val k = {key_len, (void *)key}, d = {val_len, (void *)val}, ck, cd;
	int rc, cmp = -1;

	if (!state_txn_ok(t))
		return -EINVAL;
	if (t->readonly)
		return -EROFS;
	if (key_len == 0 || key_len > STORE_KEY_MAX)
		return present ? -EINVAL : -ENOENT;
	if ((rc = state_cursor(t)) != 0)
		return rc;
	/* Where the key is or would go: a few steps from the last one
	 * written, else a search (which starts from the cursor's page). */
	for (int i = 0; t->state_cur_sorted && i < SORTED_STEPS && cmp < 0; i++) {
		rc = mdb_cursor_get(t->state_cur, &ck, &cd, MDB_NEXT);
		if (rc == MDB_NOTFOUND) {
			cmp = 1; /* past the last key: a new one */
			break;
		}
		if (rc)
			return store_map_err(rc);
		cmp = key_cmp(&ck, &k);
	}
	if (cmp < 0) {
		ck = k;
		rc = mdb_cursor_get(t->state_cur, &ck, &cd, MDB_SET_RANGE);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return store_map_err(rc);
		cmp = rc == MDB_NOTFOUND ? 1 : key_cmp(&ck, &k);
	}
	if (!present) {
		t->state_cur_sorted = 0; /* a delete moves the cursor on */
		return cmp == 0 ? store_map_err(mdb_cursor_del(t->state_cur, 0)) : -ENOENT;
	}
	/* On the key: replace it where it is, no search. */
	rc = mdb_cursor_put(t->state_cur, &k, &d, cmp == 0 ? MDB_CURRENT : 0);
	t->state_cur_sorted = rc == 0;
	return store_map_err(rc);
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
	t->state_cur_sorted = 0;
	return store_map_err(mdb_del(t->txn, t->env->state, &k, NULL));
}

int store_shard_meta_put_u64(struct store_txn *t, const char *name, uint64_t v)
{
	if (!state_txn_ok(t))
		return -EINVAL;
	if (t->readonly)
		return -EROFS;
	return store_map_err(store_put_u64(t->txn, t->env->meta, name, v));
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
	store_txn_drop_cursor(t);
	meta = t->env->meta;
	rc = store_put_u64(t->txn, meta, "applied_seq", applied_seq);
	if (!rc)
		rc = store_put_u64(t->txn, meta, "output_len", output_len);
	if (!rc)
		rc = store_put_u64(t->txn, meta, "has_applied", 1);
	if (rc)
		mdb_txn_abort(t->txn);
	else
		rc = mdb_txn_commit(t->txn);
	t->active = 0;
	t->txn = NULL;
	return store_map_err(rc);
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
	rc = store_begin(shard, MDB_RDONLY, &txn);
	if (rc)
		return store_map_err(rc);
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
	store_end_read(shard, txn, 0);
	return stop ? stop : store_map_err(rc);
}
