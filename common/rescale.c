/* rescale.c - re-split state shards for another partition count (see
 * rescale.h).
 *
 * The old shards are read through one cursor each, merged in LMDB's key
 * order (a heap of the cursors), so every new shard receives its keys in
 * ascending order and takes them with MDB_APPEND: no page splits in the
 * middle of the tree, pages filled whole. All new shards commit together
 * every RESCALE_COMMIT_KEYS keys; that point of the merge is a checkpoint
 * to go back to when a new shard's map fills (the put's transaction is
 * lost then: grow the map, abort the others, redo from the checkpoint).
 * Nothing needs the whole state in memory.
 *
 * Neither side takes LMDB's lock file (MDB_NOLOCK): the old shards are a
 * stopped data_dir's (the caller holds its lock) or a savepoint's, and the
 * new ones are nobody's until they are put in place.
 */
#include "rescale.h"

#include "durable.h"
#include "log.h"
#include "partition.h"
#include "store_lmdb.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RESCALE_MAX_PARTS 1024
#define RESCALE_COMMIT_KEYS 8192
#define RESCALE_MAP_MIN (16ull << 20)
#define RESCALE_PROGRESS_NS 1000000000ull

struct old_shard {
	MDB_env *env;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_dbi state;
	MDB_val key, val; /* the cursor's pair, valid while txn lives */
	unsigned partitions, layout;
	int has_applied, has_replay;
	uint64_t applied, replay, keys, used;
};

struct new_shard {
	MDB_env *env;
	MDB_txn *txn; /* open write transaction, or NULL */
	MDB_dbi state, meta;
	uint64_t map;
};

struct resplit {
	const char *from, *to;
	unsigned from_n, to_n;
	struct old_shard *old;
	struct new_shard *new;
	unsigned *heap, heap_n;
	/* What every new shard's meta gets (rescale.h). */
	int has_applied, has_replay;
	uint64_t applied, replay;
	unsigned layout;
	uint64_t total, done, used, map_size;
	/* The merge position of the last commit of every new shard. */
	unsigned char ckey[STORE_KEY_MAX];
	size_t ckey_len;
	int has_ckey;
	uint64_t ckey_done;
	char *err;
};

static void set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char *err, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err, RESCALE_ERR_LEN, fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf, not following symbolic links; then the parent's entry is
 * made durable. A missing path is fine. */
static int remove_tree(const char *path, char *err)
{
	char msg[DUR_ERR_LEN];
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		int e = errno;
		set_err(err, "%s: cannot remove: %s", path, strerror(e));
		return -e;
	}
	int rc = dur_fsync_parent(path, msg);
	if (rc)
		set_err(err, "%s", msg);
	return rc;
}

