/* durable.h - what makes a file system change survive a power cut, and who
 * may make it.
 *
 * A new file or directory exists after a power cut only once the directory
 * that holds its name has been fsynced; a write survives only once its file
 * has been fsynced. These helpers do the fsyncs in the right order, and
 * every one of them reports a failure: an fsync that failed is never
 * retried on the same data (the kernel may have dropped the pages and
 * marked them clean), the caller gives up instead.
 *
 * Locks are POSIX record locks (fcntl F_SETLK) on a small file: they are not
 * inherited by fork(), they vanish with the process that held them (a
 * SIGKILL included), and F_GETLK names the pid that holds one.
 *
 * Functions return 0 or a negative errno and, where they take `err`, leave
 * a message there that names the path. */
#ifndef RM_DURABLE_H
#define RM_DURABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DUR_ERR_LEN 1024

/* mkdir -p with `mode` for each directory it creates; after creating one it
 * fsyncs the directory that holds it, so the whole path survives a power
 * cut. */
int dur_mkdir_p(const char *path, mode_t mode, char err[DUR_ERR_LEN]);

/* fsync the directory `dir` (so names created in it are durable). */
int dur_fsync_dir(const char *dir, char err[DUR_ERR_LEN]);

/* fsync the directory that holds `path`. */
int dur_fsync_parent(const char *path, char err[DUR_ERR_LEN]);

/* Take a write lock on `path` (created 0600 if missing) and write our pid
 * into it. 0 with *fd set (keep it open: closing it releases the lock);
 * -EWOULDBLOCK when another process holds it (*holder = its pid, or 0 when
 * unknown); another negative errno on an error. */
int dur_lock(const char *path, int *fd, pid_t *holder, char err[DUR_ERR_LEN]);

/* The pid holding a lock on `path`, 0 when nobody does (or the file does
 * not exist), negative errno on an error. Takes no lock itself. */
pid_t dur_lock_holder(const char *path);

/* Owner marks: the output and dead-letter files a data_dir writes are
 * marked, before anything is written to them, by a file `.NAME.owner`
 * beside them that names the data_dir (its random id and its path). Bind
 * `path` to data_dir `id`: 0 when it is ours (marked so now or before);
 * -EEXIST with a message when it belongs to another data_dir, or exists
 * non-empty without a mark (so nothing of ours wrote it). The file itself
 * is created (empty, with `mode`) when missing, and the mark and the file's name are
 * durable before this returns. */
int dur_own_file(const char *path, mode_t mode, uint64_t id, const char *data_dir,
		 char err[DUR_ERR_LEN]);

/* A 64-bit digest of the running kernel's boot id
 * (/proc/sys/kernel/random/boot_id), or of $RINGMASTER_BOOT_ID when set
 * (the tests' way to fake a reboot). Never 0; 1 when unknown. */
uint64_t dur_boot_id(void);

#endif
