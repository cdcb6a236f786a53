/* savepoint.h - a savepoint on disk: a consistent cut of every shard, the
 * config environment and the source position, taken from a running
 * instance (supervisor/savepoint.c) and read back to start a new data_dir
 * (ringmaster --from-savepoint) or checked (ringctl savepoint --verify).
 *
 *   DIR/manifest            text, one "name value" line each:
 *                             ringmaster-savepoint 1
 *                             partitions N
 *                             source TYPE             (file, generate, ...)
 *                             source_identity HEX     (data_dir's source_id)
 *                             position U64            (where the source resumes)
 *                             generation G            (of the tables)
 *                             handler VERSION         (16 hex digits, 0: a C handler)
 *                             created ISO-8601 UTC
 *                             shard P APPLIED_SEQ HAS_APPLIED OUTPUT_LEN REPLAY_APPLIED
 *                               (one per partition; REPLAY_APPLIED 0: none)
 *                             file RELPATH SIZE CHECKSUM
 *                               (config/data.mdb, state/pP/data.mdb)
 *                             end
 *   DIR/config/data.mdb     compacted copy of data_dir/config
 *   DIR/state/pP/data.mdb   compacted copy of data_dir/state/pP at the cut
 *
 * CHECKSUM is FNV-1a 64 of the whole file in 16 hex digits: it catches
 * corruption (a flipped byte, a cut file), it is no signature. */
#ifndef RM_SAVEPOINT_H
#define RM_SAVEPOINT_H

#include <stddef.h>
#include <stdint.h>

struct store_env;

#define SAVEPOINT_MAGIC "ringmaster-savepoint"
#define SAVEPOINT_VERSION 1
#define SAVEPOINT_ERR_LEN 1024
#define SAVEPOINT_REL_MAX 64 /* "state/p1023/data.mdb" */

struct savepoint_shard {
	uint64_t applied_seq, output_len, replay_applied; /* replay_applied 0: none */
	int has_applied;
};

struct savepoint_file {
	char rel[SAVEPOINT_REL_MAX]; /* relative to DIR */
	uint64_t size, sum;
};

struct savepoint_manifest {
	unsigned partitions;
	char source[32];
	uint64_t source_identity, position, generation, handler;
	char created[32];
	struct savepoint_shard *shards; /* [partitions] */
	struct savepoint_file *files;	/* [n_files]: the config's, then each shard's */
	size_t n_files;
};

/* FNV-1a 64 of len bytes, continuing from h (start with SAVEPOINT_FNV_SEED). */
#define SAVEPOINT_FNV_SEED 0xcbf29ce484222325ull
uint64_t savepoint_fnv(uint64_t h, const void *data, size_t len);

/* Size and FNV-1a 64 of a whole file. 0 or -errno. */
int savepoint_file_sum(const char *path, uint64_t *size, uint64_t *sum);

/* Write a compacted copy of env into dir/data.mdb (a new file; dir exists),
 * fsync it, and give its size and checksum. 0, or -errno with err filled
 * (names the file). The directory itself is not synced. */
int savepoint_copy_env(struct store_env *env, const char *dir, uint64_t *size, uint64_t *sum,
		       char *err, size_t err_len);

/* fsync the file at path and give its size and checksum (a copy made
 * otherwise: store_copy_start). 0, or -errno with err filled. */
int savepoint_sync_file(const char *path, uint64_t *size, uint64_t *sum, char *err, size_t err_len);

/* An empty manifest for `partitions` shards (calloc'ed: free with
 * savepoint_manifest_free). 0 or -ENOMEM. */
int savepoint_manifest_init(struct savepoint_manifest *m, unsigned partitions);
void savepoint_manifest_free(struct savepoint_manifest *m);

/* Write dir/manifest and fsync it. 0, or -errno with err filled. */
int savepoint_manifest_write(const char *dir, const struct savepoint_manifest *m, char *err,
			     size_t err_len);

/* Read and check the form of dir/manifest: every line known, every
 * partition's shard line and file there, the config's file there, the
 * `end` line last. 0 with *m filled, or -1 with err naming the file and
 * line. */
int savepoint_manifest_read(const char *dir, struct savepoint_manifest *m, char *err,
			    size_t err_len);

/* savepoint_manifest_read, then every file's size and checksum. 0 with *m
 * filled (m may be NULL), or -1 with err naming the bad file. */
int savepoint_verify(const char *dir, struct savepoint_manifest *m, char *err, size_t err_len);

/* Remove what a savepoint of `partitions` shards may hold under dir (its
 * known files and directories, nothing else), then dir if empty. For a
 * savepoint that failed half way. */
void savepoint_remove(const char *dir, unsigned partitions);

#endif
