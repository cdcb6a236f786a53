/* supervisor.h - the supervisor: owns the source, the partitioner, the
 * rings, the config environment and the workers' lifecycle. It never runs
 * handler code. */
#ifndef RM_SUPERVISOR_H
#define RM_SUPERVISOR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "deadletter.h"
#include "shm.h"

struct store_env;

struct sup {
	struct cfg cfg;
	const char *config_path;
	char *const *overrides;
	size_t n_overrides;
	const char *summary_path;

	struct shm shm;
	pid_t *pids;                 /* [partitions]; 0 = not running */
	int *exit_status;            /* [partitions]; last wait status */
	struct store_env *config;    /* config environment (sole writer) */
	int pid_fd;

	int dead_fd;                 /* dead-letter file, O_APPEND */
	struct dl_buf dead;          /* source-side dead letters not yet written */

	uint64_t start_ns;
	uint64_t lines;              /* lines (events) read from the source */
	uint64_t dispatched;         /* events handed to a ring */
	uint64_t dead_lettered;      /* lines the source refused */
	uint64_t since_publish;
	uint64_t *pending;           /* [partitions]: dispatched, not yet published */

	int progress;                /* stderr is a terminal: show progress */
	uint64_t next_progress_ns;
	uint64_t source_size;        /* bytes or events, 0 if unknown */
	uint64_t source_pos;
	int failed;                  /* a worker died or a write failed */
};

/* Signal flags (the only globals). */
extern volatile sig_atomic_t sup_stop;   /* SIGTERM/SIGINT: count */
extern volatile sig_atomic_t sup_child;  /* SIGCHLD seen */

/* Run ringmaster: returns the process exit status. */
int sup_run(struct sup *s);

/* For the sources: hand one event to its partition's ring, waiting while the
 * ring is full. Returns 0, or -1 when the run must stop (signal, dead
 * worker). A record that can never fit is dead-lettered here. */
int sup_dispatch(struct sup *s, uint64_t seq, const char *key, size_t key_len,
		 const char *payload, size_t payload_len, const char *line, size_t line_len);

/* Dead-letter a line the source could not turn into an event. */
int sup_dead_letter(struct sup *s, uint64_t seq, const char *reason, const char *line,
		    size_t len);

/* Publish what was dispatched, show progress, look at signals and children.
 * Sources call it every few thousand events and when they would block.
 * Returns 0, or -1 when the run must stop. */
int sup_tick(struct sup *s);

/* Sources (source.c). Each returns 0 at the end of input or on a stop
 * request, -1 on an error (logged). */
int src_file_run(struct sup *s);
int src_generate_run(struct sup *s);

#endif
