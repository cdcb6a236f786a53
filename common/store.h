/* store.h - ringmaster's LMDB storage: the config environment and the state
 * shards (store.c: environments and transactions; store_config.c: the
 * config environment; store_shard.c: the shards).
 *
 *   data_dir/config     one environment; the supervisor is its only writer.
 *                       A database per reference table ("t.NAME") plus "meta"
 *                       (generation, partitions, source watermark, ...).
 *   data_dir/state/pN   one environment per partition; worker N is its only
 *                       writer. Database "state" (key -> value) and "meta"
 *                       (partitions, applied_seq, output_len, and
 *                       replay_applied: the highest replay seq applied).
 *
 * Every environment is opened after fork by the process that uses it; no
 * handle crosses a fork. Every function that can fail returns 0 or a negative
 * errno-style code and, where it takes `err`, leaves a message there that
 * names the file or table involved. LMDB errors map to: MDB_NOTFOUND ->
 * -ENOENT, MDB_MAP_FULL -> STORE_MAP_FULL (-EFBIG: the map is too small,
 * grow it; -ENOSPC means the disk is full), MDB_BAD_VALSIZE -> -EINVAL, other LMDB
 * codes -EIO (message has mdb_strerror); system errors LMDB passes up
 * (ENOENT, EACCES, ENOMEM, ...) come back as -errno.
 *
 * u64 values in "meta" databases are 8 bytes, little-endian.
 *
 * An environment has at most one open transaction at a time (LMDB allows a
 * thread one): beginning a second gives -EBUSY.
 */
#ifndef RM_STORE_H
#define RM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <errno.h>

#define STORE_MAP_FULL (-EFBIG)

struct cfg;
struct store_env; /* an environment plus its DBI handles (opened once) */
struct store_txn; /* a transaction on one environment */

struct store_val {
	const void *data; /* points into the map: valid until the txn ends */
	size_t len;
};

enum store_sync { STORE_SYNC_NONE, STORE_SYNC_PERIODIC, STORE_SYNC_BATCH };

#define STORE_ERR_LEN 512

/* Longest key LMDB takes (its default MDB_MAXKEYSIZE): table and state keys
 * must be 1..STORE_KEY_MAX bytes. */
#define STORE_KEY_MAX 511

/* ---- config environment ---- */

/* Open (creating data_dir and data_dir/config if needed) the config
 * environment. `readonly` for workers and ringctl. Runs mdb_reader_check. */
int store_config_open(const char *data_dir, uint64_t map_size, int readonly, struct store_env **out,
		      char err[STORE_ERR_LEN]);

/* Parse every [table.NAME] TSV file of `cfg` (first column the key, the rest
 * of the line the value; blank lines and lines starting with '#' skipped) and
 * load them all in ONE write transaction: each table's database is emptied
 * and refilled, and the generation is bumped. A file that cannot be read or a
 * row without a key fails the whole load and changes nothing; every such
 * problem is appended to `errs` ("rules.tsv:12: empty key") up to errs_len.
 * On success *generation is the new generation.
 *
 * Also refused: a key longer than STORE_KEY_MAX, a key given twice in one
 * file ("rules.tsv:9: duplicate key 'x' (first on line 3)"). A line without
 * a tab is a key with an empty value; a trailing '\r' is dropped. Databases
 * of tables no longer configured are dropped in the same transaction. A full
 * map is grown (doubled) and the load redone. Errors: -EINVAL (a file),
 * -EROFS (readonly env), else as above. */
int store_config_load(struct store_env *env, const struct cfg *cfg, uint64_t *generation,
		      char *errs, size_t errs_len);

/* Check the table files of `cfg` without loading them (ringmaster -t). */
int store_config_check(const struct cfg *cfg, char *errs, size_t errs_len);

/* Read-only transaction on the config environment (a worker's batch).
 * End it with store_txn_abort. */
int store_config_read(struct store_env *env, struct store_txn **out);
uint64_t store_config_generation(struct store_txn *txn);
/* Look `key` up in table `table`. 0 found, -ENOENT absent (or no such table),
 * other negative on error. */
int store_table_get(struct store_txn *txn, const char *table, const void *key, size_t key_len,
		    struct store_val *val);

/* The live settings of the last load (those cfg.c's table marks live, the
 * [handler] params and the [kafka] properties), stored by store_config_load
 * in the same transaction as the tables, so a worker sees them together
 * with the generation they belong to: it is forked from a copy of the
 * configuration made at start (forksrv.h) and takes them from here.
 * `settings` (for cfg_live_unpack), `params` and `kafka` are
 * "name\0value\0" pairs, *_len bytes, pointing into the map: valid until the
 * txn ends. batch_max ... watchdog_ms are four of the settings, read out.
 * -ENOENT before the first load, -EIO when `settings` is malformed. */
struct store_live {
	uint32_t batch_max;
	int log_level;
	uint64_t stop_timeout_ms;
	uint64_t watchdog_ms;
	const char *settings;
	size_t settings_len;
	const char *params;
	size_t params_len;
	const char *kafka;
	size_t kafka_len;
};
int store_config_live(struct store_txn *txn, struct store_live *out);

/* A named blob in the config environment's meta database (a handler
 * version's script, under "handler/<version>"): put in a transaction of
 * its own; got in a read transaction, pointing into the map. 0 or a
 * negative error (-ENOENT when absent). */
int store_config_put_blob(struct store_env *env, const char *name, const void *data, size_t len);
int store_config_get_blob(struct store_txn *txn, const char *name, struct store_val *val);

/* Small named values in the config environment's "meta" database
 * (e.g. "watermark"), for the supervisor. get: -ENOENT if never put; it
 * reads inside the env's open read transaction if there is one. put: its own
 * write transaction (-EBUSY while another is open, -EROFS if readonly). */
