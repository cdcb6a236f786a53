/* forksrv.h - the fork server: a small process, forked by the supervisor at
 * start before any library has started a thread, that forks every worker
 * (the first ones and every restart) on the supervisor's request.
 *
 * Why: fork() copies only the calling thread, and a lock another thread
 * held at that moment stays locked in the child for ever. glibc does not
 * reset every internal lock at fork (getaddrinfo's, in __check_pf), nor
 * does libasan its allocator's; the supervisor runs librdkafka's and
 * libzmq's threads, so a worker forked from it could hang at its first
 * getaddrinfo or malloc. The fork server never runs a thread.
 *
 * A worker is still the supervisor's child: the supervisor is a subreaper
 * (PR_SET_CHILD_SUBREAPER), the server forks an intermediate process that
 * forks the worker and exits at once, and the worker is reparented to the
 * supervisor. So waitpid, SIGCHLD, restarts and PR_SET_PDEATHSIG work as
 * for a direct child (worker.c sets the latter once its parent is the
 * supervisor).
 *
 * The server's memory is a copy of the supervisor's at start. What changes
 * at run time reaches new workers otherwise: each request carries the
 * supervisor's log destination and the handler .so the partition runs
 * (SCM_RIGHTS), and a worker takes the
 * settings a reload may have changed from the config environment
 * (store_config_live). The rest of what a worker takes from its parent is
 * fixed for the run ([ringmaster] partitions, data_dir, ...: a reload
 * reports them as needing a restart) or lives in the shared mapping.
 *
 * The server dies with the supervisor (PR_SET_PDEATHSIG SIGKILL, and EOF
 * on its socket), ignores the signals the supervisor handles (a terminal's
 * Ctrl-C reaches the whole process group), keeps no descriptor but its
 * socket and standard input, output and error, and shows in ps as
 * "ringmaster: fork server (NAME)". Once it is gone no worker can be
 * started safely: the supervisor stops (lifecycle.c). */
#ifndef RM_FORKSRV_H
#define RM_FORKSRV_H

#include <stdint.h>
#include <sys/types.h>

struct cfg;
struct shm;

/* How long the supervisor waits for the server to answer a request. */
#define FS_REPLY_TIMEOUT_MS 5000

struct forksrv {
	pid_t pid;    /* 0 when there is none */
	int fd;	      /* the supervisor's end of the socket, -1 when none */
	uint32_t seq; /* of the last request: a late answer to an earlier one is told apart */
	int lost;     /* it died: no worker can be started any more */
};

/* Make the caller a subreaper and fork the server, which forks workers of
 * `cfg` (the caller's; the server keeps its copy) on the rings in `shm`,
 * handing them `handler_fd` (the checked handler .so, or -1: safety.h).
 * The caller must not have started a thread yet. Returns 0, or -errno. */
int fs_start(struct forksrv *fs, const struct cfg *cfg, struct shm *shm, int handler_fd);

/* Have the server fork the worker of partition p, logging to log_fd (a
 * descriptor of the caller's, passed along; < 0: the server's standard
 * error) and loading the handler .so open on handler_fd (passed along
 * too, as a reload may have opened a new one; < 0: the one fs_start
 * got), and wait up to FS_REPLY_TIMEOUT_MS for its pid. The worker is
 * the caller's child (reparented) by the time it starts working. Returns
 * the pid, or -EPIPE when the server is gone (fs->lost is set), -ETIMEDOUT
 * when it did not answer in time (a worker it starts later is killed when
 * its answer comes in, see fs_spawn), or the -errno of its failed fork. */
pid_t fs_spawn(struct forksrv *fs, unsigned p, int log_fd, int handler_fd);

/* pid (from waitpid) was the server: it is gone (fs->lost is set).
 * Returns 1 if so, 0 when pid is another process. */
int fs_reaped(struct forksrv *fs, pid_t pid);

/* Close the socket, so the server exits, and reap it (SIGKILL after a
 * second). Nothing to do when there is none. */
void fs_stop(struct forksrv *fs);

#endif
