/* safety.h - refuse files others could have tampered with, like sshd's
 * StrictModes: the config file, the table files and a handler .so must not
 * be writable by group or others and must belong to us or root; the run
 * directory must belong to us. [ringmaster] strict_modes = no turns the
 * checks off for development. */
#ifndef RM_SAFETY_H
#define RM_SAFETY_H

#include <stddef.h>

struct cfg;

/* Check every file `cfg` names (and `config_path` itself). Returns 0, or -1
 * with one message per problem appended to errs ("FILE is writable by group
 * or others (mode 0666): chmod go-w FILE, or set [ringmaster] strict_modes
 * = no"). Missing files are not this check's business. */
int safety_check_files(const struct cfg *cfg, const char *config_path, char *errs, size_t len);

/* The run directory must be owned by the user we run as; one open to group
 * or others is closed (chmod 0700). */
int safety_check_run_dir(const struct cfg *cfg, char *err, size_t len);

#endif