/* The directory that will hold `path` (a new data_dir's), made durably. */
static int make_parent(const char *path, char *err)
{
	char parent[PATH_MAX], msg[DUR_ERR_LEN];
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	if ((size_t)(slash - path) >= sizeof(parent)) {
		set_err(err, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(parent, path, (size_t)(slash - path));
	parent[slash - path] = '\0';
	int rc = dur_mkdir_p(parent, 0700, msg);
	if (rc)
		set_err(err, "%s", msg);
	return rc;
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- the old shards ---- */

static int meta_u64(MDB_txn *txn, MDB_dbi meta, const char *name, uint64_t *v, int *have)
{
	int rc = store_get_u64(txn, meta, name, v);
	*have = rc == 0;
	if (rc == MDB_NOTFOUND) {
		*v = 0;
		return 0;
	}
	return rc;
}

static void close_old(struct old_shard *o)
{
	if (o->cur)
		mdb_cursor_close(o->cur);
	if (o->txn)
		mdb_txn_abort(o->txn);
	if (o->env)
		mdb_env_close(o->env);
	memset(o, 0, sizeof(*o));
}

/* Open state_dir/p<p> read-only and read its meta. expect: the count it
 * must have been made for (0: any). */
static int open_old(struct old_shard *o, const char *state_dir, unsigned p, unsigned expect,
		    char *err)
{
	char path[PATH_MAX];
	MDB_dbi meta;
	MDB_stat st;
	MDB_envinfo info;
	uint64_t v;
	int have, rc;

	memset(o, 0, sizeof(*o));
	if (snprintf(path, sizeof(path), "%s/p%u", state_dir, p) >= (int)sizeof(path)) {
		set_err(err, "%s/p%u: path too long", state_dir, p);
		return -ENAMETOOLONG;
	}
	if (!exists(path)) {
		set_err(err, "%s: no such shard", path);
		return -ENOENT;
	}
	rc = mdb_env_create(&o->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(o->env, STORE_MAX_DBS);
	if (!rc)
		rc = mdb_env_open(o->env, path, MDB_RDONLY | MDB_NOLOCK, 0600);
	if (!rc)
		rc = mdb_txn_begin(o->env, NULL, MDB_RDONLY, &o->txn);
	if (!rc)
		rc = mdb_dbi_open(o->txn, "state", 0, &o->state);
	if (!rc)
		rc = mdb_dbi_open(o->txn, "meta", 0, &meta);
	if (rc)
		goto out;
	rc = meta_u64(o->txn, meta, "partitions", &v, &have);
	if (rc)
		goto out;
	o->partitions = (unsigned)v;
	if (!have) {
		set_err(err, "%s records no partition count: not a shard ringmaster wrote", path);
		close_old(o);
		return -EINVAL;
	}
	if (expect && v != expect) {
		set_err(err, "%s was made for %llu partitions, not %u: not a shard of this state",
			path, (unsigned long long)v, expect);
		close_old(o);
		return -EINVAL;
	}
	if ((rc = meta_u64(o->txn, meta, "has_applied", &v, &have)) != 0)
		goto out;
	o->has_applied = v != 0;
	if ((rc = meta_u64(o->txn, meta, "applied_seq", &o->applied, &have)) != 0 ||
	    (rc = meta_u64(o->txn, meta, "replay_applied", &o->replay, &o->has_replay)) != 0 ||
	    (rc = meta_u64(o->txn, meta, "layout", &v, &have)) != 0)
		goto out;
	o->layout = have && v ? (unsigned)v : 1;
	rc = mdb_stat(o->txn, o->state, &st);
	if (!rc)
		rc = mdb_env_info(o->env, &info);
	if (rc)
		goto out;
	o->keys = st.ms_entries;
	o->used = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
	rc = mdb_cursor_open(o->txn, o->state, &o->cur);
out:
	if (rc) {
		set_err(err, "%s: cannot read the shard: %s", path, mdb_strerror(rc));
		close_old(o);
		return store_map_err(rc);
	}
	return 0;
}

int rescale_inspect(const char *state_dir, struct rescale_info *info, char err[RESCALE_ERR_LEN])
{
	struct old_shard o;
	int rc = open_old(&o, state_dir, 0, 0, err);
	memset(info, 0, sizeof(*info));
	if (rc)
		return rc;
	info->partitions = o.partitions;
	info->layout = o.layout;
	for (unsigned p = 0;;) {
		info->keys += o.keys;
		if (o.has_applied && (!info->has_applied || o.applied > info->max_applied)) {
			info->max_applied = o.applied;
			info->max_applied_p = p;
		}
		info->has_applied |= o.has_applied;
		close_old(&o);
		if (++p == info->partitions)
			return 0;
		if ((rc = open_old(&o, state_dir, p, info->partitions, err)) != 0)
			return rc;
	}
}

/* ---- the merge ---- */

static int key_cmp(const struct resplit *r, unsigned a, unsigned b)
{
	return mdb_cmp(r->old[a].txn, r->old[a].state, &r->old[a].key, &r->old[b].key);
}

static void sift_down(struct resplit *r, unsigned i)
{
	for (;;) {
		unsigned l = 2 * i + 1, m = i;
		if (l < r->heap_n && key_cmp(r, r->heap[l], r->heap[m]) < 0)
			m = l;
		if (l + 1 < r->heap_n && key_cmp(r, r->heap[l + 1], r->heap[m]) < 0)
			m = l + 1;
		if (m == i)
			return;
		unsigned t = r->heap[i];
		r->heap[i] = r->heap[m];
		r->heap[m] = t;
		i = m;
	}
}

static void sift_up(struct resplit *r, unsigned i)
{
	while (i && key_cmp(r, r->heap[i], r->heap[(i - 1) / 2]) < 0) {
		unsigned up = (i - 1) / 2, t = r->heap[i];
		r->heap[i] = r->heap[up];
		r->heap[up] = t;
		i = up;
	}
}

/* Every cursor to its first key past the checkpoint (or its first key),
 * and the heap rebuilt. */
static int position(struct resplit *r)
{
	r->heap_n = 0;
	r->done = r->ckey_done;
	for (unsigned i = 0; i < r->from_n; i++) {
		struct old_shard *o = &r->old[i];
		MDB_val k = {r->ckey_len, r->ckey};
		int rc;
		if (r->has_ckey) {
			rc = mdb_cursor_get(o->cur, &k, &o->val, MDB_SET_RANGE);
			if (!rc && k.mv_size == r->ckey_len &&
			    !memcmp(k.mv_data, r->ckey, k.mv_size))
				rc = mdb_cursor_get(o->cur, &k, &o->val, MDB_NEXT);
		} else {
			rc = mdb_cursor_get(o->cur, &k, &o->val, MDB_FIRST);
		}
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc) {
			set_err(r->err, "%s/p%u: cannot read: %s", r->from, i, mdb_strerror(rc));
			return store_map_err(rc);
		}
		o->key = k;
		r->heap[r->heap_n] = i;
		sift_up(r, r->heap_n++);
	}
	return 0;
}

static void close_new(struct new_shard *n)
{
	if (n->txn)
		mdb_txn_abort(n->txn);
	if (n->env)
		mdb_env_close(n->env);
	memset(n, 0, sizeof(*n));
}

static int open_new(struct resplit *r, unsigned p)
{
	struct new_shard *n = &r->new[p];
	char path[PATH_MAX], msg[DUR_ERR_LEN];
	MDB_txn *txn = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/p%u", r->to, p);
	if (mkdir(path, 0700) != 0) {
		rc = -errno;
		set_err(r->err, "%s: cannot make it: %s", path, strerror(-rc));
		return rc;
	}
	/* By default each new shard's share of the old data, twice over (keys
	 * spread evenly by their hash); grown when it fills. */
	n->map = r->map_size ? r->map_size : 2 * r->used / r->to_n + RESCALE_MAP_MIN;
	rc = mdb_env_create(&n->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(n->env, STORE_MAX_DBS);
	if (!rc)
		rc = mdb_env_set_mapsize(n->env, (size_t)n->map);
	if (!rc)
		rc = mdb_env_open(n->env, path, MDB_NOSYNC | MDB_NOLOCK, 0600);
	if (!rc)
		rc = mdb_txn_begin(n->env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, "state", MDB_CREATE, &n->state);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &n->meta);
	if (!rc) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn)
		mdb_txn_abort(txn);
	if (rc) {
		set_err(r->err, "%s: cannot make the shard: %s", path, mdb_strerror(rc));
		return store_map_err(rc);
	}
	if ((rc = dur_fsync_parent(path, msg)) != 0)
		set_err(r->err, "%s", msg);
	return rc;
}

static int commit_all(struct resplit *r, const MDB_val *last)
{
	for (unsigned p = 0; p < r->to_n; p++) {
		struct new_shard *n = &r->new[p];
		if (!n->txn)
			continue;
		int rc = mdb_txn_commit(n->txn);
		n->txn = NULL;
		if (rc) {
			set_err(r->err, "%s/p%u: cannot commit: %s%s", r->to, p, mdb_strerror(rc),
				rc == MDB_MAP_FULL ? " (raise [store] map_size)" : "");
			return store_map_err(rc);
		}
	}
	if (last) {
		memcpy(r->ckey, last->mv_data, last->mv_size);
		r->ckey_len = last->mv_size;
		r->has_ckey = 1;
		r->ckey_done = r->done;
	}
	return 0;
}

/* Shard p's map is full: its transaction is lost, so every shard goes back
 * to the checkpoint, with p's map doubled. */
static int grow_and_rewind(struct resplit *r, unsigned p)
{
	for (unsigned i = 0; i < r->to_n; i++) {
		if (r->new[i].txn)
			mdb_txn_abort(r->new[i].txn);
		r->new[i].txn = NULL;
	}
	struct new_shard *n = &r->new[p];
	n->map *= 2;
	int rc = mdb_env_set_mapsize(n->env, (size_t)n->map);
	if (rc) {
		set_err(r->err, "%s/p%u: cannot grow the map to %llu bytes: %s", r->to, p,
			(unsigned long long)n->map, mdb_strerror(rc));
		return store_map_err(rc);
	}
	log_info("re-split: the map of new shard %u was full: grown to %llu KiB, redoing from "
		 "the last commit (%llu keys done)",
		 p, (unsigned long long)(n->map >> 10), (unsigned long long)r->ckey_done);
	return position(r);
}

static void progress(struct resplit *r, uint64_t start, uint64_t *last_log)
{
	uint64_t now = now_ns();
	if (now - *last_log < RESCALE_PROGRESS_NS)
		return;
	*last_log = now;
	log_info("re-split in progress keys_done=%llu keys_total=%llu percent=%.1f seconds=%.1f",
		 (unsigned long long)r->done, (unsigned long long)r->total,
		 r->total ? 100.0 * (double)r->done / (double)r->total : 100.0,
		 (double)(now - start) / 1e9);
}

static int put_key(struct resplit *r, unsigned p, MDB_val *k, MDB_val *v)
{
	struct new_shard *n = &r->new[p];
	int rc = 0;
	if (!n->txn)
		rc = mdb_txn_begin(n->env, NULL, 0, &n->txn);
	if (!rc)
		rc = mdb_put(n->txn, n->state, k, v, MDB_APPEND);
	return rc;
}

static int merge(struct resplit *r)
{
	uint64_t start = now_ns(), last_log = start;
	unsigned pending = 0;
	MDB_val last = {0, NULL};
	int rc = position(r);

	while (!rc && r->heap_n) {
		struct old_shard *o = &r->old[r->heap[0]];
		unsigned p = partition_of(o->key.mv_data, o->key.mv_size, r->to_n);
		rc = put_key(r, p, &o->key, &o->val);
		if (rc == MDB_MAP_FULL) {
			pending = 0;
			rc = grow_and_rewind(r, p);
			continue;
		}
		if (rc == MDB_KEYEXIST) {
			set_err(
			    r->err,
			    "%s/p%u: key '%.*s' is in two old shards, or out of order: the state "
			    "is damaged",
			    r->from, r->heap[0], (int)o->key.mv_size, (const char *)o->key.mv_data);
			return -EINVAL;
		}
		if (rc) {
			set_err(r->err, "%s/p%u: cannot write: %s", r->to, p, mdb_strerror(rc));
			return store_map_err(rc);
		}
		r->done++;
		last = o->key;
		if (++pending >= RESCALE_COMMIT_KEYS) {
			pending = 0;
			if ((rc = commit_all(r, &last)) != 0)
				return rc;
			progress(r, start, &last_log);
		}
		rc = mdb_cursor_get(o->cur, &o->key, &o->val, MDB_NEXT);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			r->heap[0] = r->heap[--r->heap_n];
		} else if (rc) {
			set_err(r->err, "%s/p%u: cannot read: %s", r->from, r->heap[0],
				mdb_strerror(rc));
			return store_map_err(rc);
		}
		if (r->heap_n)
			sift_down(r, 0);
	}
	return rc ? rc : commit_all(r, NULL);
}

/* The new shard's meta, then its data on disk. */
static int finish_new(struct resplit *r, unsigned p)
{
	struct new_shard *n = &r->new[p];
	static const char *const names[] = {"partitions", "has_applied", "applied_seq",
					    "output_len", "layout"};
	const uint64_t vals[] = {r->to_n, (uint64_t)r->has_applied, r->applied, 0, r->layout};
	MDB_txn *txn;
	int rc = mdb_txn_begin(n->env, NULL, 0, &txn);
	for (size_t i = 0; !rc && i < sizeof(vals) / sizeof(vals[0]); i++)
		rc = store_put_u64(txn, n->meta, names[i], vals[i]);
	if (!rc && r->has_replay)
		rc = store_put_u64(txn, n->meta, "replay_applied", r->replay);
	if (!rc)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (!rc)
		rc = mdb_env_sync(n->env, 1);
	if (rc) {
		set_err(r->err, "%s/p%u: cannot write its meta or sync it: %s", r->to, p,
			mdb_strerror(rc));
		return store_map_err(rc);
	}
	/* data.mdb's name, made by mdb_env_open, is durable once pN is synced. */
	char path[PATH_MAX], msg[DUR_ERR_LEN];
	snprintf(path, sizeof(path), "%s/p%u", r->to, p);
	if ((rc = dur_fsync_dir(path, msg)) != 0)
		set_err(r->err, "%s", msg);
	return rc;
}

static int open_all_old(struct resplit *r)
{
	for (unsigned i = 0; i < r->from_n; i++) {
		struct old_shard *o = &r->old[i];
		int rc = open_old(o, r->from, i, r->from_n, r->err);
		if (rc)
			return rc;
		r->total += o->keys;
		r->used += o->used;
		if (o->has_applied && (!r->has_applied || o->applied > r->applied))
			r->applied = o->applied;
		r->has_applied |= o->has_applied;
		if (o->has_replay && (!r->has_replay || o->replay > r->replay))
			r->replay = o->replay;
		r->has_replay |= o->has_replay;
		if (o->layout + 1 > r->layout)
			r->layout = o->layout + 1;
	}
	return 0;
}

int rescale_shards(const char *from_state_dir, unsigned from_n, const char *to_state_dir,
		   unsigned to_n, uint64_t map_size, char err[RESCALE_ERR_LEN])
{
	struct resplit r = {.from = from_state_dir,
			    .to = to_state_dir,
			    .from_n = from_n,
			    .to_n = to_n,
			    .map_size = map_size,
			    .err = err};
	char msg[DUR_ERR_LEN];
	uint64_t start = now_ns();
	int rc, made = 0;

	if (!from_n || from_n > RESCALE_MAX_PARTS || !to_n || to_n > RESCALE_MAX_PARTS) {
		set_err(err, "re-split from %u to %u partitions: both must be 1..%d", from_n, to_n,
			RESCALE_MAX_PARTS);
		return -EINVAL;
	}
	r.old = calloc(from_n, sizeof(*r.old));
	r.new = calloc(to_n, sizeof(*r.new));
	r.heap = calloc(from_n, sizeof(*r.heap));
	if (!r.old || !r.new || !r.heap) {
		set_err(err, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = open_all_old(&r)) != 0 || (rc = make_parent(to_state_dir, err)) != 0)
		goto out;
	if (mkdir(to_state_dir, 0700) != 0) {
		rc = -errno;
		set_err(err, "%s: cannot make it: %s%s", to_state_dir, strerror(-rc),
			rc == -EEXIST ? " (a re-split writes into a new directory)" : "");
		goto out;
	}
	made = 1;
	if ((rc = dur_fsync_parent(to_state_dir, msg)) != 0) {
		set_err(err, "%s", msg);
		goto out;
	}
	log_info("re-split starting from=%s from_partitions=%u to=%s to_partitions=%u keys=%llu",
		 from_state_dir, from_n, to_state_dir, to_n, (unsigned long long)r.total);
	for (unsigned p = 0; p < to_n && !rc; p++)
		rc = open_new(&r, p);
	if (!rc)
		rc = merge(&r);
	for (unsigned p = 0; p < to_n && !rc; p++)
		rc = finish_new(&r, p);
	if (rc)
		goto out;
	if ((rc = dur_fsync_dir(to_state_dir, msg)) != 0) {
		set_err(err, "%s", msg);
		goto out;
	}
	log_info("re-split done keys=%llu from_partitions=%u to_partitions=%u layout=%u "
		 "seconds=%.2f",
		 (unsigned long long)r.done, from_n, to_n, r.layout,
		 (double)(now_ns() - start) / 1e9);
out:
	for (unsigned i = 0; r.old && i < from_n; i++)
		close_old(&r.old[i]);
	for (unsigned p = 0; r.new &&p < to_n; p++)
		close_new(&r.new[p]);
	if (rc && made) {
		char ignored[RESCALE_ERR_LEN];
		remove_tree(to_state_dir, ignored);
	}
	free(r.old);
	free(r.new);
	free(r.heap);
	return rc;
}

/* ---- the swap in a data_dir ---- */

struct swap_paths {
	char dir[PATH_MAX], state[PATH_MAX], new_state[PATH_MAX], old_state[PATH_MAX];
};

static int swap_paths(const char *data_dir, struct swap_paths *sp, char *err)
{
	if (snprintf(sp->dir, sizeof(sp->dir), "%s", data_dir) >= (int)sizeof(sp->dir) ||
	    snprintf(sp->state, sizeof(sp->state), "%s/state", data_dir) >=
		(int)sizeof(sp->state) ||
	    snprintf(sp->new_state, sizeof(sp->new_state), "%s/state.new", data_dir) >=
		(int)sizeof(sp->new_state) ||
	    snprintf(sp->old_state, sizeof(sp->old_state), "%s/state.old", data_dir) >=
		(int)sizeof(sp->old_state)) {
		set_err(err, "%s: path too long", data_dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int rename_durably(const struct swap_paths *sp, const char *from, const char *to, char *err)
{
	char msg[DUR_ERR_LEN];
	if (rename(from, to) != 0) {
		int e = errno;
		set_err(err, "cannot rename %s to %s: %s", from, to, strerror(e));
		return -e;
	}
	int rc = dur_fsync_dir(sp->dir, msg);
	if (rc)
		set_err(err, "%s", msg);
	return rc;
}

/* state.new is durable whole before state is renamed away, so from then
 * on the new state is the one; before it, the old. */
static int swap_in(const struct swap_paths *sp, char *err)
{
	int rc = rename_durably(sp, sp->state, sp->old_state, err);
	if (!rc)
		rc = rename_durably(sp, sp->new_state, sp->state, err);
	if (!rc)
		rc = remove_tree(sp->old_state, err);
	return rc;
}

int rescale_data_dir(const char *data_dir, unsigned from_n, unsigned to_n, uint64_t map_size,
		     char err[RESCALE_ERR_LEN])
{
	struct swap_paths sp;
	int rc = swap_paths(data_dir, &sp, err);
	if (!rc)
		rc = remove_tree(sp.new_state, err); /* rescale_recover ran: nothing there */
	if (!rc)
		rc = rescale_shards(sp.state, from_n, sp.new_state, to_n, map_size, err);
	if (!rc)
		rc = swap_in(&sp, err);
	return rc;
}

int rescale_install(const char *from_state_dir, unsigned from_n, const char *data_dir,
		    unsigned to_n, uint64_t map_size, char err[RESCALE_ERR_LEN])
{
	struct swap_paths sp;
	int rc = swap_paths(data_dir, &sp, err);
	if (rc)
		return rc;
	if (exists(sp.state)) {
		set_err(err, "%s already holds a state: a savepoint goes into a new data_dir",
			data_dir);
		return -EEXIST;
	}
	rc = remove_tree(sp.new_state, err);
	if (!rc)
		rc = rescale_shards(from_state_dir, from_n, sp.new_state, to_n, map_size, err);
	if (!rc)
		rc = rename_durably(&sp, sp.new_state, sp.state, err);
	return rc;
}

int rescale_recover(const char *data_dir, enum rescale_recovery *what, char err[RESCALE_ERR_LEN])
{
	struct swap_paths sp;
	int rc = swap_paths(data_dir, &sp, err);
	*what = RESCALE_CLEAN;
	if (rc)
		return rc;
	int has_state = exists(sp.state), has_new = exists(sp.new_state),
	    has_old = exists(sp.old_state);
	if (has_new && !has_old) {
		/* Cut short before the swap: the old state is whole. */
		*what = RESCALE_ROLLED_BACK;
		return remove_tree(sp.new_state, err);
	}
	if (has_old && !has_state && !has_new) {
		/* Not a state the swap passes through: keep what is there. */
		*what = RESCALE_ROLLED_BACK;
		return rename_durably(&sp, sp.old_state, sp.state, err);
	}
	if (has_old) {
		*what = RESCALE_FINISHED;
		if (has_new && !has_state &&
		    (rc = rename_durably(&sp, sp.new_state, sp.state, err)) != 0)
			return rc;
		if (has_new && has_state) {
			set_err(
			    err,
			    "%s holds state, state.new and state.old: not what an interrupted "
			    "re-split leaves; move the two that are not the state aside by hand",
			    data_dir);
			return -EINVAL;
		}
		return remove_tree(sp.old_state, err);
	}
	return 0;
}

int rescale_output_path(char *buf, unsigned long size, const char *dir, unsigned p, unsigned layout)
{
	int n = layout > 1 ? snprintf(buf, size, "%s/p%u.g%u.tsv", dir, p, layout)
			   : snprintf(buf, size, "%s/p%u.tsv", dir, p);
	return n < 0 || (unsigned long)n >= size ? -ENAMETOOLONG : 0;
}
