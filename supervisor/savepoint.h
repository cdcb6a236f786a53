/* savepoint.h - savepoints of a running instance, and a new data_dir
 * from one (common/savepoint.h has the layout on disk).
 *
 * `ringctl savepoint DIR` asks the supervisor (sup_savepoint_start) to put
 * a barrier of the savepoint kind in every ring at one instant, the
 * source's position then being the cut: every event read before it is
 * before every barrier. Each worker commits what is before its barrier,
 * copies its shard into DIR.tmp-XXXXXX/state/pP and goes on; the loop's
 * job (sup_savepoint_step) then writes the manifest, syncs and renames the
 * directory to DIR. ringctl polls sup_savepoint_status until it is done. */
#ifndef RM_SUP_SAVEPOINT_H
#define RM_SUP_SAVEPOINT_H

#include <stddef.h>

#include "proto.h"

struct sup;
struct cfg;

/* Begin a savepoint into the absolute path dir. 0 with msg saying which
 * savepoint it is, or -1 with msg saying why not: busy (a savepoint or a
 * handler swap in progress), a Kafka source, a partition without a running
 * worker (named), DIR exists, its parent is not writable, a copy failed. */
int sup_savepoint_start(struct sup *s, const char *dir, char *msg, size_t len);

/* The loop's job: follow the workers, and finish (or fail) the savepoint. */
void sup_savepoint_step(struct sup *s);

/* True while a savepoint is being taken (a reload that swaps the handler
 * waits, and the job runs). */
int sup_savepoint_active(const struct sup *s);

/* "savepoint N STATE DIR\n" then a message line: STATE is running, done or
 * failed; "none" when no savepoint was asked for. */
void sup_savepoint_status(const struct sup *s, struct proto_buf *b);

/* At the end of the run. */
void sup_savepoint_free(struct sup *s);

/* --from-savepoint DIR: make cfg's data_dir from the savepoint (data_dir
 * absent or empty; the savepoint verified; partitions as the manifest's),
 * with the source resuming at its position and each shard's output_len 0
 * (the new data_dir's output files start empty). Returns 0, or an exit
 * status (logged). */
int sup_from_savepoint(const struct cfg *cfg, const char *dir);

#endif
