/* dlreplay.c - replaying a dead-letter file through the rings (see
 * dlreplay.h and common/replay.h). */
#include "dlreplay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadletter.h"
#include "event.h"
#include "log.h"
#include "partition.h"
#include "proto.h"
#include "replay.h"
#include "ring.h"
#include "store.h"
#include "supervisor.h"

/* Refusals listed in the reply; the log has them all. */
#define REPLAY_LIST_MAX 20
/* A dead-letter file is read whole: a bound keeps a typo (a disk image)
 * from taking the supervisor's memory. */
#define REPLAY_FILE_MAX (1ull << 32)

struct rp_event {
	uint64_t seq;
	const char *key; /* into buf, decoded */
	size_t key_len;
	const char *payload;
	size_t payload_len;
};

struct sup_replay {
	uint64_t number;
	char *path;
	char *buf; /* the file, decoded in place line by line */
	struct rp_event *ev;
	size_t n, next;
	uint64_t *end_pos; /* [partitions]: ring position after its last event, 0: none */
	uint64_t held_at_start;
	int done_logged;
};

struct rp_scan {
	const char *path;
	struct proto_buf *reply;
	uint64_t refused, cut, listed, earlier, lines;
};

/* A refused line: into the log, and the reply's list while it is short. */
static void refuse(struct rp_scan *sc, uint64_t line, const char *fmt, const char *what)
{
	char msg[256];
	snprintf(msg, sizeof(msg), fmt, what);
	log_warn("replay: %s:%llu: %s: not sent", sc->path, (unsigned long long)line, msg);
	if (sc->listed++ < REPLAY_LIST_MAX)
		proto_buf_printf(sc->reply, "%s:%llu: %s: not sent\n", sc->path,
				 (unsigned long long)line, msg);
	sc->refused++;
}

