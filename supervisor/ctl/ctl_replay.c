/* ctl_replay.c - ringctl forget-replay N: the way out of a replay that
 * cannot be finished (its dead-letter file is lost). A replay stays open
 * until each of its events is durable in its shard, and while one is open
 * the supervisor refuses to replay another file, since a later replay's
 * seqs would make its events that were not applied yet look applied
 * (common/replay.h). Forgetting it accepts exactly that: what it applied
 * stays, the rest is not applied. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"
#include "replay.h"
#include "store.h"

int ctl_forget_replay(const struct cfg *cfg, int argc, char **argv)
{
	char *end, name[REPLAY_NAME_LEN], err[STORE_ERR_LEN];
	if (argc != 2) {
		fprintf(stderr, "usage: ringctl forget-replay N\n");
		return 2;
	}
	errno = 0;
	unsigned long long n = strtoull(argv[1], &end, 10);
	if (errno || end == argv[1] || *end || n == 0) {
		fprintf(stderr, "ringctl: forget-replay: N must be a replay number, got '%s'\n",
			argv[1]);
		return 2;
	}
	struct store_env *env = NULL;
	int lock_fd = -1, rc = 1;
	uint64_t open = 0;
	if (ctl_lock_data_dir(cfg, "forget-replay", &lock_fd) != 0)
		return 1;
	if (store_config_open(cfg->data_dir, cfg->map_size, 0, &env, err) != 0) {
		fprintf(stderr, "ringctl: %s\n", err);
		goto out;
	}
	int got = store_meta_get_u64(env, "replay_open", &open);
	if ((got && got != -ENOENT) || open != n) {
		if (got && got != -ENOENT)
			fprintf(stderr, "ringctl: %s: cannot read replay_open: %s\n", cfg->data_dir,
				strerror(-got));
		else if (open)
			fprintf(stderr, "ringctl: replay %llu is not open (replay %llu is)\n", n,
				(unsigned long long)open);
		else
			fprintf(stderr, "ringctl: replay %llu is not open (none is)\n", n);
		goto out;
	}
	char buf[sizeof(struct replay_file) + 4097];
	size_t len = 0;
	replay_file_name(name, n);
	if (store_meta_get(env, name, buf, sizeof(buf) - 1, &len) != 0 ||
	    len < sizeof(struct replay_file))
		len = sizeof(struct replay_file);
	buf[len < sizeof(buf) ? len : sizeof(buf) - 1] = '\0';
	if (store_meta_put_u64(env, "replay_open", 0) != 0) {
		fprintf(stderr, "ringctl: %s: cannot record it\n", cfg->data_dir);
		goto out;
	}
	printf("replay %llu (%s) forgotten: the events it applied stay applied, the others "
	       "are not; another file may be replayed now\n",
	       n, buf + sizeof(struct replay_file));
	rc = 0;
out:
	if (env)
		store_close(env);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}
