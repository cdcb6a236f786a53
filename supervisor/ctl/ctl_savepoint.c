/* ctl_savepoint.c - ringctl savepoint DIR: ask the running instance for a
 * savepoint and wait until it is written (or failed); ringctl savepoint
 * --verify DIR: check one on disk, no instance needed. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "savepoint.h"

#define POLL_MS 20

int ctl_savepoint_verify(int argc, char **argv)
{
	char err[SAVEPOINT_ERR_LEN];
	if (argc != 3) {
		fprintf(stderr, "usage: ringctl savepoint --verify DIR\n");
		return 2;
	}
	if (savepoint_verify(argv[2], NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "ringctl: savepoint %s is bad: %s\n", argv[2], err);
		return 1;
	}
	printf("%s: ok\n", argv[2]);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* The supervisor runs elsewhere: give it an absolute path. */
static int absolute(const char *dir, char *out, size_t len)
{
	char cwd[PATH_MAX];
	if (dir[0] == '/')
		return (size_t)snprintf(out, len, "%s", dir) < len ? 0 : -1;
	if (!getcwd(cwd, sizeof(cwd)))
		return -1;
	return (size_t)snprintf(out, len, "%s/%s", cwd, dir) < len ? 0 : -1;
}

/* One request; 0 with the reply, or the exit code (printed). */
static int call(struct ctl_client *c, const char *req, struct ctl_reply *r)
{
	char err[PROTO_ERR_LEN + 512];
	int rc = ctl_call(c, req, r, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "ringctl: %s\n", err);
	return rc;
}

int ctl_savepoint(struct ctl_client *c, int argc, char **argv)
{
	char dir[PROTO_PATH_MAX + 1], req[PROTO_PATH_MAX + 32];
	struct ctl_reply r;
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: ringctl savepoint DIR | ringctl savepoint --verify DIR\n");
		return 2;
	}
	if (absolute(argv[1], dir, sizeof(dir)) != 0 || strpbrk(dir, " \t\n")) {
		fprintf(stderr, "ringctl: savepoint: %s: the path is too long or holds blanks\n",
			argv[1]);
		return 2;
	}
	snprintf(req, sizeof(req), "savepoint %s", dir);
	int rc = call(c, req, &r);
	if (rc != 0)
		return rc;
	if (!r.ok) {
		fprintf(stderr, "ringctl: %s", r.body.data ? r.body.data : "savepoint refused\n");
		proto_buf_free(&r.body);
		return 1;
	}
	unsigned long long id = 0;
	sscanf(r.body.data ? r.body.data : "", "savepoint %llu", &id);
	proto_buf_free(&r.body);
	/* Wait for it: the workers copy their shards while the source goes on. */
	for (;;) {
		struct timespec ts = {0, POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
		if (c->cancel && *c->cancel)
			return 1;
		if ((rc = call(c, "savepoint-status", &r)) != 0) {
			fprintf(stderr,
				"ringctl: savepoint %llu: lost the instance before it was "
				"done; check %s\n",
				id, dir);
			return rc;
		}
		unsigned long long got = 0;
		char state[16] = "";
		const char *body = r.body.data ? r.body.data : "";
		const char *msg = strchr(body, '\n');
		sscanf(body, "savepoint %llu %15s", &got, state);
		msg = msg ? msg + 1 : "";
		if (got == id && strcmp(state, "running") != 0) {
			int ok = strcmp(state, "done") == 0;
			fprintf(ok ? stdout : stderr, "%s%s", ok ? "" : "ringctl: ", msg);
			proto_buf_free(&r.body);
			return ok ? 0 : 1;
		}
		proto_buf_free(&r.body);
		if (got != id) {
			fprintf(stderr, "ringctl: savepoint %llu: the instance knows it no more\n",
				id);
			return 1;
		}
	}
}
