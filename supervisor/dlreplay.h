/* dlreplay.h - `ringctl replay FILE`: a dead-letter file's events sent
 * through the source path again, interleaved with the running source,
 * with seqs of their own (common/replay.h).
 *
 * The file is read and checked when the request comes: every line is a
 * dead-letter line (deadletter.h) holding an event key<delimiter>payload as
 * a worker wrote it; a cut line (truncated=TOTAL), a line that is not a
 * dead-letter line, or one whose event cannot be parsed is refused (named
 * file:line in the reply and the log) and not sent. The accepted events
 * get the seqs of a replay number, which the config environment records
 * against the file's content hash and length: the same file again gets
 * the same number, so the shards skip what they applied already; a file
 * that begins with an earlier, finished replay's file (the dead-letter
 * file grew) sends only its new lines, under a new number. Only one replay
 * is open at a time: until every event of it is durable in its shard, a
 * replay of another file is refused. */
#ifndef RM_DLREPLAY_H
#define RM_DLREPLAY_H

#include <stddef.h>
#include <stdint.h>

struct sup;
struct proto_buf;

/* Start replaying `path` (the control request). Writes the reply (counts,
 * the range of seqs, the lines refused) into `reply`. 0, or -1 when the
 * replay is refused (the reply says why; nothing was sent). */
int replay_start(struct sup *s, const char *path, struct proto_buf *reply);

/* From the loop: hand over at most `budget` events of the replay under
 * way, and notice when it is durable everywhere. Returns 1 when events were
 * handed over and more wait, 0 when there is nothing to do now (or a ring
 * is full: s->blocked), -1 when the run must stop. */
int replay_feed(struct sup *s, unsigned budget);

/* At the end of the run, the workers stopped: close the replay if every
 * event of it is durable, else say that the file must be replayed again. */
void replay_end(struct sup *s);

void replay_free(struct sup *s);

/* Hand a replayed event to its key's partition (supervisor.c: sup_dispatch
 * without the check that keeps sources below SEQ_REPLAY). */
int sup_dispatch_replay(struct sup *s, uint64_t seq, const char *key, size_t key_len,
			const char *payload, size_t payload_len, const char *line, size_t line_len);

#endif
