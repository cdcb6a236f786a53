/* fdlimit.h - file descriptors: the RLIMIT_NOFILE soft limit raised to the
 * hard one at start (as most daemons do: systemd's default soft limit is
 * 1024), and how many a process has left. */
#ifndef RM_FDLIMIT_H
#define RM_FDLIMIT_H

struct fd_limit {
	unsigned long long before; /* the soft limit found */
	unsigned long long soft;   /* the soft limit now */
	unsigned long long hard;
	int err; /* errno of a failed raise, else 0 */
};

/* Raise the soft limit to the hard one (to fs.nr_open when the hard limit
 * is unlimited). Fills *l whatever happens; returns 0, or -1 when the
 * limits cannot be read or the raise failed (l->err). */
int fdlimit_raise(struct fd_limit *l);

/* Descriptors open in this process, or -errno (-EMFILE: none to spare even
 * to look). */
long fdlimit_open_count(void);

/* The soft limit minus the descriptors open (>= 0), or -errno when it
 * cannot be told (-EMFILE counts as none left: 0 is returned). */
long fdlimit_free(void);

#endif
