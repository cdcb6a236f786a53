/* owner.h - one owner for a data_dir and for every file it writes.
 *
 *   data_dir/lock              held by the supervisor for its whole life: a
 *                              second instance on the data_dir refuses (73)
 *   data_dir/state/pN/owner.lock  held by the worker writing shard N
 *   .NAME.owner beside each output and dead-letter file: the data_dir that
 *                              writes it (see dur_own_file)
 *
 * A supervisor killed alone leaves its workers running: they drain their
 * rings, commit and exit. A new supervisor takes the data_dir lock (the dead
 * one's is gone) and then waits for each shard lock still held by such a
 * worker before it forks its own, so a shard never has two writers. */
#ifndef RM_OWNER_H
#define RM_OWNER_H

struct sup;

/* Lock data_dir/lock. -1 (logged, naming the holder's pid) when another
 * ringmaster holds it. */
int own_lock_data_dir(struct sup *s);

/* Wait until no process holds a shard lock (a worker of an earlier
 * instance), logging each one waited for. -1 when a stop was asked meanwhile
 * or a lock cannot be read. */
int own_wait_for_orphans(struct sup *s);

/* With the config environment open: give the data_dir its id (the first
 * time), refuse a data_dir left by sync = none across a reboot unless
 * --force-recover, and bind the output and dead-letter files to this
 * data_dir. Returns 0, or the exit status to give up with (logged). */
int own_files(struct sup *s);

/* A clean end: every worker synced and exited 0. With sync = none, record
 * that the data_dir is safe to resume after a reboot. */
void own_clean_exit(struct sup *s);

#endif