static int read_all(const char *path, char **out, size_t *len, struct proto_buf *reply)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	if (fd < 0 || fstat(fd, &st) != 0) {
		proto_buf_printf(reply, "%s: cannot read: %s\n", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > REPLAY_FILE_MAX) {
		proto_buf_printf(reply, "%s: not a dead-letter file (%s)\n", path,
				 S_ISREG(st.st_mode) ? "over 4 GiB" : "not a regular file");
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		proto_buf_printf(reply, "%s: out of memory for %lld bytes\n", path,
				 (long long)st.st_size);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			proto_buf_printf(reply, "%s: cannot read: %s\n", path,
					 n ? strerror(errno) : "it shrank while read");
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return -1;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* What the config environment knows of replay `number`. 0 or -ENOENT. */
static int get_record(struct sup *s, uint64_t number, struct replay_file *rf)
{
	char name[REPLAY_NAME_LEN], buf[sizeof(*rf) + 64];
	size_t len;
	replay_file_name(name, number);
	int rc = store_meta_get(s->config, name, buf, sizeof(buf), &len);
	if (rc)
		return rc;
	if (len < sizeof(*rf))
		return -ENOENT;
	memcpy(rf, buf, sizeof(*rf));
	return 0;
}

/* The earlier replay whose file is the longest beginning of this one:
 * its number (0: none) and record. */
static uint64_t find_prefix(struct sup *s, const char *data, size_t len, uint64_t next,
			    struct replay_file *best)
{
	uint64_t found = 0;
	for (uint64_t k = 1; k < next; k++) {
		struct replay_file rf;
		if (get_record(s, k, &rf) != 0 || rf.len > len || (found && rf.len < best->len))
			continue;
		if (replay_hash(REPLAY_HASH_INIT, data, rf.len) == rf.hash) {
			found = k;
			*best = rf;
		}
	}
	return found;
}

/* Split the file into lines and check each; the events from line index
 * `first` on go into r->ev, their original seqs into seqs[index]. */
static int scan(struct sup *s, struct sup_replay *r, size_t len, uint64_t first, uint64_t number,
		unsigned char *seqs, struct rp_scan *sc)
{
	char *p = r->buf, *end = r->buf + len;
	for (uint64_t i = 0; p < end; i++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct dl_record rec;
		struct event_line ev;
		const char *why;
		put_le64(seqs + 8 * i, REPLAY_NO_SEQ);
		if (i < first) {
			sc->earlier++;
		} else if (!nl) {
			refuse(sc, i + 1, "%s", "no newline at its end (a copy still going on?)");
		} else if (dl_parse(p, l, &rec) != 0) {
			refuse(sc, i + 1, "%s", "not a dead-letter line");
		} else if (rec.truncated) {
			char what[32];
			snprintf(what, sizeof(what), "%llu", (unsigned long long)rec.total);
			refuse(sc, i + 1, "a cut line (truncated=%s): not the whole event", what);
			sc->cut++;
		} else if ((why = event_parse_line(rec.line, rec.len, s->cfg.delimiter,
						   s->cfg.max_event_size, &ev)) != NULL) {
			refuse(sc, i + 1, "not an event: %s", why);
		} else {
			put_le64(seqs + 8 * i, rec.seq);
			r->ev[r->n++] = (struct rp_event){replay_seq(number, i), rec.line,
							  ev.key_len, ev.payload, ev.payload_len};
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

/* Count the lines (the last one may lack its newline). */
static uint64_t count_lines(const char *data, size_t len)
{
	uint64_t n = 0;
	for (const char *p = data, *end = data + len; p < end; n++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	return n;
}

/* Record replay `number` (its seqs, what file it was, the counter and the
 * open mark) in one transaction, before any of its events is sent. */
static int record(struct sup *s, uint64_t number, uint64_t next, const struct replay_file *rf,
		  const char *path, const unsigned char *seqs)
{
	char seqs_name[REPLAY_NAME_LEN], file_name[REPLAY_NAME_LEN];
	size_t plen = strlen(path);
	unsigned char *file = malloc(sizeof(*rf) + plen), next_b[8], open_b[8];
	if (!file)
		return -ENOMEM;
	memcpy(file, rf, sizeof(*rf));
	memcpy(file + sizeof(*rf), path, plen);
	put_le64(next_b, next);
	put_le64(open_b, number);
	replay_seqs_name(seqs_name, number);
	replay_file_name(file_name, number);
	const char *names[] = {seqs_name, file_name, "replay_next", "replay_open"};
	const void *vals[] = {seqs, file, next_b, open_b};
	size_t lens[] = {8 * rf->lines, sizeof(*rf) + plen, 8, 8};
	/* An empty blob is a value too: LMDB stores it. */
	int rc = store_meta_put(s->config, 4, names, vals, lens);
	free(file);
	return rc;
}

static int refuse_start(struct proto_buf *reply, const char *fmt, const char *a)
{
	proto_buf_printf(reply, fmt, a);
	return -1;
}

/* Failed partitions would hold the replay's events back: they are not
 * redone by a restart, as a source's are. */
static int check_partitions(struct sup *s, struct proto_buf *reply)
{
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		if (s->workers[p].state == WK_FAILED || s->workers[p].held) {
			proto_buf_printf(reply,
					 "partition %u is failed: its events would be held back; "
					 "run ringctl restart-worker %u first\n",
					 p, p);
			return -1;
		}
	return 0;
}

int replay_start(struct sup *s, const char *path, struct proto_buf *reply)
{
	struct sup_replay *r = NULL;
	unsigned char *seqs = NULL;
	size_t len = 0;
	uint64_t next = 1, open = 0;
	struct replay_file best = {0}, rf;
	struct rp_scan sc = {.path = path, .reply = reply};
	int rc = -1;
	if (s->cfg.source_type == CFG_SOURCE_KAFKA)
		return refuse_start(reply, "%s",
				    "replay is not served with a Kafka source: a Kafka partition's "
				    "events are its offsets, and a replayed one has none; "
				    "produce the dead letters' events into the topic again\n");
	if (s->replay && s->replay->next < s->replay->n)
		return refuse_start(reply, "replay of %s still under way: wait for it\n",
				    s->replay->path);
	if (check_partitions(s, reply) != 0)
		return -1;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->path = strdup(path)) || read_all(path, &r->buf, &len, reply) != 0)
		goto out;
	store_meta_get_u64(s->config, "replay_next", &next);
	store_meta_get_u64(s->config, "replay_open", &open);
	if (next < 1)
		next = 1;
	uint64_t found = find_prefix(s, r->buf, len, next, &best), number, first = 0, prefix = 0;
	if (found && best.len == len && found != open) {
		proto_buf_printf(reply,
				 "%s is replay %llu, durable in every shard: nothing to send\n",
				 path, (unsigned long long)found);
		rc = 0;
		goto out;
	}
	if (open && found != open) {
		struct replay_file o;
		char name[REPLAY_NAME_LEN], buf[sizeof(o) + PROTO_PATH_MAX + 1];
		size_t l = 0;
		replay_file_name(name, open);
		if (store_meta_get(s->config, name, buf, sizeof(buf) - 1, &l) != 0 || l < sizeof(o))
			l = sizeof(o);
		buf[l < sizeof(buf) ? l : sizeof(buf) - 1] = '\0';
		proto_buf_printf(reply,
				 "replay %llu (%s) did not finish: some of its events are not "
				 "durable in their shard yet, or were not sent; replay that "
				 "file again first\n",
				 (unsigned long long)open, buf + sizeof(o));
		goto out;
	}
	if (found && found == open) {
		number = found; /* the same replay, or its file grew: go on with it */
		first = best.first;
		prefix = best.prefix;
	} else {
		number = next++;
		if (found)
			first = best.lines, prefix = found;
	}
	if (number > REPLAY_NUMBER_MAX) {
		proto_buf_printf(reply, "this data_dir has had all the replays it can number\n");
		goto out;
	}
	rf = (struct replay_file){replay_hash(REPLAY_HASH_INIT, r->buf, len), len,
				  count_lines(r->buf, len), first, prefix};
	if (rf.lines > REPLAY_INDEX_MAX) {
		proto_buf_printf(reply, "%s: more lines than a replay numbers\n", path);
		goto out;
	}
	seqs = malloc(8 * rf.lines + 1);
	r->ev = calloc(rf.lines + 1, sizeof(*r->ev));
	r->end_pos = calloc(s->cfg.partitions, sizeof(*r->end_pos));
	if (!seqs || !r->ev || !r->end_pos) {
		proto_buf_printf(reply, "out of memory\n");
		goto out;
	}
	struct proto_buf head;
	proto_buf_init(&head);
	sc.reply = &head; /* the refusals go after the summary */
	scan(s, r, len, first, number, seqs, &sc);
	if ((rc = record(s, number, next, &rf, path, seqs)) != 0) {
		proto_buf_free(&head);
		proto_buf_printf(reply, "%s: cannot record replay %llu: %s\n", s->cfg.data_dir,
				 (unsigned long long)number, strerror(-rc));
		rc = -1;
		goto out;
	}
	r->number = number;
	proto_buf_printf(reply,
			 "replay %llu of %s: sending %zu events (seqs %llu..%llu), refused "
			 "%llu (%llu cut)",
			 (unsigned long long)number, path, r->n,
			 (unsigned long long)replay_seq(number, 0),
			 (unsigned long long)replay_seq(number, REPLAY_INDEX_MAX),
			 (unsigned long long)sc.refused, (unsigned long long)sc.cut);
	if (sc.earlier)
		proto_buf_printf(reply, ", %llu lines were replay %llu's",
				 (unsigned long long)sc.earlier, (unsigned long long)prefix);
	proto_buf_printf(reply, "\n");
	if (head.data)
		proto_buf_add(reply, head.data, head.len);
	if (sc.listed > REPLAY_LIST_MAX)
		proto_buf_printf(reply, "... and %llu more (see the log)\n",
				 (unsigned long long)(sc.listed - REPLAY_LIST_MAX));
	proto_buf_free(&head);
	log_info("replay %llu of %s: sending %zu events, refused %llu (%llu cut)",
		 (unsigned long long)number, path, r->n, (unsigned long long)sc.refused,
		 (unsigned long long)sc.cut);
	replay_free(s);
	r->held_at_start = s->held;
	s->replay = r;
	r = NULL;
	rc = 0;
out:
	free(seqs);
	if (r) {
		free(r->path);
		free(r->buf);
		free(r->ev);
		free(r->end_pos);
		free(r);
	}
	return rc;
}

/* Every event handed over: once each is durable in its shard, the replay
 * is closed (another file may be replayed). */
static void check_durable(struct sup *s, struct sup_replay *r)
{
	if (r->done_logged)
		return;
	if (s->held != r->held_at_start) {
		log_warn("replay %llu of %s: events were held back (a partition failed): "
			 "replay the file again once it runs",
			 (unsigned long long)r->number, r->path);
		r->done_logged = 1;
		return;
	}
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		if (r->end_pos[p] && atomic_load(&s->shm.workers[p].durable_pos) < r->end_pos[p])
			return;
	if (store_meta_put_u64(s->config, "replay_open", 0) != 0) {
		log_warn("%s: cannot record that replay %llu is done", s->cfg.data_dir,
			 (unsigned long long)r->number);
		return;
	}
	log_info("replay %llu of %s: every event durable in its shard",
		 (unsigned long long)r->number, r->path);
	r->done_logged = 1;
}

int replay_feed(struct sup *s, unsigned budget)
{
	struct sup_replay *r = s->replay;
	if (!r)
		return 0;
	if (r->next == r->n) {
		check_durable(s, r);
		return 0;
	}
	for (unsigned k = 0; k < budget && r->next < r->n; k++) {
		const struct rp_event *e = &r->ev[r->next];
		unsigned p = partition_of(e->key, e->key_len, s->cfg.partitions);
		int rc =
		    sup_dispatch_replay(s, e->seq, e->key, e->key_len, e->payload, e->payload_len,
					e->key, e->key_len + 1 + e->payload_len);
		if (rc == -EAGAIN)
			return 0;
		if (rc < 0)
			return -1;
		r->end_pos[p] = ring_write_pos(s->shm.rings[p]);
		r->next++;
	}
	if (r->next == r->n)
		log_info("replay %llu of %s: all %zu events handed over",
			 (unsigned long long)r->number, r->path, r->n);
	return r->next < r->n;
}

void replay_end(struct sup *s)
{
	struct sup_replay *r = s->replay;
	if (!r)
		return;
	if (r->next == r->n)
		check_durable(s, r);
	if (!r->done_logged)
		log_warn("replay %llu of %s: stopped before every event was durable (%zu of %zu "
			 "handed over): replay the file again",
			 (unsigned long long)r->number, r->path, r->next, r->n);
}

void replay_free(struct sup *s)
{
	struct sup_replay *r = s->replay;
	if (!r)
		return;
	free(r->path);
	free(r->buf);
	free(r->ev);
	free(r->end_pos);
	free(r);
	s->replay = NULL;
}
