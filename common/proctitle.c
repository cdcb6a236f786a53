/* proctitle.c - see proctitle.h. The kernel shows /proc/PID/cmdline from
 * the original argv area, so we overwrite that area; environ strings that
 * follow it contiguously are copied to the heap first so they can be reused. */
#include "proctitle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static struct {
	char **owned; /* every environment string copied, whatever environ holds now */
	char *start;
	size_t size;
	/* Our copy of the environment, kept for the life of the process.
	 * Held here too because environ alone does not keep it: glibc's
	 * exit-time cleanup (run by valgrind) sets environ to NULL, which
	 * would make the copy look leaked. */
	char **env;
} title;

void proctitle_init(int argc, char **argv)
{
	if (argc < 1 || !argv[0])
		return;
	char *end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	size_t n_env = 0;
	while (environ[n_env])
		n_env++;
	char **env = calloc(n_env + 1, sizeof(*env));
	if (!env)
		goto done;
	for (size_t i = 0; i < n_env; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		env[i] = strdup(environ[i]);
		if (!env[i]) {
			/* Keep the environment where it is; use argv alone. */
			while (i--)
				free(env[i]);
			free(env);
			end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
			goto done;
		}
	}
	environ = title.env = env;
	/* The copies stay ours when unsetenv drops one from environ. */
	title.owned = malloc((n_env + 1) * sizeof(*title.owned));
	if (title.owned)
		memcpy(title.owned, env, (n_env + 1) * sizeof(*title.owned));
done:
	title.start = argv[0];
	title.size = (size_t)(end - argv[0]);
	/* Copies for argv too: option values point into the area a title
	 * overwrites, and the supervisor reads them again on reload. */
	for (int i = 0; i < argc; i++) {
		char *copy = strdup(argv[i]);
		if (copy)
			argv[i] = copy;
	}
}

void proctitle_set(const char *comm, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	if (!title.start || title.size < 2)
		return;
	size_t n = strlen(buf);
	if (n > title.size - 1)
		n = title.size - 1;
	memset(title.start, 0, title.size);
	memcpy(title.start, buf, n);
}
