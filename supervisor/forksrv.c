/* forksrv.c - see forksrv.h.
 *
 * The protocol, on an AF_UNIX SOCK_SEQPACKET pair (one message, one
 * request or answer, never split): the supervisor sends {seq, partition,
 * fds} with its log descriptor and the handler's attached (fds says which
 * came); the server answers {seq, partition, pid or errno}. The server handles one request at a
 * time: it forks an intermediate process, which forks the worker, writes the worker's pid into a
 * pipe and exits; the server reaps it and answers. */
#include "forksrv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "proctitle.h"
#include "shm.h"
#include "worker.h"

#define FS_LOG_FD 1u	 /* the request carries a log descriptor */
#define FS_HANDLER_FD 2u /* ... and the handler's (after it, when both) */

struct fs_request {
	uint32_t seq;
	uint32_t partition;
	uint32_t fds; /* FS_LOG_FD | FS_HANDLER_FD */
};

struct fs_reply {
	uint32_t seq;
	uint32_t partition;
	int32_t pid; /* > 0: the worker; else -errno */
};

/* The supervisor handles these (or, for SIGUSR1, its workers ignore it):
 * the server ignores them and its workers start with the defaults. */
static const int handled_signals[] = {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGPIPE};

static void set_handled_signals(void (*disposition)(int))
{
	for (size_t i = 0; i < sizeof(handled_signals) / sizeof(handled_signals[0]); i++)
		signal(handled_signals[i], disposition);
}

/* Every descriptor but 0, 1, 2, `keep` and `keep2` (the checked handler,
 * which workers dlopen): the server holds none of the supervisor's files,
 * stores or sockets, and neither do its workers. Those at or above the soft
 * limit are not ours (valgrind's). A pass over /proc/self/fd may miss
 * entries while they are closed: again until one closes nothing. */
static void close_other_fds(int keep, int keep2)
{
	struct rlimit rl;
	long max = 1L << 30;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = (long)rl.rlim_cur;
	for (int closed = 1; closed;) {
		closed = 0;
		DIR *d = opendir("/proc/self/fd");
		if (!d)
			return;
		struct dirent *e;
		while ((e = readdir(d))) {
			char *end;
			long fd = strtol(e->d_name, &end, 10);
			if (end == e->d_name || *end || fd < 3 || fd == keep || fd == keep2 ||
			    fd == dirfd(d) || fd >= max)
				continue;
			close((int)fd);
			closed = 1;
		}
		closedir(d);
	}
}

/* In the worker: the supervisor's log destination, default signals, then
 * the worker's own life (it never returns here). */
static void __attribute__((noreturn)) run_worker(const struct cfg *cfg, struct shm *shm, unsigned p,
						 int log_fd, pid_t supervisor, int handler_fd)
{
	set_handled_signals(SIG_DFL);
	if (log_fd >= 0)
		log_use_fd(log_fd);
	log_follow(&shm->workers[p].log_generation, cfg->log_file);
	struct wrk_args a = {.cfg = cfg,
			     .partition = p,
			     .ring = shm->rings[p],
			     .stats = &shm->workers[p],
			     .sup = shm->sup,
			     .supervisor = supervisor,
			     .handler_fd = handler_fd};
	_exit(wrk_main(&a));
}

/* Fork worker p by way of an intermediate process; returns its pid or
 * -errno. */
static pid_t spawn(int sock, const struct cfg *cfg, struct shm *shm, unsigned p, int log_fd,
		   pid_t supervisor, int handler_fd)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return -errno;
	pid_t mid = fork();
	if (mid < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return -e;
	}
	if (mid == 0) {
		close(pipefd[0]);
		pid_t pid = fork();
		if (pid == 0) {
			close(pipefd[1]);
			close(sock);
			run_worker(cfg, shm, p, log_fd, supervisor, handler_fd);
		}
		int32_t v = pid < 0 ? -errno : pid;
		_exit(write(pipefd[1], &v, sizeof(v)) == (ssize_t)sizeof(v) ? 0 : 1);
	}
	close(pipefd[1]);
	int32_t v;
	ssize_t n;
	do
		n = read(pipefd[0], &v, sizeof(v));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
		;
	return n == (ssize_t)sizeof(v) ? v : -EIO;
}

/* One request, and the descriptors that came with it (-1 if none).
 * Returns what recvmsg returns. */
static ssize_t recv_request(int sock, struct fs_request *rq, int *log_fd, int *handler_fd)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	int fds[2] = {-1, -1};
	size_t n_fds = 0;
	struct iovec iov = {rq, sizeof(*rq)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	*log_fd = *handler_fd = -1;
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len <= CMSG_LEN(sizeof(fds))) {
			n_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(c), n_fds * sizeof(int));
		}
	size_t i = 0;
	if ((rq->fds & FS_LOG_FD) && i < n_fds)
		*log_fd = fds[i++];
	if ((rq->fds & FS_HANDLER_FD) && i < n_fds)
		*handler_fd = fds[i++];
	for (; i < n_fds; i++)
		close(fds[i]); /* not asked for */
	return n;
}

