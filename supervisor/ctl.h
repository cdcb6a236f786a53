/* ctl.h - ringctl's subcommands, one function each. Each takes the
 * subcommand's own argv (argv[0] is the subcommand name) and returns the
 * process exit code: 0 ok, 1 failure, 2 usage error. */
#ifndef RM_CTL_H
#define RM_CTL_H

/* ringctl gen events [--events N] [--keys N] [--seed N] [--skew X]
 * ringctl gen accounts [--keys N] [--seed N]
 * ringctl gen rules
 * Writes the generated TSV to stdout. */
int ctl_gen(int argc, char **argv);

struct cfg;

/* ringctl state KEY: the key's partition and state, from the shard. */
int ctl_state(const struct cfg *cfg, int argc, char **argv);

/* ringctl dump-state: every key of every shard, `key<TAB>value`, sorted. */
int ctl_dump_state(const struct cfg *cfg, int argc, char **argv);

#endif
