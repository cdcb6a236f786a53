/* supervisor.h - the supervisor: owns the source, the partitioner, the
 * rings, the config environment and the workers' lifecycle. It never runs
 * handler code.
 *
 * Private to the supervisor's own parts (supervisor.c and the files that
 * implement pieces of it: lifecycle.c, reload.c, owner.c, control.c,
 * summary.c, main.c). The sources see only source.h, and ringctl none of
 * it. */
#ifndef RM_SUPERVISOR_H
#define RM_SUPERVISOR_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "deadletter.h"
#include "forksrv.h"
#include "shm.h"
#include "source.h"

struct store_env;
struct control;
struct http;
struct wm_part;
struct sup_replay;
struct sup_savepoint;

enum sup_state { SUP_STARTING, SUP_RUNNING, SUP_RELOADING, SUP_STOPPING };
/* WK_UNOWNED: a Kafka partition this instance has not been assigned: no
 * worker, and none is started until it is (lc_acquire). */
/* WK_FAILED: not restarted, for a reason (enum sup_fail). FAIL_SYNC: its
 * fsync failed (WRK_EXIT_SYNC_FAILED): its events are held back (not
 * dispatched) and the resume position stays below them, so a restart of
 * ringmaster redoes them. FAIL_HANDLER: its handler could not finish
 * fail_after events in a row: its events wait in its ring, and once that
 * is full they are held back too; `ringctl restart-worker` resumes it.
 * FAIL_DATA_LOSS: Kafka deleted events before it could read them
 * (retention): nothing is read; restart-worker accepts the loss. */
enum sup_wstate { WK_RUNNING, WK_BACKOFF, WK_STOPPED, WK_UNOWNED, WK_FAILED };
enum sup_fail { FAIL_NONE, FAIL_SYNC, FAIL_HANDLER, FAIL_DATA_LOSS };

#define SUP_RATE_SAMPLES 11 /* one a second: events/s over the last 10 s */

/* The supervisor's view of one partition's worker. */
struct sup_worker {
	pid_t pid; /* 0 when not running */
	enum sup_wstate state;
	uint64_t started_ns;	/* when the current process was forked */
	uint64_t restart_at_ns; /* WK_BACKOFF: when to fork again */
	uint64_t backoff_ms;	/* the next delay */
	unsigned restarts;
	char last_exit[96];	/* "killed by signal 9 (Killed)", "" */
	uint64_t poison_seq;	/* the seq the last deaths happened on */
	unsigned poison_deaths; /* deaths in a row on poison_seq */
	unsigned fails_in_row;	/* poison events with no finished event between */
	uint64_t last_fail_seq; /* the last of them */
	enum sup_fail fail;	/* why it is WK_FAILED (or will be: fail_on_exit) */
	int fail_on_exit;	/* lc_fail: its worker was told to stop */
	int accept_loss;	/* restart-worker after FAIL_DATA_LOSS: go on from the log start */
	uint64_t offsets_lost;	/* Kafka events deleted before they were read */
	uint64_t held;	       /* its events not dispatched (WK_FAILED): redone at the next start */
	uint64_t first_held;   /* the seq of the first; the watermark stays below it */
	uint64_t wd_seq;       /* watchdog: current_seq when last seen changing */
	uint64_t wd_seen_ns;   /* and when */
	int restart_requested; /* restart-worker: stop it gracefully, then fork */
	int releasing;	       /* lc_release: drain, then WK_UNOWNED, no restart */
	uint64_t rate_processed[SUP_RATE_SAMPLES];
	uint64_t rate_ns[SUP_RATE_SAMPLES];
	unsigned rate_next;
};

struct sup {
	struct cfg cfg;
	const char *config_path;
	char *const *overrides;
	size_t n_overrides;
	const char *summary_path;

	struct shm shm;
	struct sup_worker *workers; /* [partitions] */
	struct forksrv forksrv;	    /* forks the workers */
	int forksrv_lost_logged;    /* it died: we stop, and exit EX_OSERR */
	struct store_env *config;   /* config environment (sole writer) */
	struct control *control;    /* control socket server, NULL if none */
	struct http *http;	    /* [control] http: the scraping endpoint, NULL if none */
	enum sup_state state;
	uint64_t generation; /* of the config environment's tables */
	int pid_fd;
	int data_lock_fd;	  /* lock on data_dir/lock: one instance a data_dir */
	int handler_fd;		  /* the handler .so, opened and checked once; -1 */
	uint64_t handler_version; /* content hash of the handler file (Lua or .so); 0 */
	uint64_t data_dir_id;	  /* random, made with the data_dir: owner marks */
	int force_recover;	  /* --force-recover: resume after an unsafe reboot */
	int rescale;		  /* --rescale: re-split a stopped data_dir (rescale_sup.h) */
	unsigned rescale_to;	  /* ringctl rescale N: stop, then main() execs with N */
	/* ringctl rescale N cut at a barrier (rescale_sup.c): the source's
	 * position then, the restarts then, and whether the cut failed. */
	int cut, cut_placed, cut_failed;
	uint64_t cut_pos, cut_ns;
	unsigned cut_restarts;
	char cut_why[160];
	uint64_t dead_next; /* past the last seq the source dead-lettered, 0 */

