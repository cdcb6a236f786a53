/* ctl.h - ringctl's subcommands, one function each. Each takes the
 * subcommand's own argv (argv[0] is the subcommand name) and returns the
 * process exit code: 0 ok, 1 failure, 2 usage error. */
#ifndef RM_CTL_H
#define RM_CTL_H

#include <stddef.h>

#include <signal.h>
#include <stdio.h>

#include "proto.h"

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

/* ringctl load-state [--replace] FILE: dump-state's text into the shards of
 * a stopped data_dir, all or none (ctl_load.c). */
int ctl_load_state(const struct cfg *cfg, int argc, char **argv);

/* Lock data_dir/lock (making data_dir if missing) for a command that
 * writes a stopped data_dir: 0 with *fd to close when done, or -1 with a
 * message naming the running instance's pid, or a worker of one. */
int ctl_lock_data_dir(const struct cfg *cfg, const char *cmd, int *fd);

/* ringctl forget-replay N: close replay N, which a crash or a lost file
 * left unfinished, in a stopped data_dir (ctl_replay.c). */
int ctl_forget_replay(const struct cfg *cfg, int argc, char **argv);

/* ---- the control socket (ctl_remote.c, ctl_top.c) ---- */

#define CTL_EXIT_CONNECT 3  /* cannot reach the control socket */
#define CTL_TIMEOUT_MS 5000 /* -t default */

/* Where and how to reach a running ringmaster. */
struct ctl_client {
	char path[108];		       /* the socket file */
	int timeout_ms;		       /* for one request and its reply */
	int json;		       /* --json: ask for JSON */
	volatile sig_atomic_t *cancel; /* a wait interrupted by a signal ends when set */
};

/* One reply: ok or error, and its body. */
struct ctl_reply {
	int ok;
	struct proto_buf body;
};

/* Connect, send one request and wait (up to timeout_ms in all) for its
 * reply. Returns 0 with *r filled (free r->body with proto_buf_free), or
 * CTL_EXIT_CONNECT when the socket is missing, refuses, closes the
 * connection without a reply or does not answer in time, or 1 for a
 * malformed reply; then err says which. */
int ctl_call(struct ctl_client *c, const char *request, struct ctl_reply *r, char *err,
	     size_t err_len);

/* True for the commands ringctl sends to the control socket (the protocol's
 * command table) and for top. */
int ctl_is_remote(const char *name);

/* ringctl top [-n COUNT] [-d DELAY]: the live view of workers. */
int ctl_top(struct ctl_client *c, int argc, char **argv);

/* Run a control-socket command (ctl_is_remote) against `socket` if given,
 * else run_dir/control.sock. Returns the exit code. */
int ctl_remote_main(const char *socket, const char *run_dir, int timeout_ms, int json, int argc,
		    char **argv);

/* -t TIMEOUT: a duration ("5s", "500ms", a bare number is seconds), above
 * 0 and at most an hour. Returns 0, or -1 with a message on stderr. */
int ctl_parse_timeout(const char *s, int *ms);

/* ringctl savepoint DIR (ctl_savepoint.c): ask for a savepoint, wait until
 * it is written: 0, 1 when refused or failed (the reason on stderr). */
int ctl_savepoint(struct ctl_client *c, int argc, char **argv);

/* ringctl savepoint --verify DIR: its manifest and checksums; "DIR: ok",
 * or 1 with the bad file named. Needs no instance. */
int ctl_savepoint_verify(int argc, char **argv);

/* The control-socket part of ringctl's usage: commands and options. */
void ctl_remote_usage(FILE *f);

/* ringctl send [-e ENDPOINT] [--frames] [FILE] (ctl_send.c): push TSV lines
 * to a zmq source. Without -e the endpoint (and the delimiter) come from
 * the configuration, loaded with `overrides`. */
int ctl_send(const char *config, char *const *overrides, size_t n_overrides, int argc, char **argv);

#endif
