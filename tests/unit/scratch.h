/* scratch.h - a scratch directory for a unit test: made under /tmp, the
 * working directory while the test runs (scratch_enter), and removed with
 * all it holds afterwards (scratch_leave, or scratch_remove alone). */
#ifndef RM_TEST_SCRATCH_H
#define RM_TEST_SCRATCH_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct scratch {
	char tmp[64];
	char *old_cwd; /* where the tests were started */
	char *cwd;     /* the scratch directory, as getcwd() spells it */
};

static int scratch_rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static inline int scratch_remove(const char *dir)
{
	return nftw(dir, scratch_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A cmocka setup: a new struct scratch in *state, in its directory. */
static inline int scratch_enter(void **state, const char *name)
{
	struct scratch *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	snprintf(s->tmp, sizeof(s->tmp), "/tmp/%s.XXXXXX", name);
	s->old_cwd = getcwd(NULL, 0);
	if (!s->old_cwd || !mkdtemp(s->tmp) || chdir(s->tmp) != 0 || !(s->cwd = getcwd(NULL, 0)))
		return -1;
	*state = s;
	return 0;
}

/* Its teardown: back where the tests started, the directory removed. */
static inline int scratch_leave(void **state)
{
	struct scratch *s = *state;
	int rc = chdir(s->old_cwd) != 0 || scratch_remove(s->tmp) != 0 ? -1 : 0;
	free(s->old_cwd);
	free(s->cwd);
	free(s);
	return rc;
}

#endif
