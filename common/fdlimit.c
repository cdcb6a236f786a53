/* fdlimit.c - see fdlimit.h. */
#include "fdlimit.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* fs.nr_open: what the soft limit may be raised to at most. */
static rlim_t nr_open(void)
{
	unsigned long long v = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v ? (rlim_t)v : 1024 * 1024;
}

int fdlimit_raise(struct fd_limit *l)
{
	struct rlimit rl;
	l->err = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		l->err = errno;
		l->before = l->soft = l->hard = 0;
		return -1;
	}
	l->before = l->soft = (unsigned long long)rl.rlim_cur;
	l->hard = (unsigned long long)rl.rlim_max;
	rlim_t want = rl.rlim_max;
	if (want == RLIM_INFINITY)
		want = nr_open();
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
		return 0;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		l->err = errno;
		return -1;
	}
	l->soft = (unsigned long long)want;
	return 0;
}

long fdlimit_open_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	long n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

long fdlimit_free(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	long open = fdlimit_open_count();
	if (open == -EMFILE)
		return 0;
	if (open < 0)
		return open;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX)
		return LONG_MAX;
	return (long)rl.rlim_cur > open ? (long)rl.rlim_cur - open : 0;
}
