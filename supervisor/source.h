/* source.h - where events come from, and all a source sees of the
 * supervisor.
 *
 * A source is a table of operations (struct source_ops) and its own state.
 * The supervisor's loop owns the waiting: it asks the source for at most a
 * budget of events at a time (read), waits on the source's descriptor (or
 * for its idle timeout) when it has none, and waits for room when a ring is
 * full. A source never blocks and never calls back into the loop: it hands
 * each event over through the narrow interface below (sup_dispatch,
 * sup_dead_letter) and says where it is (position). struct sup is opaque
 * here.
 *
 * A new source is one file defining a `const struct source_ops`, and one
 * line in supervisor.c's table of sources. */
#ifndef RM_SOURCE_H
#define RM_SOURCE_H

#include <stddef.h>
#include <stdint.h>

struct cfg;
struct shm;
struct store_env;
struct sup;

/* What read returns. SRC_FULL: an event could not be handed over because
 * its ring is full; it was not taken, and the next read hands it over
 * again (the loop calls read once there is room). */
enum src_result {
	SRC_ERROR = -1, /* logged: the run stops, and ends 1 */
	SRC_IDLE = 0,	/* nothing to read now: wait on pollfd */
	SRC_MORE = 1,	/* events handed over; there may be more */
	SRC_FULL = 2,	/* a ring is full */
	SRC_END = 3,	/* the input ended (a finite source) */
};

/* Seqs: each source's events have unique, increasing seqs; the watermark
 * is one. The file source's seq is a byte position: base + the line's
 * offset in its file, where base is 0 for the first file read from the path
 * and, when a rotation is followed, the previous file's base plus its
 * length: the position in the concatenation of every file read. The
 * current file's identity and base are recorded together in the config
 * environment (src_file.c), so a watermark maps into it as seq - base.
 * The spool source's seq is file number << 40 | byte offset (src_spool.c).
 * Every source's seqs are below 2^63 (SEQ_REPLAY): the seqs from 2^63 up
 * are kept for replaying dead letters (README, "Seqs"). */
#define SEQ_REPLAY (1ull << 63)

/* Where a source is: every event below next_seq has been handed over (or
 * dead-lettered): the watermark may pass it. read and size (bytes or
 * events, 0 if unknown) are for progress and `ringctl status`. */
struct src_pos {
	uint64_t next_seq, read, size;
	/* A source of many files (spool): the one being read ("" between
	 * files), how many were read to their end and how many wait. */
	int files;
	const char *file;
	uint64_t files_done, files_waiting;
};

struct source {
	const struct source_ops *ops;
	void *priv;		  /* the source's own state */
	struct sup *sup;	  /* the host: for the calls below */
	const struct cfg *cfg;	  /* the running configuration */
	struct store_env *config; /* the config environment (a file's identity) */
	struct shm *shm;	  /* the workers' shared state (Kafka) */
	uint64_t resume_seq;	  /* where to start: the watermark */
};

struct source_ops {
	const char *name;
	/* Before any worker starts: open, check, seek to resume_seq. 0, or
	 * the exit status to stop with (logged). close is called after open
	 * whatever it returned. */
	int (*open)(struct source *src);
	/* The descriptor that becomes readable when there is input (-1:
	 * none), and the longest the loop may wait before calling read
	 * again when the source is idle. */
	int (*pollfd)(struct source *src, int *idle_ms);
	/* Hand over at most `budget` events. */
	enum src_result (*read)(struct source *src, unsigned budget);
	/* Work to do now and then whatever comes (NULL: none): run every
	 * SRC_TICK_MS by the loop. */
	void (*tick)(struct source *src);
	void (*position)(const struct source *src, struct src_pos *pos);
	/* At the end of the run, before the workers stop. Returns 0, or an
	 * exit status to end with (EX_TEMPFAIL: Kafka offsets not committed). */
	int (*close)(struct source *src);
	/* Every event below `watermark` is durable, and so is the watermark
	 * (NULL: nothing to do then). Called after each new watermark is
	 * recorded, and once more at the very end, after close and after the
	 * workers stopped. */
	void (*durable)(struct source *src, uint64_t watermark);
	/* After all that (NULL: close freed everything). */
	void (*release)(struct source *src);
};

#define SRC_TICK_MS 10