static void __attribute__((noreturn))
serve(int sock, const struct cfg *cfg, struct shm *shm, pid_t supervisor, int handler_fd)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	set_handled_signals(SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != supervisor)
		_exit(EX_OSERR); /* the supervisor sees it and stops */
	log_use_fd(-1);		 /* its records go to stderr: it writes none but this */
	close_other_fds(sock, handler_fd);
	log_init("fork-server", cfg->log_level);
	log_set_format(cfg->log_format);
	proctitle_set("rm-forksrv", "ringmaster: fork server (%s)", cfg->name);
	for (;;) {
		struct fs_request rq = {0};
		int log_fd, new_handler_fd;
		ssize_t n = recv_request(sock, &rq, &log_fd, &new_handler_fd);
		if (n == 0)
			_exit(0); /* the supervisor closed its end, or is gone */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("cannot read a request from the supervisor: %s", strerror(errno));
			_exit(EX_OSERR);
		}
		struct fs_reply rp = {rq.seq, rq.partition, -EINVAL};
		/* A reload may have brought a new .so: the request names the
		 * one this worker loads. */
		if (n == (ssize_t)sizeof(rq) && rq.partition < cfg->partitions)
			rp.pid = spawn(sock, cfg, shm, rq.partition, log_fd, supervisor,
				       new_handler_fd >= 0 ? new_handler_fd : handler_fd);
		if (log_fd >= 0)
			close(log_fd);
		if (new_handler_fd >= 0)
			close(new_handler_fd);
		if (send(sock, &rp, sizeof(rp), MSG_NOSIGNAL) != (ssize_t)sizeof(rp))
			_exit(errno == EPIPE || errno == ECONNRESET ? 0 : EX_OSERR);
	}
}

int fs_start(struct forksrv *fs, const struct cfg *cfg, struct shm *shm, int handler_fd)
{
	int sv[2];
	*fs = (struct forksrv){.fd = -1};
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
		return -errno;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return -errno;
	pid_t supervisor = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		serve(sv[1], cfg, shm, supervisor, handler_fd);
	}
	close(sv[1]);
	fs->pid = pid;
	fs->fd = sv[0];
	return 0;
}

/* Attach the descriptors rq->fds names to msg. */
static void attach_fds(struct msghdr *msg, void *buf, size_t len, const struct fs_request *rq,
		       int log_fd, int handler_fd)
{
	int fds[2];
	size_t n = 0;
	if (rq->fds & FS_LOG_FD)
		fds[n++] = log_fd;
	if (rq->fds & FS_HANDLER_FD)
		fds[n++] = handler_fd;
	msg->msg_control = n ? buf : NULL;
	msg->msg_controllen = n ? CMSG_SPACE(n * sizeof(int)) : 0;
	if (!n)
		return;
	memset(buf, 0, len);
	struct cmsghdr *c = CMSG_FIRSTHDR(msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
}

static int send_request(struct forksrv *fs, struct fs_request *rq, int log_fd, int handler_fd)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)rq, sizeof(*rq)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	rq->fds = (log_fd >= 0 ? FS_LOG_FD : 0) | (handler_fd >= 0 ? FS_HANDLER_FD : 0);
	attach_fds(&msg, ctl.buf, sizeof(ctl.buf), rq, log_fd, handler_fd);
	for (;;) {
		ssize_t n = sendmsg(fs->fd, &msg, MSG_NOSIGNAL);
		if (n == (ssize_t)sizeof(*rq))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EBADF && (rq->fds & FS_LOG_FD)) {
			/* No log descriptor to pass (stderr closed): the server's. */
			rq->fds &= ~FS_LOG_FD;
			attach_fds(&msg, ctl.buf, sizeof(ctl.buf), rq, -1, handler_fd);
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
}

static void gone(struct forksrv *fs)
{
	fs->lost = 1;
	if (fs->fd >= 0)
		close(fs->fd);
	fs->fd = -1;
}

pid_t fs_spawn(struct forksrv *fs, unsigned p, int log_fd, int handler_fd)
{
	if (fs->lost || fs->fd < 0)
		return -EPIPE;
	struct fs_request rq = {++fs->seq, p, 0};
	int rc = send_request(fs, &rq, log_fd, handler_fd);
	if (rc == -EPIPE || rc == -ECONNRESET) {
		gone(fs);
		return -EPIPE;
	}
	if (rc)
		return rc;
	uint64_t deadline = shm_now_ns() + FS_REPLY_TIMEOUT_MS * 1000000ull;
	for (;;) {
		uint64_t now = shm_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd pfd = {fs->fd, POLLIN, 0};
		int n = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		struct fs_reply rp;
		ssize_t got = recv(fs->fd, &rp, sizeof(rp), MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got == 0 || (got < 0 && errno == ECONNRESET)) {
			gone(fs);
			return -EPIPE;
		}
		if (got != (ssize_t)sizeof(rp))
			return got < 0 ? -errno : -EIO;
		if (rp.seq != rq.seq) {
			/* The answer to a request we gave up on: its worker is
			 * not ours to keep (the partition has, or will have,
			 * another). */
			if (rp.pid > 0) {
				log_warn("the fork server answered late: killing worker pid %ld it "
					 "started for partition %u after the supervisor gave up",
					 (long)rp.pid, rp.partition);
				kill(rp.pid, SIGKILL);
			}
			continue;
		}
		return rp.pid > 0 ? rp.pid : rp.pid < 0 ? rp.pid : -EIO;
	}
}

int fs_reaped(struct forksrv *fs, pid_t pid)
{
	if (!fs->pid || pid != fs->pid)
		return 0;
	fs->pid = 0;
	gone(fs);
	return 1;
}

void fs_stop(struct forksrv *fs)
{
	if (fs->fd >= 0)
		close(fs->fd);
	fs->fd = -1;
	if (!fs->pid)
		return;
	for (int i = 0; i < 100; i++) {
		pid_t r = waitpid(fs->pid, NULL, WNOHANG);
		if (r == fs->pid || (r < 0 && errno != EINTR)) {
			fs->pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(fs->pid, SIGKILL);
	while (waitpid(fs->pid, NULL, 0) < 0 && errno == EINTR)
		;
	fs->pid = 0;
}
