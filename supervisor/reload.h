/* reload.h - what survives a supervisor restart and what changes under a
 * running one: the source watermark, and SIGHUP reloads. */
#ifndef RM_RELOAD_H
#define RM_RELOAD_H

#include <stdint.h>

struct sup;

/* At start: check the data directory's source against this one and set
 * s->resume_seq. Returns 0, or -1 (logged) when the data directory belongs
 * to another source. */
int wm_prepare(struct sup *s);

/* The highest seq any state shard has applied, plus one; 0 when none has
 * applied anything (a shard that cannot be opened counts as none). */
uint64_t wm_next_unapplied(const struct sup *s);

/* Record the low watermark: every event below it is durable, applied by
 * its worker and synced to disk (or dead-lettered and synced). Called four
 * times a second and at exit. A failed fdatasync of the supervisor's dead
 * letters is fatal (logged; s->failed and a stop). */
void wm_record(struct sup *s);

/* Record `pos` as the watermark, durably (the config environment synced),
 * once the supervisor's dead letters are: a rescale's cut, when every
 * worker stopped at it. 0, or -1 (logged). */
int wm_record_at(struct sup *s, uint64_t pos);

void wm_free(struct sup *s);

/* At start, for a Lua handler: read the script the supervisor opened and
 * checked, keep it in the config environment under its version (content
 * hash), and tell every partition to run that version; workers load the
 * script from there, never from the file again. For a .so: its content
 * hash is the version. Returns 0, or EX_CONFIG / EX_OSERR (logged). */
int sup_handler_record(struct sup *s);

/* A reload found the .so changed: restart the workers on the new one,
 * one partition at a time. Each gets a barrier at its ring's write
 * position once the one before runs the new library; its worker commits
 * everything before it and exits (WRK_EXIT_RELOAD), and its next worker
 * loads the new file. Called on every turn of the loop; nothing to do
 * when no swap is under way. */
void sup_handler_swap_step(struct sup *s);

/* The .so descriptor a new worker of partition p gets: the old library's
 * until its partition's swap barrier is passed, then the new one's. */
int sup_handler_fd(const struct sup *s, unsigned p);

/* Partition p is resumed (restart-worker) or assigned (Kafka) with no
 * worker having acted on its last barrier: it runs the version that
 * barrier brought from where it resumes, not the one before it. */
void sup_barrier_settle(struct sup *s, unsigned p);

/* Partition p's worker exited WRK_EXIT_SWITCH_FAILED: a reload's handler
 * version did not start there. The partition fails (FAIL_HANDLER), logged
 * with the version, until `ringctl restart-worker`. */
void sup_switch_failed(struct sup *s, unsigned p);

#endif
