/* worker.h - one worker process: owns one partition's ring (consumer side),
 * its state shard (sole writer) and its output file. */
#ifndef RM_WORKER_H
#define RM_WORKER_H

#include <sys/types.h>

#include "ring.h"
#include "shm.h"

struct cfg;

struct wrk_args {
	const struct cfg *cfg;
	unsigned partition;
	struct ring *ring;
	struct shm_worker *stats;
	const struct shm_sup *sup; /* the supervisor's figures: is it idle? */
	pid_t supervisor;	   /* its pid: the worker's parent once reparented (forksrv.h) */
	int handler_fd;		   /* the .so the supervisor checked (handler_open), or -1 */
};

/* Exit status of a worker whose fsync failed: its partition is failed, not
 * restarted (a new worker would read pages the kernel may never write). */
#define WRK_EXIT_SYNC_FAILED 74

/* Exit status of a worker that cannot start for lack of file descriptors
 * (EMFILE, ENFILE): a new one would fare no better, so the supervisor
 * stops and exits with the same status (EX_OSERR). */
#define WRK_EXIT_NO_FDS 71

/* Exit status of a worker whose handler failed on fail_after events in a
 * row without dying (Lua errors, dead-lettered): it committed the events
 * before the last one, and its partition is failed like after fail_after
 * poison events, until `ringctl restart-worker`. */
#define WRK_EXIT_HANDLER_FAILED 75

/* Exit status of a worker whose handler version, brought by a reload,
 * did not start (its init failed) at its barrier or at its start: it
 * committed every event before the barrier, and its partition is failed
 * (FAIL_HANDLER) until `ringctl restart-worker`. */
#define WRK_EXIT_SWITCH_FAILED 76

/* Exit status of a worker that reached a reload's barrier for a new .so:
 * it committed every event before it and stops, and the supervisor forks
 * its next worker at once, on the new library. */
#define WRK_EXIT_RELOAD 77

/* The body of a forked worker. Returns the process exit status:
 * 0 after the ring was closed and drained (or after SIGTERM, drained),
 * WRK_EXIT_SYNC_FAILED when an fsync failed, WRK_EXIT_NO_FDS when it could
 * not start for lack of file descriptors, WRK_EXIT_HANDLER_FAILED after
 * fail_after handler failures in a row, WRK_EXIT_SWITCH_FAILED when a
 * reload's handler version did not start, WRK_EXIT_RELOAD at a barrier
 * for a new .so, 1 on another error (logged).
 * Never returns into the supervisor's code: the caller passes the value to
 * _exit(). */
int wrk_main(const struct wrk_args *a);

#endif
