/* safety.h - refuse files others could have tampered with, like sshd's
 * StrictModes and OpenSSH's safe_path(): the config file, the table files
 * and a handler .so, and every directory from / down to each, must belong
 * to root or to the user ringmaster runs as, and no one else may write them
 * (a directory others can write passes when it is sticky and root's or
 * ours, like /tmp). The run, data and output directories must not be
 * symbolic links, and the run directory must be ours. [ringmaster]
 * strict_modes = no turns the checks off for development. */
#ifndef RM_SAFETY_H
#define RM_SAFETY_H

#include <stddef.h>

struct cfg;

/* Open `path` for reading, once: resolve it (realpath), open the result with
 * O_NOFOLLOW and O_CLOEXEC, and require a regular file. When `strict`, check
 * the open descriptor's owner and mode and every directory above the
 * resolved path. Returns the descriptor, or a negative errno (-EPERM: unsafe,
 * -EINVAL: not a regular file) with one message per problem appended to
 * errs, each line starting with `prefix` (may be NULL):
 *
 *   /srv/h (a directory above /srv/h/x.so) belongs to uid 65534, not to
 *   root or to the user ringmaster runs as (uid 0): chown it, or set
 *   [ringmaster] strict_modes = no */
int safety_open(const char *path, int strict, const char *prefix, char *errs, size_t len);

/* Check the config file and every table file `cfg` names, and the
 * directories above them. Returns 0, or -1 with one message per problem
 * appended to errs ("FILE is writable by group or others (mode 0666): run
 * chmod go-w FILE, or set [ringmaster] strict_modes = no"), a table's
 * starting with the file and line of its path setting. Missing files are not
 * this check's business. The handler is checked by handler_open. */
int safety_check_files(const struct cfg *cfg, const char *config_path, char *errs, size_t len);

/* run_dir, data_dir and [output] dir (type file) must not be symbolic
 * links. Returns 0, or -1 with a message per link appended to errs, naming
 * the setting's file and line. */
int safety_check_dirs(const struct cfg *cfg, char *errs, size_t len);

/* The run directory must be owned by the user we run as; one open to group
 * or others is closed (fchmod 0700 of the directory opened with O_NOFOLLOW:
 * never through a link). A missing run_dir passes. */
int safety_check_run_dir(const struct cfg *cfg, char *err, size_t len);

#endif
