/* store_lmdb.h - what the three files of the store share, and nothing
 * outside them uses: the environment and transaction structs behind the
 * opaque handles of store.h, and the LMDB helpers of store.c.
 *
 *   store.c          environments, transactions, meta values (the core)
 *   store_config.c   the config environment: tables, live settings, generation
 *   store_shard.c    the state shards
 *
 * Helpers that say "mdb code" return LMDB's own codes (MDB_NOTFOUND,
 * MDB_MAP_FULL, ...) or a positive errno, as LMDB does; store_map_err turns
 * one into what store.h promises. The others return store.h's codes.
 */
#ifndef RM_STORE_LMDB_H
#define RM_STORE_LMDB_H

#include <limits.h>
#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_MAX_DBS 256

enum env_kind { ENV_CONFIG, ENV_SHARD };

/* A table name's DBI in this process, or the generation in which it was
 * looked up and found absent (store_config.c). */
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
	/* A shard write transaction's cursor on "state", for puts: keys put in
	 * order land on the page it is on, with no descent from the root. */
	MDB_cursor *state_cur;
	/* store_state_write_sorted: the cursor is on the last key it wrote,
	 * and the next comes after it. */
	int state_cur_sorted;
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

/* A message into err (STORE_ERR_LEN bytes; NULL: none wanted). */
void store_set_err(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An mdb code as store.h's negative codes (MDB_NOTFOUND -> -ENOENT, ...). */
int store_map_err(int rc);

/* A u64 in a "meta" database (8 bytes, little-endian). mdb codes. */
int store_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *v);
int store_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t v);

/* A new, unopened environment at the path `fmt` makes. */
int store_env_new(enum env_kind kind, int readonly, struct store_env **out, char *err,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Make e->path, or for a readonly open check that it is there. */
int store_env_dir(struct store_env *e, char *err);

/* Create and open the MDB_env at e->path. */
int store_env_open(struct store_env *e, uint64_t map_size, unsigned flags, unsigned max_readers,
		   char *err);

/* Open (creating unless readonly) the named databases in one transaction;
 * `check` then runs in it before the commit that makes the handles last. */
typedef int (*store_open_check_fn)(struct store_env *e, MDB_txn *txn, void *arg, char *err);
int store_open_dbis(struct store_env *e, const char *const *names, MDB_dbi *const *dbis, size_t n,
		    store_open_check_fn check, void *arg, char *err);

/* Begin an LMDB transaction (MDB_RDONLY in flags: reusing the spare one).
 * mdb code. */
int store_begin(struct store_env *e, unsigned flags, MDB_txn **txn);

/* End a read transaction begun with store_begin; opened_dbi: it opened a
 * DBI handle, which must outlive it. */
void store_end_read(struct store_env *e, MDB_txn *txn, int opened_dbi);

/* Close the transaction's state cursor, before it ends. */
void store_txn_drop_cursor(struct store_txn *t);

/* Start the environment's own struct store_txn (-EBUSY when it is open). */
int store_txn_start(struct store_env *e, int readonly, struct store_txn **out);

/* Run `fn` inside the environment's open read transaction, or a short one
 * of its own. mdb code. */
int store_with_read(struct store_env *e, int (*fn)(MDB_txn *txn, void *arg), void *arg);

/* Run `fn` in a write transaction and commit; when the map fills, grow it
 * and run `fn` again from scratch (it must be repeatable). mdb code. */
int store_with_write(struct store_env *e, int (*fn)(MDB_txn *txn, void *arg), void *arg, char *err);

#endif