extern const struct source_ops src_file_ops;	 /* src_file.c */
extern const struct source_ops src_generate_ops; /* src_generate.c */
extern const struct source_ops src_zmq_ops;	 /* src_zmq.c */
extern const struct source_ops src_kafka_ops;	 /* src_kafka.c */
extern const struct source_ops src_spool_ops;	 /* src_spool.c */

/* ---- the supervisor, as a source sees it ---- */

/* Hand one event to the ring of `partition` (-1: the partition its key
 * hashes to). Returns 0 when it was taken: dispatched, dead-lettered (it can
 * never fit: too_long), held back (its partition failed) or dropped (a
 * Kafka partition that is ours no longer); -EAGAIN when the ring is full
 * (nothing was taken); -1 when the run must stop. `line` is what a dead
 * letter keeps. */
int sup_dispatch(struct sup *s, int partition, uint64_t seq, const char *key, size_t key_len,
		 const char *payload, size_t payload_len, const char *line, size_t line_len);

/* Dead-letter what the source could not turn into an event: the first
 * `len` bytes of `total` (total > len: it is marked as cut, deadletter.h).
 * 0, or -1 when out of memory. */
int sup_dead_letter(struct sup *s, uint64_t seq, const char *reason, const char *line, size_t len,
		    uint64_t total);

/* A line's parse took `ns` (timed for the events stage_sampled picks):
 * for the supervisor's share of time spent parsing (stage.h). */
void sup_note_parse(struct sup *s, uint64_t ns);

/* Dead letters not yet on disk: a position past them must not be stored. */
int sup_dead_pending(const struct sup *s);

/* 0, or how many stop requests came (a second one: stop at once). */
int sup_stopping(void);

/* The highest seq any shard applied, +1 (0 if none). */
uint64_t sup_next_unapplied(const struct sup *s);

/* The one nested wait, for what must finish inside a library's callback
 * (the Kafka rebalance): up to timeout_ms serving the control socket and
 * supervising the workers. */
void sup_wait_nested(struct sup *s, int timeout_ms);

/* ---- for the Kafka source: partitions that come and go ---- */

int sup_part_owned(const struct sup *s, unsigned p);   /* it has a worker, or will */
int sup_part_running(const struct sup *s, unsigned p); /* its worker runs and stays */
int sup_part_acquire(struct sup *s, unsigned p);       /* lc_acquire */
void sup_part_release(struct sup *s, unsigned p);      /* lc_release */
void sup_part_kill(struct sup *s, unsigned p, const char *why);
/* Kafka deleted `lost` events of p before they were read. Returns 1 when
 * `ringctl restart-worker` accepted the loss (once), else counts them and
 * returns 0. */
int sup_part_lost(struct sup *s, unsigned p, uint64_t lost);
void sup_part_fail_data_loss(struct sup *s, unsigned p);

/* ---- shared by the text sources (src_line.c) ---- */

/* One text line (without its newline) at `seq`, of which the first `len`
 * bytes of `total` were kept: parsed into an event and dispatched to
 * `partition` (-1: by its key), or dead-lettered (too_long, no_delimiter,
 * empty_line, empty_key, key_too_long; with [source] format = jsonl,
 * event.h's event_parse_json and its reasons). A trailing CR is dropped.
 * Returns what sup_dispatch returns. So a line means the same whatever
 * carried it. */
int src_line(struct source *src, int partition, uint64_t seq, const char *line, size_t len,
	     uint64_t total);

/* A line longer than this is cut before it is parsed: it is too long
 * anyway (two bytes over, so dropping a trailing CR cannot bring one under
 * the limit), and its dead letter keeps this much. */
size_t src_line_limit(const struct source *src);

/* A message in two parts, key and value, as the line key<delimiter>value
 * (so that it is checked and dead-lettered exactly as a line of a file),
 * cut to src_line_limit. A key holding the delimiter or a newline would not
 * survive that: it is dead-lettered as bad_key. With format = jsonl the
 * value alone is the line: the JSON's key field is the event's key. `buf`
 * is the source's buffer for the joined line, grown as needed. */
struct src_joined {
	char *buf;
	size_t cap;
};
int src_pair(struct source *src, struct src_joined *j, int partition, uint64_t seq, const char *key,
	     size_t key_len, const char *val, size_t val_len);

#endif
