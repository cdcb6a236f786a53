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
#include "forksrv.h"
#include "shm.h"

struct store_env;
struct control;
struct wm_part;
struct src_file;

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
	enum sup_state state;
	uint64_t generation; /* of the config environment's tables */
	int pid_fd;
	int data_lock_fd;     /* lock on data_dir/lock: one instance a data_dir */
	int handler_fd;	      /* the handler .so, opened and checked once; -1 */
	uint64_t data_dir_id; /* random, made with the data_dir: owner marks */
	int force_recover;    /* --force-recover: resume after an unsafe reboot */

	int dead_fd;	    /* dead-letter file, O_APPEND */
	struct dl_buf dead; /* source-side dead letters not yet written */
	int dead_unsynced;  /* written since the last fdatasync; -1: it failed */

	uint64_t start_ns;
	uint64_t lines;		/* lines (events) read from the source */
	uint64_t dispatched;	/* events handed to a ring */
	uint64_t dead_lettered; /* lines the source refused */
	uint64_t since_publish;
	uint64_t *pending; /* [partitions]: dispatched, not yet published */

	int progress; /* stderr is a terminal: show progress */
	uint64_t next_progress_ns;
	uint64_t source_size;	       /* bytes or events, 0 if unknown */
	uint64_t source_pos;	       /* bytes or events read so far */
	uint64_t next_seq;	       /* seq of the next event the source reads */
	uint64_t resume_seq;	       /* where the source starts (the watermark) */
	uint64_t source_id;	       /* hash naming the source, kept in data_dir */
	struct src_file *file;	       /* the file source (source.c), NULL if none */
	uint64_t next_housekeeping_ns; /* rates: once a second */
	uint64_t next_watermark_ns;    /* recording the source watermark */
	uint64_t watermark;	       /* the last one recorded */
	struct wm_part *wm_parts;      /* [partitions]: what each worker made durable */
	uint64_t held;		       /* events not dispatched: their partition failed */
	unsigned failed_partitions;    /* how many are WK_FAILED: the run ends 1 */
	int failed;		       /* a write failed or a worker cannot start */
	int exit_status;	       /* not 0: the run stops and ends with it */
};

/* Signal flags (the only globals). */
extern volatile sig_atomic_t sup_stop;	/* SIGTERM/SIGINT: count */
extern volatile sig_atomic_t sup_child; /* SIGCHLD seen */
extern volatile sig_atomic_t sup_hup;	/* SIGHUP: reload */

/* Run ringmaster: returns the process exit status. */
int sup_run(struct sup *s);

/* For the sources: hand one event to its partition's ring, waiting while the
 * ring is full. Returns 0, or -1 when the run must stop (signal, dead
 * worker). A record that can never fit is dead-lettered here. */
int sup_dispatch(struct sup *s, uint64_t seq, const char *key, size_t key_len, const char *payload,
		 size_t payload_len, const char *line, size_t line_len);

/* The same into partition p's ring, whatever the key hashes to: a Kafka
 * message goes to the worker of the partition it was read from, since its
 * seq is an offset in that partition. */
int sup_dispatch_to(struct sup *s, unsigned p, uint64_t seq, const char *key, size_t key_len,
		    const char *payload, size_t payload_len, const char *line, size_t line_len);

/* Dead-letter a line the source could not turn into an event. */
int sup_dead_letter(struct sup *s, uint64_t seq, const char *reason, const char *line, size_t len);
/* The same for a line of `total` bytes of which only the first `len` were
 * kept: the dead letter is marked as cut (deadletter.h). */
int sup_dead_letter_cut(struct sup *s, uint64_t seq, const char *reason, const char *line,
			size_t len, uint64_t total);

/* Publish what was dispatched, show progress, look at signals and children.
 * Sources call it every few thousand events and when they would block.
 * Returns 0, or -1 when the run must stop. */
int sup_tick(struct sup *s);

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

/* Wait up to timeout_ms for something to do (a control request), serving it;
 * then sup_tick. What idle sources call instead of sleeping. */
int sup_idle(struct sup *s, int timeout_ms);

const char *sup_state_name(enum sup_state st);
const char *sup_wstate_name(enum sup_wstate st);

/* The file source, at start, before any worker exists (s->resume_seq set):
 * open the file (or take stdin), check that it is the file this data
 * directory read (device, inode, a fingerprint of its first bytes, no
 * shorter than the watermark; recorded the first time), and seek to the
 * watermark. Returns 0, or the exit status to stop with (logged): 1 when
 * it cannot be read, EX_CONFIG when it is not the file this data directory
 * read, EX_OSERR when out of memory. src_file_close frees what it made
 * (also after a failure). */
int src_file_open(struct sup *s);
void src_file_close(struct sup *s);

/* Sources (source.c). Each returns 0 at the end of input or on a stop
 * request, -1 on an error (logged). src_file_run reads what src_file_open
 * opened; while following, a file truncated, replaced, removed or
 * rewritten is warned about and no longer read until it is back. */
int src_file_run(struct sup *s);
int src_generate_run(struct sup *s);
int src_zmq_run(struct sup *s);	  /* src_zmq.c */
int src_kafka_run(struct sup *s); /* src_kafka.c */

/* Turn one text line (without its newline) into an event at `seq` and
 * dispatch it, or dead-letter it: too_long, no_delimiter, empty_line,
 * empty_key, key_too_long. A trailing CR is dropped. Counts s->lines.
 * Returns what sup_dispatch / sup_dead_letter return. Shared by the text
 * sources (file, zmq) so a line means the same whatever carried it. */
int src_handle_line(struct sup *s, uint64_t seq, const char *line, size_t len);

/* The same, dispatched to `partition` (sup_dispatch_to) when it is >= 0. */
int src_handle_line_to(struct sup *s, int partition, uint64_t seq, const char *line, size_t len);

/* The same for the first `len` bytes of a line of `total` bytes, cut to
 * what can be an event anyway (a ZeroMQ or Kafka message): when total >
 * len its dead letter is marked as cut. */
int src_handle_cut_line(struct sup *s, int partition, uint64_t seq, const char *line, size_t len,
			uint64_t total);

#endif
