/* rescale.h - re-split the state shards of a data directory (or of a
 * savepoint) for another partition count.
 *
 * A key's partition is partition_of(key, count), so changing the count
 * moves keys between shards. A re-split streams every key of the N old
 * shards (read-only, through cursors, merged in key order) into M new
 * shards, each key into the shard partition_of(key, M) names, committing
 * every few thousand keys: memory stays bounded whatever the state's size.
 * Every new shard's meta gets: partitions = M; has_applied, applied_seq =
 * the highest over the old shards; replay_applied = the highest over the old
 * shards (when any has one); output_len = 0 (a new generation of output
 * files starts empty); layout = the old shards' layout + 1 (the output
 * file generation: 1, the default when absent, writes pN.tsv; G > 1 writes
 * pN.gG.tsv).
 *
 * In a data_dir the swap is atomic: the new shards are written to
 * data_dir/state.new and made durable, then state is renamed to state.old,
 * state.new to state, and state.old is removed. A crash anywhere leaves a
 * set of directories rescale_recover() maps back to exactly one state,
 * the old or the new.
 *
 * Functions return 0 or a negative errno-style code and leave a message in
 * `err` (RESCALE_ERR_LEN bytes) that names the shard or directory.
 * Progress (keys done of the total) goes to the log about once a second.
 */
#ifndef RM_RESCALE_H
#define RM_RESCALE_H

#include <stdint.h>

#define RESCALE_ERR_LEN 1024

/* What the shards of a state directory hold, read without writing. */
struct rescale_info {
	unsigned partitions;	/* the count the shards were made for */
	unsigned layout;	/* output file generation (1 when never re-split) */
	int has_applied;	/* any shard applied an event */
	uint64_t max_applied;	/* the highest applied_seq, when has_applied */
	unsigned max_applied_p; /* the shard it came from */
	uint64_t keys;		/* keys over all shards */
};

/* Read state_dir/p0 .. p(N-1), N being what p0 says it was made for.
 * -ENOENT when state_dir/p0 does not exist (no state yet); -EINVAL when a
 * shard disagrees about the count or one is missing. */
int rescale_inspect(const char *state_dir, struct rescale_info *info, char err[RESCALE_ERR_LEN]);

/* Re-split the from_n shards of from_state_dir (pP/data.mdb, opened
 * read-only and without a lock file, so a savepoint on a read-only file
 * system works: nothing may write them meanwhile) into to_n new shards in
 * to_state_dir, which must not exist; it is made (0700), and it and every
 * file in it are fsynced before this returns. map_size is a new shard's
 * first map size, 0 for twice its share of the old shards' data; a map that
 * fills is doubled and the re-split goes back to its last commit. The
 * shards' keys and meta are as the top of this file says; the log has
 * the progress, the count of keys and the time taken. On failure to_state_dir is
 * removed again. from_n, to_n: 1..1024. -EEXIST when to_state_dir exists;
 * -EINVAL when an old shard was made for another count than from_n, or a
 * key is in two old shards. */
int rescale_shards(const char *from_state_dir, unsigned from_n, const char *to_state_dir,
		   unsigned to_n, uint64_t map_size, char err[RESCALE_ERR_LEN]);

/* Re-split data_dir/state, made for from_n partitions, into to_n, and put
 * the result in place atomically (see above). The caller holds the
 * data_dir's lock and no worker runs. */
int rescale_data_dir(const char *data_dir, unsigned from_n, unsigned to_n, uint64_t map_size,
		     char err[RESCALE_ERR_LEN]);

/* Re-split from_state_dir (a savepoint's state/, from_n shards) into
 * data_dir/state for to_n partitions, for a new data_dir: data_dir/state
 * must not exist (-EEXIST). Written to data_dir/state.new, renamed to
 * data_dir/state once durable; a crash before the rename leaves
 * state.new, which the next start removes (rescale_recover: rolled back,
 * no state), so write the config environment after this returns. */
int rescale_install(const char *from_state_dir, unsigned from_n, const char *data_dir,
		    unsigned to_n, uint64_t map_size, char err[RESCALE_ERR_LEN]);

enum rescale_recovery {
	RESCALE_CLEAN,	     /* nothing was interrupted */
	RESCALE_ROLLED_BACK, /* the new state was incomplete: removed, the old kept */
	RESCALE_FINISHED,    /* the new state was durable: put in place, the old removed */
};

/* At every start, before the shards are opened: put right what a re-split
 * interrupted by a crash left in data_dir (*what says which). */
int rescale_recover(const char *data_dir, enum rescale_recovery *what, char err[RESCALE_ERR_LEN]);

/* The output file of partition p in `dir` for layout generation `layout`:
 * DIR/pP.tsv for 0 and 1, DIR/pP.gG.tsv after. -ENAMETOOLONG when it does
 * not fit in `size`. */
int rescale_output_path(char *buf, unsigned long size, const char *dir, unsigned p,
			unsigned layout);

#endif