	/* A .so swap restarting the workers one at a time (reload.c). */
	int swap_active;
	unsigned swap_next;	   /* the partition whose turn it is */
	int swap_busy;		   /* its barrier is set */
	int swap_fd_old;	   /* the library it replaces, until every partition is done */
	uint64_t swap_version_old; /* and its version */
	struct sup_savepoint *savepoint; /* the last savepoint asked for (savepoint.c), NULL */

	int dead_fd;	    /* dead-letter file, O_APPEND */
	struct dl_buf dead; /* source-side dead letters not yet written */
	int dead_unsynced;  /* written since the last fdatasync; -1: it failed */

	uint64_t start_ns;
	uint64_t lines;		/* lines (events) read from the source */
	uint64_t dispatched;	/* events handed to a ring */
	uint64_t dead_lettered; /* lines the source refused */
	uint64_t since_publish;
	uint64_t *pending; /* [partitions]: dispatched, not yet published */

	int progress;		    /* stderr is a terminal: show progress */
	uint64_t source_size;	    /* bytes or events, 0 if unknown */
	uint64_t source_pos;	    /* bytes or events read so far */
	struct src_pos files;	    /* a source of many files: files, file, files_done, ... */
	char source_file[256];	    /* files.file, copied */
	uint64_t next_seq;	    /* seq of the next event the source reads */
	uint64_t resume_seq;	    /* where the source starts (the watermark) */
	uint64_t source_id;	    /* hash naming the source, kept in data_dir */
	struct source src;	    /* the source; src.ops NULL until it is opened */
	int src_open;		    /* src.ops->close is owed */
	int src_release;	    /* src.ops->release is owed */
	unsigned blocked;	    /* p + 1: the source waits for room in ring p */
	size_t blocked_len[2];	    /* the key and payload that wait */
	int dead_stuck;		    /* dead letters cannot be written: not reading */
	uint64_t dead_next_log;	    /* when to say so again */
	int closing;		    /* the workers are being stopped */
	int stops_seen;		    /* stop requests when the workers began to stop */
	uint64_t stop_deadline;	    /* then kill them (after a stop request) */
	uint64_t last_poll_ns;	    /* the last look at the control socket */
	uint64_t *job_next;	    /* [jobs]: when each periodic job runs next */
	uint64_t sd_watchdog_ns;    /* WATCHDOG=1 this often (WatchdogSec/2); 0: off */
	uint64_t sd_watchdog_next;  /* and next at this time */
	struct pollfd *pfds;	    /* the source's, then the control socket's */
	uint64_t watermark;	    /* the last one recorded */
	struct wm_part *wm_parts;   /* [partitions]: what each worker made durable */
	uint64_t held;		    /* events not dispatched: their partition failed */
	struct sup_replay *replay;  /* ringctl replay: the one under way (dlreplay.c) */
	unsigned failed_partitions; /* how many are WK_FAILED: the run ends 1 */
	int failed;		    /* a write failed or a worker cannot start */
	int exit_status;	    /* not 0: the run stops and ends with it */

	/* Where the time goes (stage.h): the loop's stage, and the latency
	 * stamps: when the current read call began, when the oldest one with
	 * records not yet published did, and each ring's last stamp. */
	struct stage_timer clock;
	uint64_t clock_cost; /* stage_clock_cost */
	uint64_t read_began_ns, unpublished_ns;
	struct sup_stamp {
		uint64_t pos, ns;
	} * stamps; /* [partitions] */
};

/* Signal flags (the only globals). */
extern volatile sig_atomic_t sup_stop;	/* SIGTERM/SIGINT: count */
extern volatile sig_atomic_t sup_child; /* SIGCHLD seen */

/* Run ringmaster: returns the process exit status. */
int sup_run(struct sup *s);

/* ---- for the control socket (control.c) ---- */

/* Re-read the INI and every table (the SIGHUP path). Returns 0 when the new
 * configuration was applied, -1 when it was refused (nothing changed). `msg`
 * gets every error, or on success the settings that need a restart
 * ("[ringmaster] partitions: needs restart, not applied"), one per line; may be empty. */
int sup_reload(struct sup *s, char *msg, size_t len);

/* A graceful stop, as SIGTERM. */
void sup_request_stop(struct sup *s);

/* A graceful stop after which ringmaster exits with `status` (EX_OSERR: a
 * worker cannot start for lack of file descriptors, or the fork server
 * died). The first one set stays. */
void sup_fail(struct sup *s, int status);

/* Stop worker p gracefully (it drains what it has read and commits) and
 * start a new one at once. Returns 0, or -1 with a reason in msg. */
int sup_restart_worker(struct sup *s, unsigned p, char *msg, size_t len);

/* Events/s processed by worker p over the last 10 seconds. */
double sup_worker_rate(const struct sup *s, unsigned p);

/* The watermark was recorded: the source may act on what is durable. */
void sup_source_durable(struct sup *s);

const char *sup_state_name(enum sup_state st);
const char *sup_wstate_name(enum sup_wstate st);

#endif