int store_meta_get_u64(struct store_env *env, const char *name, uint64_t *v);
int store_meta_put_u64(struct store_env *env, const char *name, uint64_t v);
/* Several at once, in one write transaction: all or none. */
int store_meta_put_u64s(struct store_env *env, const char *const *names, const uint64_t *v,
			size_t n);
/* Values of any bytes (a spool's file records). get: copies at most `cap`
 * bytes into buf and sets *len to the value's whole length; -ENOENT if never
 * put. put: n of them in one write transaction, all or none; a NULL value
 * deletes its name. */
int store_meta_get(struct store_env *env, const char *name, void *buf, size_t cap, size_t *len);
int store_meta_put(struct store_env *env, size_t n, const char *const *names,
		   const void *const *vals, const size_t *lens);

/* ---- state shards ---- */

/* Open (creating) data_dir/state/p<partition>. The first open records
 * `partitions`; an open with another count fails with -EEXIST and a message:
 * "data_dir/state/p0 was made for 4 partitions, not 8: use partitions = 4,
 * or start with an empty data_dir". `readonly` for ringctl (no create; a
 * missing shard is -ENOENT; partitions = 0 skips the check). */
int store_shard_open(const char *data_dir, unsigned partition, unsigned partitions,
		     uint64_t map_size, enum store_sync sync, int readonly, struct store_env **out,
		     char err[STORE_ERR_LEN]);

/* What the last committed batch recorded (0, 0 for a new shard;
 * has_applied is 0 until the first commit). */
int store_shard_progress(struct store_env *shard, int *has_applied, uint64_t *applied_seq,
			 uint64_t *output_len);

/* The highest replay seq (replay.h) the shard applied: *has 0 when it
 * applied none. Kept apart from applied_seq: a batch records it with
 * store_shard_meta_put_u64(txn, "replay_applied", seq) before its commit. */
int store_shard_replay_applied(struct store_env *shard, int *has, uint64_t *seq);

/* Write transaction on a shard (the worker's batch); on a readonly shard a
 * read transaction (put, del and commit give -EROFS). */
int store_shard_begin(struct store_env *shard, struct store_txn **out);
/* Read-only transaction on a shard, readonly or not (ringctl state KEY):
 * store_state_get works in it; end it with store_txn_abort. */
int store_shard_read(struct store_env *shard, struct store_txn **out);
int store_state_get(struct store_txn *txn, const void *key, size_t key_len, struct store_val *val);
int store_state_put(struct store_txn *txn, const void *key, size_t key_len, const void *val,
		    size_t val_len);
/* -ENOENT when the key was not there. */
int store_state_del(struct store_txn *txn, const void *key, size_t key_len);
/* Put (present) or delete (not: -ENOENT when it was not there) keys given
 * in ascending order, in LMDB's (bytes, then shorter first), through one
 * transaction: the cursor steps from the last key to the next instead of
 * searching for it, which is most of a put when the keys are dense. Keys
 * out of order are still written right, only slower. */
int store_state_write_sorted(struct store_txn *txn, const void *key, size_t key_len,
			     const void *val, size_t val_len, int present);
/* Put a named u64 into the shard's "meta" database inside a batch's write
 * transaction, so that it commits (or not) with the batch (the Kafka
 * changelog position). Read it with store_meta_get_u64 on the shard.
 * -EROFS on a read transaction; STORE_MAP_FULL as a put. */
int store_shard_meta_put_u64(struct store_txn *txn, const char *name, uint64_t v);
/* Record applied_seq and output_len in the same transaction, then commit.
 * STORE_MAP_FULL when the map is full: the txn is gone; grow and redo the
 * batch. */
int store_shard_commit(struct store_txn *txn, uint64_t applied_seq, uint64_t output_len);
/* Commit a write transaction's state changes alone, recording no progress
 * (ringctl load-state). */
int store_shard_commit_state(struct store_txn *txn);
void store_txn_abort(struct store_txn *txn);

/* Double the map size (no transaction may be open in this process). The
 * env's own transaction, if still open after a put gave STORE_MAP_FULL, is aborted
 * first, so "put failed: grow, redo" needs no explicit abort. */
int store_grow(struct store_env *env, char err[STORE_ERR_LEN]);

/* Flush to disk (the periodic sync mode calls this every sync_interval). */
int store_sync(struct store_env *env);

/* Iterate a shard's state in key order (ringctl dump-state). The callback
 * returns non-zero to stop; that value is returned. Not while a transaction
 * of this shard is open (-EBUSY). */
typedef int (*store_iter_fn)(void *arg, const struct store_val *key, const struct store_val *val);
int store_state_foreach(struct store_env *shard, store_iter_fn fn, void *arg);

/* Write a compacted copy of the environment's data file to fd
 * (mdb_env_copyfd2 with MDB_CP_COMPACT: free pages left out), as of a read
 * transaction it takes itself: a consistent snapshot, while the owner of
 * the environment may go on writing in another process. The caller syncs
 * fd. 0 or -errno. */
int store_copy(struct store_env *env, int fd);

/* The same copy made by a thread, for a process whose loop must not wait
 * for it (the supervisor's savepoint): store_copy_start returns once the
 * copy's read transaction holds its snapshot, so the copy is the
 * environment as it was then, whatever this process writes next;
 * store_copy_finish waits for the copy, frees the job and returns what
 * store_copy would have. 0 or -errno (no job then). */
struct store_copy_job;
int store_copy_start(struct store_env *env, int fd, struct store_copy_job **out);
int store_copy_finish(struct store_copy_job *job);

void store_close(struct store_env *env);

#endif
