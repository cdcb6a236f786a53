/* lifecycle.h - the workers' lives, seen from the supervisor: fork, reap,
 * restart with exponential backoff, poison events, the watchdog, and the
 * per-worker rates the control socket shows. */
#ifndef RM_LIFECYCLE_H
#define RM_LIFECYCLE_H

#include <stdint.h>

struct sup;

/* Fork worker p now. Returns 0, or -1 (logged; it is retried with backoff). */
int lc_spawn(struct sup *s, unsigned p);

/* Reap exited workers and schedule their restarts; fork those whose backoff
 * has passed; kill hung ones (watchdog); sample rates once a second.
 * `closing`: the rings are closed, so a worker that exits 0 with its ring
 * drained is done rather than restarted. */
void lc_supervise(struct sup *s, int closing);

/* How many workers are running or waiting to be restarted. */
unsigned lc_alive(const struct sup *s);

/* Take each worker's processed count, for its events/s (sup_worker_rate):
 * once a second. */
void lc_sample_rates(struct sup *s, uint64_t now);

/* SIGKILL every running worker and cancel pending restarts. */
void lc_kill_all(struct sup *s, const char *why);

/* The same for worker p alone. */
void lc_kill(struct sup *s, unsigned p, const char *why);

/* Mark partition p failed for `why`: its worker is told to stop (SIGTERM:
 * it commits and exits) and is not restarted; `ringctl restart-worker`
 * resumes it. */
void lc_fail(struct sup *s, unsigned p, int why); /* enum sup_fail */

/* Kafka assignments. lc_acquire: partition p (WK_UNOWNED) is ours now:
 * empty its ring, mark it restoring (and neither lost nor fenced) in
 * shared memory and fork its worker (kafka_generation is the caller's).
 * A worker that ends fenced is not restarted: WK_STOPPED.
 * Returns what lc_spawn returns, or -1 when p is not unowned.
 * lc_release: it is no longer ours: close its ring and ask the worker
 * (SIGTERM) to commit the batch in hand and exit (a restore in progress is
 * cut short); it then becomes WK_UNOWNED, whatever its exit, and is not
 * restarted. */
int lc_acquire(struct sup *s, unsigned p);
void lc_release(struct sup *s, unsigned p);

#endif
