/* safety.c - see safety.h. */
#include "safety.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"

static void add(char *errs, size_t len, const char *fmt, const char *path, unsigned mode)
{
	size_t used = strlen(errs);
	if (used < len)
		snprintf(errs + used, len - used, fmt, path, mode, path);
}

static int check_one(const char *path, char *errs, size_t len)
{
	struct stat st;
	if (!path || stat(path, &st) != 0)
		return 0;
	unsigned mode = (unsigned)st.st_mode & 07777;
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		add(errs, len,
		    "%s is writable by group or others (mode %04o): run chmod go-w %s, "
		    "or set [ringmaster] strict_modes = no\n",
		    path, mode);
		return -1;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		add(errs, len,
		    "%s belongs to another user (mode %04o): chown %s to the user "
		    "ringmaster runs as, or set [ringmaster] strict_modes = no\n",
		    path, mode);
		return -1;
	}
	return 0;
}

int safety_check_files(const struct cfg *cfg, const char *config_path, char *errs, size_t len)
{
	if (!cfg->strict_modes)
		return 0;
	int rc = check_one(config_path, errs, len);
	for (size_t i = 0; i < cfg->n_tables; i++)
		rc |= check_one(cfg->tables[i].path, errs, len);
	if (strchr(cfg->handler, '/'))
		rc |= check_one(cfg->handler, errs, len);
	return rc ? -1 : 0;
}

int safety_check_run_dir(const struct cfg *cfg, char *err, size_t len)
{
	struct stat st;
	if (!cfg->strict_modes || stat(cfg->run_dir, &st) != 0)
		return 0;
	if (st.st_uid != geteuid()) {
		snprintf(err, len,
			 "%s belongs to uid %u, not to the user ringmaster runs as (%u): "
			 "use a run_dir of its own, or set [ringmaster] strict_modes = no",
			 cfg->run_dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	/* Ours but open to others (made by hand, or by a unit's
	 * RuntimeDirectory): close it, since the control socket lives there. */
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) && chmod(cfg->run_dir, 0700) != 0) {
		snprintf(err, len,
			 "%s is open to group or others (mode %04o) and cannot be "
			 "closed: %s",
			 cfg->run_dir, (unsigned)st.st_mode & 07777, strerror(errno));
		return -1;
	}
	return 0;
}
