/* safety.c - see safety.h.
 *
 * The rule is sshd's StrictModes, as OpenSSH's safe_path() applies it: a
 * file is trusted when it and every directory above it, up to /, belong to
 * root or to us and no one else can write them. A directory others can
 * write is still safe when it is sticky and belongs to root or to us (/tmp):
 * no one else can then rename or remove an entry that is root's or ours.
 * The path is resolved once (realpath), so every link on it is followed
 * before the check, and the file is opened with O_NOFOLLOW at the resolved
 * path, so what is checked is the open descriptor, not a name.
 */
#include "safety.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"

#define HOW_TO_RELAX "or set [ringmaster] strict_modes = no"

static void add(char *errs, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *errs, size_t len, const char *fmt, ...)
{
	size_t used = strnlen(errs, len);
	va_list ap;

	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(errs + used, len - used, fmt, ap);
	va_end(ap);
	used = strnlen(errs, len);
	if (used + 1 < len) {
		errs[used] = '\n';
		errs[used + 1] = '\0';
	}
}

static int ours(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* One file (above == NULL) or one directory above `above`. */
static int check_stat(const char *prefix, const char *path, const struct stat *st,
		      const char *above, char *errs, size_t len)
{
	unsigned mode = (unsigned)st->st_mode & 07777;
	char what[4200];
	int rc = 0;

	if (above)
		snprintf(what, sizeof(what), "%s (a directory above %s)", path, above);
	else
		snprintf(what, sizeof(what), "%s", path);
	if (!ours(st->st_uid)) {
		add(errs, len,
		    "%s%s belongs to uid %u, not to root or to the user ringmaster runs as "
		    "(uid %u): chown it, " HOW_TO_RELAX,
		    prefix, what, (unsigned)st->st_uid, (unsigned)geteuid());
		rc = -1;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(above && (st->st_mode & S_ISVTX))) {
		add(errs, len,
		    "%s%s is writable by group or others (mode %04o): run chmod go-w "
		    "%s, " HOW_TO_RELAX,
		    prefix, what, mode, path);
		rc = -1;
	}
	return rc;
}

/* Every directory above `real` (canonical), nearest first. */
static int check_dirs_above(const char *prefix, const char *real, char *errs, size_t len)
{
	char dir[4096];
	struct stat st;
	int rc = 0;

	snprintf(dir, sizeof(dir), "%s", real);
	for (;;) {
		char *slash = strrchr(dir, '/');
		if (!slash)
			break;
		slash[slash == dir] = '\0'; /* keep "/" itself */
		if (stat(dir, &st) != 0) {
			add(errs, len, "%s%s: cannot check: %s", prefix, dir, strerror(errno));
			return -1;
		}
		rc |= check_stat(prefix, dir, &st, real, errs, len);
		if (strcmp(dir, "/") == 0)
			break;
	}
	return rc;
}

int safety_open(const char *path, int strict, const char *prefix, char *errs, size_t len)
{
	struct stat st;
	char *real;
	int fd, err;

	prefix = prefix ? prefix : "";
	real = realpath(path, NULL);
	if (!real) {
		err = errno;
		add(errs, len, "%s%s: %s", prefix, path, strerror(err));
		return -err;
	}
	/* O_NONBLOCK: a FIFO put there must not hang us; no effect on files. */
	fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		err = errno;
		add(errs, len, "%s%s: cannot open: %s", prefix, real, strerror(err));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		add(errs, len, "%s%s is not a regular file", prefix, real);
		err = EINVAL;
		goto fail;
	}
	if (strict && (check_stat(prefix, real, &st, NULL, errs, len) |
		       check_dirs_above(prefix, real, errs, len))) {
		err = EPERM;
		goto fail;
	}
	free(real);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	free(real);
	return -err;
}

static int check_file(const char *path, const char *prefix, char *errs, size_t len)
{
	int fd;

	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0; /* the loader says it is missing, with more to say */
	fd = safety_open(path, 1, prefix, errs, len);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int safety_check_files(const struct cfg *cfg, const char *config_path, char *errs, size_t len)
{
	char prefix[512];
	int rc;

	if (!cfg->strict_modes)
		return 0;
	rc = check_file(config_path, NULL, errs, len);
	for (size_t i = 0; i < cfg->n_tables; i++) {
		const char *name = cfg->tables[i].name;
		char section[128];
		snprintf(section, sizeof(section), "table.%s", name);
		snprintf(prefix, sizeof(prefix),
			 "%s: [table.%s] path: ", cfg_origin(cfg, section, "path"), name);
		rc |= check_file(cfg->tables[i].path, prefix, errs, len);
	}
	return rc ? -1 : 0;
}

/* A directory setting that is a symbolic link: the checks (and the chmod of
 * the run_dir) would apply to whatever the link points to, which whoever
 * can change the link chooses. */
static int check_not_link(const struct cfg *cfg, const char *section, const char *key,
			  const char *path, char *errs, size_t len)
{
	struct stat st;

	if (!path || lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
		return 0;
	add(errs, len,
	    "%s: [%s] %s %s is a symbolic link: give the directory itself, " HOW_TO_RELAX,
	    cfg_origin(cfg, section, key), section, key, path);
	return -1;
}

int safety_check_dirs(const struct cfg *cfg, char *errs, size_t len)
{
	int rc;

	if (!cfg->strict_modes)
		return 0;
	rc = check_not_link(cfg, "ringmaster", "run_dir", cfg->run_dir, errs, len);
	rc |= check_not_link(cfg, "ringmaster", "data_dir", cfg->data_dir, errs, len);
	if (cfg->output_type == CFG_OUTPUT_FILE)
		rc |= check_not_link(cfg, "output", "dir", cfg->output_dir, errs, len);
	return rc ? -1 : 0;
}

int safety_check_run_dir(const struct cfg *cfg, char *err, size_t len)
{
	struct stat st;
	int fd, rc = -1;

	if (!cfg->strict_modes)
		return 0;
	err[0] = '\0';
	/* The chmod goes to the directory checked, never through a link. */
	fd = open(cfg->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return 0;
		if (lstat(cfg->run_dir, &st) == 0 && S_ISLNK(st.st_mode))
			snprintf(err, len,
				 "%s: [ringmaster] run_dir %s is a symbolic link: give the "
				 "directory itself, " HOW_TO_RELAX,
				 cfg_origin(cfg, "ringmaster", "run_dir"), cfg->run_dir);
		else
			snprintf(err, len, "%s: cannot open: %s", cfg->run_dir, strerror(e));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, len, "%s: cannot check: %s", cfg->run_dir, strerror(errno));
	} else if (st.st_uid != geteuid()) {
		snprintf(err, len,
			 "%s belongs to uid %u, not to the user ringmaster runs as (%u): "
			 "use a run_dir of its own, " HOW_TO_RELAX,
			 cfg->run_dir, (unsigned)st.st_uid, (unsigned)geteuid());
	} else if ((st.st_mode & (S_IRWXG | S_IRWXO)) && fchmod(fd, 0700) != 0) {
		/* Ours but open to others (made by hand, or by a unit's
		 * RuntimeDirectory): close it, since the control socket lives
		 * there. */
		snprintf(err, len,
			 "%s is open to group or others (mode %04o) and cannot be closed: %s",
			 cfg->run_dir, (unsigned)st.st_mode & 07777, strerror(errno));
	} else {
		rc = 0;
	}
	close(fd);
	return rc;
}
