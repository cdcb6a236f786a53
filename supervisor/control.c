/* control.c - the control socket server (see control.h, and ctlproto.h
 * for the wire format and its limits).
 *
 * A plain Unix stream socket served from the supervisor's loop with
 * poll(): the listening socket and every connection are non-blocking, each
 * connection has its own input and output buffers, and nothing a client
 * does or fails to do can make the supervisor wait:
 *
 *   - a request is read as it comes, up to PROTO_MAX_REQUEST bytes kept;
 *     a larger one is read and thrown away (its error reply names its
 *     size), one over CTLPROTO_MAX_FRAME closes the connection unread;
 *   - a reply is written as far as the socket takes it, the rest when the
 *     client reads; no further request of that connection is read
 *     meanwhile, so a client holds at most one reply;
 *   - a connection that does not send a whole request, or take its reply,
 *     in time is closed (CTLPROTO_*_TIMEOUT_MS);
 *   - connections are capped (connection_cap): at the cap a new one
 *     closes the one idle the longest, so a client that opens connections
 *     and holds them cannot lock ringctl out;
 *   - accept() failing for lack of descriptors (EMFILE, ENFILE) neither
 *     aborts nor spins: a connection of ours is closed to make room, or,
 *     with none, a spare descriptor kept open on /dev/null is given up for
 *     a moment to take the connection off the backlog and refuse it (the
 *     libevent and nginx trick); failing that, accepting pauses briefly;
 *   - refusals are logged once a burst, then counted, not per connection.
 *
 * Workers never hold any of it: the fork server they come from closed
 * every descriptor it inherited (forksrv.h).
 *
 * Every figure comes from the supervisor's own struct and the shared
 * mapping, so answering costs the workers nothing. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctlproto.h"
#include "dlreplay.h"
#include "fdlimit.h"
#include "log.h"
#include "metrics.h"
#include "observe.h"
#include "proto.h"
#include "rescale_sup.h"
#include "savepoint.h"
#include "supervisor.h"

#define MS 1000000ull
#define CONTROL_BACKLOG 128		     /* connections the kernel holds before accept */
#define CONTROL_ACCEPTS 64		     /* connections accepted by one poll at most */
#define CONTROL_REQUESTS 8		     /* requests of one connection served by one poll */
#define CONTROL_READ_MIN 4096		     /* input buffer, to begin with */
#define CONTROL_MIN_CONNECTIONS 4	     /* the cap, however few descriptors are left */
#define CONTROL_PAUSE_MS 100		     /* not accepting, when accept() cannot */
#define CONTROL_CLOSE_LINGER_MS 200	     /* so the reply to `stop` leaves */
#define CONTROL_BURST_QUIET_NS (2000 * MS)   /* a burst of refusals ends */
#define CONTROL_BURST_REPORT_NS (30000 * MS) /* a long one is reported now and then */
#define CONTROL_MSG_LEN 8192

/* One client connection. */
struct conn {
	int fd;
	unsigned char *in; /* received, not yet served: frames */
	size_t in_len, in_cap;
	int skipping;	      /* reading an oversized request to throw it away */
	size_t skip;	      /* its bytes still to come */
	size_t skip_len;      /* its size, for the error reply */
	int eof;	      /* the client has shut its side */
	int ready;	      /* more to serve without waiting for the socket */
	struct proto_buf out; /* the reply being written */
	size_t out_off;
	uint64_t deadline_ns; /* for the whole request, or for taking the reply */
	uint64_t since_ns;    /* opened, or last reply taken: the oldest goes first */
};

/* Connections closed or refused since the first of a burst. */
enum burst_kind { BURST_CAP, BURST_FDS, BURST_REFUSED, BURST_PAUSED };

struct control_burst {
	unsigned count[4]; /* by enum burst_kind */
	uint64_t first_ns, last_ns, reported_ns;
};

struct control {
	int fd;	   /* listening */
	int spare; /* /dev/null, given up to refuse a connection without descriptors */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int bound;
	unsigned cap, n;
	struct conn *conns;	  /* [cap], n in use */
	unsigned polled;	  /* connections in the last control_pollfds */
	int busy;		  /* work left that needs no waiting */
	uint64_t paused_until_ns; /* accept() failed: not listening until then */
	struct control_burst burst;
};

/* ---- figures ---- */

/* One partition's figures, for `workers` and `metrics`. */
struct worker_row {
	uint64_t partition, pid, up, failed, held, offsets_lost, restarts;
	const char *state, *last_exit;
	char state_buf[32]; /* "restoring 42%" */
	double uptime;	    /* NAN when not running */
	struct ring_stats ring;
	uint64_t processed, skipped, rejected, batches, applied_seq, lag;
	uint64_t batch_p50, batch_p99, commit_p50_us, commit_p99_us;
	double rate, busy_s, wait_s;
	char version[17]; /* the handler version it runs, "" before it says */
	uint64_t switch_seq;
};

static void worker_row(const struct sup *s, unsigned p, uint64_t now, struct worker_row *r)
{
	const struct sup_worker *w = &s->workers[p];
	const struct shm_worker *sw = &s->shm.workers[p];
	memset(r, 0, sizeof(*r));
	r->partition = p;
	r->pid = w->pid > 0 ? (uint64_t)w->pid : 0;
	r->up = w->pid > 0 && w->state == WK_RUNNING;
	r->failed = w->state == WK_FAILED;
	r->held = w->held;
	r->offsets_lost = w->offsets_lost;
	r->state = sup_wstate_name(w->state);
	if (w->state == WK_STOPPED && atomic_load(&sw->kafka_fenced_by))
		r->state = "fenced";
	else if (w->state == WK_RUNNING && atomic_load(&sw->restoring)) {
		snprintf(r->state_buf, sizeof(r->state_buf), "restoring %u%%",
			 (unsigned)atomic_load(&sw->restore_pct));
		r->state = r->state_buf;
	}
	r->uptime = w->pid > 0 && now >= w->started_ns ? (double)(now - w->started_ns) / 1e9 : NAN;
	r->restarts = w->restarts;
	r->last_exit = w->last_exit;
	ring_stats(s->shm.rings[p], &r->ring);
	r->processed = atomic_load(&sw->processed);
	r->skipped = atomic_load(&sw->skipped);
	r->rejected = atomic_load(&sw->rejected);
	r->batches = atomic_load(&sw->batches);
	r->applied_seq = atomic_load(&sw->applied_seq);
	uint64_t consumed = atomic_load(&sw->consumed);
	r->lag = r->ring.records > consumed ? r->ring.records - consumed : 0;
	r->batch_p50 = shm_hist_quantile(sw->batch_hist, 0.50);
	r->batch_p99 = shm_hist_quantile(sw->batch_hist, 0.99);
	r->commit_p50_us = shm_hist_quantile(sw->commit_us_hist, 0.50);
	r->commit_p99_us = shm_hist_quantile(sw->commit_us_hist, 0.99);
	r->rate = sup_worker_rate(s, p);
	r->busy_s = (double)atomic_load(&sw->busy_ns) / 1e9;
	r->wait_s = (double)atomic_load(&sw->wait_ns) / 1e9;
	uint64_t v = atomic_load(&sw->handler_version);
	if (v)
		snprintf(r->version, sizeof(r->version), "%016llx", (unsigned long long)v);
	r->switch_seq = atomic_load(&sw->barrier_done) ? atomic_load(&sw->switch_seq) : 0;
}

/* The instance as a whole, for `status` and `metrics`. */
struct status_row {
	const char *source, *source_name, *unit, *file;
	uint64_t files_done, files_waiting;
	uint64_t pid, generation, partitions, pos, size, lag;
	uint64_t processed, rejected, skipped, restarts, running, failed, held;
	double uptime, rate;
};

static void describe_source(const struct sup *s, struct status_row *st)
{
	const struct cfg *c = &s->cfg;
	st->size = s->source_size;
	switch (c->source_type) {
	case CFG_SOURCE_FILE: {
		struct stat sb; /* follow mode: the file grows, so look now */
		st->source = c->follow ? "file (follow)" : "file";
		st->source_name = strcmp(c->source_path, "-") == 0 ? "stdin" : c->source_path;
		st->unit = "bytes";
		if (strcmp(c->source_path, "-") != 0 && stat(c->source_path, &sb) == 0 &&
		    S_ISREG(sb.st_mode))
			st->size = (uint64_t)sb.st_size;
		break;
	}
	case CFG_SOURCE_SPOOL:
		st->source = c->follow ? "spool (follow)" : "spool";
		st->source_name = c->spool_dir;
		st->unit = "bytes"; /* of the current file */
		break;
	case CFG_SOURCE_GENERATE:
		st->source = "generate";
		st->source_name = "";
		st->unit = "events";
		break;
	case CFG_SOURCE_ZMQ:
		st->source = "zmq";
		st->source_name = c->zmq_bind ? c->zmq_bind : "";
		st->unit = "events";
		break;
	case CFG_SOURCE_KAFKA:
		st->source = "kafka";
		st->source_name = c->kafka_topic ? c->kafka_topic : "";
		st->unit = "records";
		break;
	}
	st->pos = s->source_pos;
	st->lag = st->size > st->pos ? st->size - st->pos : 0;
	st->file = s->files.files ? s->source_file : "";
	st->files_done = s->files.files_done;
	st->files_waiting = s->files.files_waiting;
}

static void status_row(const struct sup *s, uint64_t now, struct status_row *st)
{
	memset(st, 0, sizeof(*st));
	describe_source(s, st);
	st->pid = (uint64_t)getpid();
	st->generation = s->generation;
	st->partitions = s->cfg.partitions;
	st->uptime = (double)(now - s->start_ns) / 1e9;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct shm_worker *sw = &s->shm.workers[p];
		st->processed += atomic_load(&sw->processed);
		st->rejected += atomic_load(&sw->rejected);
		st->skipped += atomic_load(&sw->skipped);
		st->restarts += s->workers[p].restarts;
		st->running += s->workers[p].pid > 0;
		st->failed += s->workers[p].state == WK_FAILED;
		st->held += s->workers[p].held;
		st->rate += sup_worker_rate(s, p);
	}
}

/* ---- status, workers ---- */

static struct proto_value str_v(const char *s)
{
	return (struct proto_value){.type = PROTO_T_STR, .s = s};
}

static struct proto_value u64_v(uint64_t u)
{
	return (struct proto_value){.type = PROTO_T_U64, .u = u};
}

static struct proto_value typed_v(enum proto_type t, uint64_t u, double f)
{
	return (struct proto_value){.type = t, .u = u, .f = f};
}

static void render_status(const struct sup *s, enum proto_format fmt, struct proto_buf *b)
{
	static const struct proto_column cols[] = {
	    {"name", "name"},
	    {"pid", "pid"},
	    {"state", "state"},
	    {"uptime_seconds", "uptime"},
	    {"config", "config"},
	    {"generation", "generation"},
	    {"partitions", "partitions"},
	    {"source", "source"},
	    {"source_name", "source name"},
	    {"source_unit", "position unit"},
	    {"source_position", "position"},
	    {"source_size", "size"},
	    {"source_lag", "lag"},
	    {"source_file", "file"},
	    {"files_done", "files done"},
	    {"files_waiting", "files waiting"},
	    {"events_read", "events read"},
	    {"dispatched", "dispatched"},
	    {"processed", "processed"},
	    {"skipped", "skipped"},
	    {"source_dead_lettered", "source dead-lettered"},
	    {"handler_rejected", "handler rejected"},
	    {"events_per_second", "events/s"},
	    {"workers_running", "workers running"},
	    {"restarts", "restarts"},
	    {"failed_partitions", "failed partitions"},
	    {"held", "held back"},
	    {"imbalance", "imbalance"},
	    {"hot_key", "hottest key"},
	    {"hot_key_partition", "its partition"},
	    {"hot_key_pct", "its share %"},
	};
	struct status_row st;
	status_row(s, shm_now_ns(), &st);
	/* Hot partitions and keys (observe.h). */
	struct obs_proc *procs = calloc(1 + s->cfg.partitions, sizeof(*procs));
	char hot[HOT_KEY_MAX + 1] = "";
	unsigned hot_p = 0;
	double hot_share = NAN, imbalance = NAN;
	if (procs) {
		obs_collect(s, procs);
		imbalance = obs_imbalance(procs, s->cfg.partitions);
		if (obs_hottest(procs, s->cfg.partitions, hot, sizeof(hot), &hot_p, &hot_share) !=
		    0)
			hot_share = NAN;
		free(procs);
	}
	const struct proto_value vals[] = {
	    str_v(s->cfg.name),
	    u64_v(st.pid),
	    str_v(sup_state_name(s->state)),
	    typed_v(PROTO_T_SECS, 0, st.uptime),
	    str_v(s->cfg.file),
	    u64_v(st.generation),
	    u64_v(st.partitions),
	    str_v(st.source),
	    str_v(st.source_name),
	    str_v(st.unit),
	    u64_v(st.pos),
	    u64_v(st.size),
	    u64_v(st.lag),
	    str_v(st.file),
	    u64_v(st.files_done),
	    u64_v(st.files_waiting),
	    u64_v(s->lines),
	    u64_v(s->dispatched),
	    u64_v(st.processed),
	    u64_v(st.skipped),
	    u64_v(s->dead_lettered),
	    u64_v(st.rejected),
	    typed_v(PROTO_T_F64, 0, st.rate),
	    u64_v(st.running),
	    u64_v(st.restarts),
	    u64_v(st.failed),
	    u64_v(st.held),
	    typed_v(PROTO_T_F64, 0, imbalance),
	    str_v(hot),
	    u64_v(hot_p),
	    typed_v(PROTO_T_F64, 0, 100 * hot_share),
	};
	_Static_assert(sizeof(cols) / sizeof(cols[0]) == sizeof(vals) / sizeof(vals[0]),
		       "one value per column");
	proto_render_object(b, fmt, cols, vals, sizeof(vals) / sizeof(vals[0]));
}

static const struct proto_column worker_cols[] = {
    {"partition", "P"},
    {"pid", "PID"},
    {"state", "STATE"},
    {"uptime_seconds", "UPTIME"},
    {"restarts", "RESTARTS"},
    {"ring_depth_bytes", "DEPTH"},
    {"ring_high_water_bytes", "HIGH"},
    {"ring_capacity_bytes", "RING"},
    {"processed", "PROCESSED"},
    {"events_per_second", "EV/S"},
    {"applied_seq", "SEQ"},
    {"lag_records", "LAG"},
    {"batch_p50", "BATCH50"},
    {"batch_p99", "BATCH99"},
    {"commit_p50_us", "COMMIT50us"},
    {"commit_p99_us", "COMMIT99us"},
    {"handler_version", "VERSION"},
    {"switch_seq", "SWITCHED"},
    {"last_exit", "LAST EXIT"},
};
#define WORKER_COLS (sizeof(worker_cols) / sizeof(worker_cols[0]))

static void worker_values(const struct worker_row *r, struct proto_value *v)
{
	const struct proto_value row[] = {
	    u64_v(r->partition),
	    u64_v(r->pid),
	    str_v(r->state),
	    typed_v(PROTO_T_SECS, 0, r->uptime),
	    u64_v(r->restarts),
	    typed_v(PROTO_T_BYTES, r->ring.depth, 0),
	    typed_v(PROTO_T_BYTES, r->ring.high_water, 0),
	    typed_v(PROTO_T_BYTES, r->ring.capacity, 0),
	    u64_v(r->processed),
	    typed_v(PROTO_T_F64, 0, r->rate),
	    u64_v(r->applied_seq),
	    u64_v(r->lag),
	    u64_v(r->batch_p50),
	    u64_v(r->batch_p99),
	    u64_v(r->commit_p50_us),
	    u64_v(r->commit_p99_us),
	    str_v(r->version),
	    u64_v(r->switch_seq),
	    str_v(r->last_exit),
	};
	_Static_assert(sizeof(row) / sizeof(row[0]) == WORKER_COLS, "one value per column");
	memcpy(v, row, sizeof(row));
}

static int render_workers(const struct sup *s, enum proto_format fmt, struct proto_buf *b)
{
	unsigned n = s->cfg.partitions;
	struct worker_row *rows = calloc(n, sizeof(*rows));
	struct proto_value *cells = calloc((size_t)n * WORKER_COLS, sizeof(*cells));
	int rc = -1;
	if (!rows || !cells)
		goto out;
	uint64_t now = shm_now_ns();
	for (unsigned p = 0; p < n; p++) {
		worker_row(s, p, now, &rows[p]);
		worker_values(&rows[p], &cells[(size_t)p * WORKER_COLS]);
	}
	proto_render_table(b, fmt, worker_cols, WORKER_COLS, cells, n);
	rc = 0;
out:
	free(rows);
	free(cells);
	return rc;
}

/* ---- metrics ---- */

enum metric_kind { M_U64, M_F64 };

struct metric {
	const char *name; /* after "ringmaster_" */
	const char *type;
	const char *help;
	enum metric_kind kind;
	size_t off;   /* in struct worker_row or struct status_row */
	double scale; /* F64 metrics from U64 fields: 0 = none */
};

#define WM(n, t, k, f, h)                                                                          \
	{                                                                                          \
		n, t, h, k, offsetof(struct worker_row, f), 0                                      \
	}
#define SM(n, t, k, f, h)                                                                          \
	{                                                                                          \
		n, t, h, k, offsetof(struct status_row, f), 0                                      \
	}

static const struct metric status_metrics[] = {
    SM("uptime_seconds", "gauge", M_F64, uptime, "Seconds since the supervisor started."),
    SM("config_generation", "gauge", M_U64, generation,
       "Generation of the loaded configuration and tables."),
    SM("partitions", "gauge", M_U64, partitions, "Number of partitions (workers)."),
    /* One unit a name: the source's unit is appended (bytes, events, records). */
    SM("source_position", "gauge", M_U64, pos, "Position reached in the source."),
    SM("source_lag", "gauge", M_U64, lag, "Source left to read, when its size is known."),
    SM("source_files_done", "gauge", M_U64, files_done, "Spool: files read to their end."),
    SM("source_files_waiting", "gauge", M_U64, files_waiting, "Spool: files waiting to be read."),
};

static const struct metric worker_metrics[] = {
    WM("worker_up", "gauge", M_U64, up, "1 while the partition's worker process runs."),
    WM("worker_failed", "gauge", M_U64, failed,
       "1 when the partition failed (fail_after or an fsync) and is not restarted."),
    WM("worker_events_held_total", "counter", M_U64, held,
       "Events not dispatched because the partition failed; redone at the next start."),
    WM("kafka_offsets_lost_total", "counter", M_U64, offsets_lost,
       "Kafka events deleted by retention before this group processed them."),
    WM("worker_restarts_total", "counter", M_U64, restarts, "Times the worker was restarted."),
    WM("worker_uptime_seconds", "gauge", M_F64, uptime,
       "Seconds since the current worker process started."),
    WM("worker_events_processed_total", "counter", M_U64, processed,
       "Events run through the handler and committed."),
    WM("worker_events_skipped_total", "counter", M_U64, skipped,
       "Events skipped as already applied (seq at or below the committed one)."),
    WM("worker_events_rejected_total", "counter", M_U64, rejected,
       "Events the handler rejected (dead-lettered)."),
    WM("worker_batches_total", "counter", M_U64, batches, "Batches committed."),
    WM("worker_events_per_second", "gauge", M_F64, rate,
       "Events processed per second over the last 10 seconds."),
    WM("worker_applied_seq", "gauge", M_U64, applied_seq, "Last committed seq."),
    WM("worker_lag_records", "gauge", M_U64, lag, "Records in the ring not yet committed."),
    WM("worker_busy_seconds_total", "counter", M_F64, busy_s, "Seconds spent on batches."),
    WM("worker_wait_seconds_total", "counter", M_F64, wait_s, "Seconds spent waiting for events."),
    WM("ring_depth_bytes", "gauge", M_U64, ring.depth, "Bytes in the ring not yet acked."),
    WM("ring_high_water_bytes", "gauge", M_U64, ring.high_water, "Largest ring depth seen."),
    WM("ring_capacity_bytes", "gauge", M_U64, ring.capacity, "Size of the ring's data area."),
    WM("ring_records_total", "counter", M_U64, ring.records, "Records put in the ring."),
    WM("ring_producer_waits_total", "counter", M_U64, ring.producer_waits,
       "Times the supervisor waited on a full ring."),
    WM("ring_consumer_waits_total", "counter", M_U64, ring.consumer_waits,
       "Times the worker waited on an empty ring."),
};

static void metric_head(struct proto_buf *b, const struct metric *m)
{
	proto_buf_printf(b, "# HELP ringmaster_%s %s\n# TYPE ringmaster_%s %s\n", m->name, m->help,
			 m->name, m->type);
}

static void metric_value(struct proto_buf *b, const struct metric *m, const void *row)
{
	const char *field = (const char *)row + m->off;
	if (m->scale != 0) {
		uint64_t u;
		memcpy(&u, field, sizeof(u));
		proto_buf_printf(b, "%.6f\n", (double)u * m->scale);
	} else if (m->kind == M_U64) {
		uint64_t u;
		memcpy(&u, field, sizeof(u));
		proto_buf_printf(b, "%llu\n", (unsigned long long)u);
	} else {
		double f;
		memcpy(&f, field, sizeof(f));
		if (isnan(f))
			proto_buf_add(b, "NaN\n", 4);
		else
			proto_buf_printf(b, "%.3f\n", f);
	}
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct proto_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			proto_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			proto_buf_add(b, "\\n", 2);
		else
			proto_buf_add(b, s, 1);
	}
}

static int render_metrics(const struct sup *s, struct proto_buf *b)
{
	unsigned n = s->cfg.partitions;
	struct worker_row *rows = calloc(n, sizeof(*rows));
	if (!rows)
		return -1;
	uint64_t now = shm_now_ns();
	struct status_row st;
	status_row(s, now, &st);
	proto_buf_printf(b, "# HELP ringmaster_info The instance; the value is always 1.\n"
			    "# TYPE ringmaster_info gauge\nringmaster_info{name=\"");
	label_value(b, s->cfg.name);
	proto_buf_printf(b, "\",version=\"%s\"} 1\n", RM_VERSION);
	/* The state as a set of gauges, one at 1: a label that changed with
	 * the state would make a new series of ringmaster_info each time. */
	proto_buf_printf(b,
			 "# HELP ringmaster_state The supervisor's state: 1 for the current one.\n"
			 "# TYPE ringmaster_state gauge\n");
	for (int i = SUP_STARTING; i <= SUP_STOPPING; i++)
		proto_buf_printf(b, "ringmaster_state{state=\"%s\"} %d\n",
				 sup_state_name((enum sup_state)i), s->state == (enum sup_state)i);
	proto_buf_printf(b,
			 "# HELP ringmaster_events_read_total Events read from the source.\n"
			 "# TYPE ringmaster_events_read_total counter\n"
			 "ringmaster_events_read_total %llu\n"
			 "# HELP ringmaster_events_dispatched_total Events handed to a ring.\n"
			 "# TYPE ringmaster_events_dispatched_total counter\n"
			 "ringmaster_events_dispatched_total %llu\n"
			 "# HELP ringmaster_source_dead_lettered_total Source lines that were "
			 "not events.\n# TYPE ringmaster_source_dead_lettered_total counter\n"
			 "ringmaster_source_dead_lettered_total %llu\n",
			 (unsigned long long)s->lines, (unsigned long long)s->dispatched,
			 (unsigned long long)s->dead_lettered);
	for (size_t i = 0; i < sizeof(status_metrics) / sizeof(status_metrics[0]); i++) {
		struct metric m = status_metrics[i];
		char name[64];
		if (m.off == offsetof(struct status_row, pos) ||
		    m.off == offsetof(struct status_row, lag)) {
			snprintf(name, sizeof(name), "%s_%s", m.name, st.unit);
			m.name = name;
		}
		metric_head(b, &m);
		proto_buf_printf(b, "ringmaster_%s ", m.name);
		metric_value(b, &m, &st);
	}
	for (unsigned p = 0; p < n; p++)
		worker_row(s, p, now, &rows[p]);
	for (size_t i = 0; i < sizeof(worker_metrics) / sizeof(worker_metrics[0]); i++) {
		metric_head(b, &worker_metrics[i]);
		for (unsigned p = 0; p < n; p++) {
			proto_buf_printf(b, "ringmaster_%s{partition=\"%u\"} ",
					 worker_metrics[i].name, p);
			metric_value(b, &worker_metrics[i], &rows[p]);
		}
	}
	free(rows);
	return metrics_render(s, b);
}

int control_metrics(const struct sup *s, struct proto_buf *b)
{
	return render_metrics(s, b);
}

/* ---- commands that act ---- */

static int do_reload(struct sup *s, struct proto_buf *b)
{
	char msg[CONTROL_MSG_LEN] = "";
	log_info("control: reload requested");
	int rc = sup_reload(s, msg, sizeof(msg));
	size_t len = strlen(msg);
	const char *nl = len && msg[len - 1] != '\n' ? "\n" : "";
	if (rc == 0)
		proto_buf_printf(b, "reloaded: generation %llu\n%s%s",
				 (unsigned long long)s->generation, msg, nl);
	else
		proto_buf_printf(b, "reload refused, the running configuration stays:\n%s%s",
				 len ? msg : "(no reason given)", len ? nl : "\n");
	return rc;
}

static int do_restart(struct sup *s, unsigned p, struct proto_buf *b)
{
	char msg[CONTROL_MSG_LEN] = "";
	log_info("control: restart of worker %u requested", p);
	if (sup_restart_worker(s, p, msg, sizeof(msg)) != 0) {
		proto_buf_printf(b, "cannot restart worker %u: %s\n", p,
				 msg[0] ? msg : "(no reason given)");
		return -1;
	}
	proto_buf_printf(b, "restarting worker %u: %s\n", p, msg);
	return 0;
}

static int do_savepoint(struct sup *s, const char *dir, struct proto_buf *b)
{
	char msg[CONTROL_MSG_LEN] = "";
	log_info("control: savepoint into %s requested", dir);
	int rc = sup_savepoint_start(s, dir, msg, sizeof(msg));
	proto_buf_printf(b, "%s%s\n", rc ? "savepoint refused: " : "", msg);
	return rc;
}

/* --json of a command whose reply is a message: {"ok": ..., "command":
 * ..., "message": ...}, the message without its last newline. */
static void json_reply(const char *cmd, size_t cmd_len, int rc, struct proto_buf *b)
{
	struct proto_buf j;
	size_t len = b->len;
	if (len && b->data[len - 1] == '\n')
		len--;
	proto_buf_init(&j);
	proto_buf_printf(&j, "{\"ok\":%s,\"command\":", rc == 0 ? "true" : "false");
	proto_json_string(&j, cmd, cmd_len);
	proto_buf_printf(&j, ",\"message\":");
	proto_json_string(&j, b->data ? b->data : "", len);
	proto_buf_printf(&j, "}\n");
	proto_buf_free(b);
	*b = j;
}

static int serve(struct sup *s, const struct proto_request *req, struct proto_buf *b);

/* Serve one request frame into body; 0 for an ok reply, -1 for an error. */
static int handle(struct sup *s, const void *frame, size_t len, struct proto_buf *b)
{
	struct proto_request req;
	char err[PROTO_ERR_LEN];
	if (proto_parse(frame, len, s->cfg.partitions, &req, err, sizeof(err)) != 0) {
		log_debug("control: bad request: %s", err);
		proto_buf_printf(b, "%s\n", err);
		/* a refused request for a known command that asked for JSON
		 * gets its error as JSON */
		const char *p = frame;
		size_t n = 0;
		/* (an oversized request's bytes are not there: its size is) */
		while (len <= PROTO_MAX_REQUEST && n < len && p[n] != ' ' && p[n] != '\t')
			n++;
		if (n && proto_find(p, n) && memmem(frame, len, " --json", 7))
			json_reply(p, n, -1, b);
		return -1;
	}
	int rc = serve(s, &req, b);
	if (req.format == PROTO_FMT_JSON && req.cmd->id != PROTO_CMD_STATUS &&
	    req.cmd->id != PROTO_CMD_WORKERS && req.cmd->id != PROTO_CMD_STAGES)
		json_reply(req.cmd->name, strlen(req.cmd->name), rc, b);
	return rc;
}

static int serve(struct sup *s, const struct proto_request *req, struct proto_buf *b)
{
	switch (req->cmd->id) {
	case PROTO_CMD_HELP:
		proto_render_help(b);
		return 0;
	case PROTO_CMD_PING:
		proto_buf_printf(b, "pong\n");
		return 0;
	case PROTO_CMD_STATUS:
		render_status(s, req->format, b);
		return 0;
	case PROTO_CMD_WORKERS:
		return render_workers(s, req->format, b);
	case PROTO_CMD_METRICS:
		return render_metrics(s, b);
	case PROTO_CMD_STAGES:
		return obs_render(s, req->format, b);
	case PROTO_CMD_RELOAD:
		return do_reload(s, b);
	case PROTO_CMD_STOP:
		log_info("control: stop requested");
		sup_request_stop(s);
		proto_buf_printf(b, "stopping\n");
		return 0;
	case PROTO_CMD_RESTART_WORKER:
		return do_restart(s, (unsigned)req->value[0], b);
	case PROTO_CMD_REPLAY:
		log_info("control: replay of %s requested", req->path);
		return replay_start(s, req->path, b);
	case PROTO_CMD_SAVEPOINT:
		return do_savepoint(s, req->path, b);
	case PROTO_CMD_SAVEPOINT_STATUS:
		sup_savepoint_status(s, b);
		return 0;
	case PROTO_CMD_RESCALE:
		return rsc_request(s, (unsigned)req->value[0], b);
	}
	proto_buf_printf(b, "command not served\n");
	return -1;
}

/* ---- connections ---- */

static void conn_free(struct conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	free(k->in);
	proto_buf_free(&k->out);
}

/* Close connection i; the last one takes its slot. */
static void conn_drop(struct control *c, unsigned i)
{
	conn_free(&c->conns[i]);
	c->conns[i] = c->conns[--c->n];
}

static int reply_pending(const struct conn *k)
{
	return k->out_off < k->out.len;
}

/* Queue the reply to one request and start the reply clock. -1 when
 * there is no memory for it (the connection is closed). */
static int queue_reply(struct conn *k, int ok, struct proto_buf *body, uint64_t now)
{
	static const char oom[] = "out of memory\n";
	proto_buf_free(&k->out);
	k->out_off = 0;
	if (body->failed)
		ctlproto_add_reply(&k->out, 0, oom, sizeof(oom) - 1);
	else
		ctlproto_add_reply(&k->out, ok, body->data ? body->data : "", body->len);
	k->deadline_ns = now + CTLPROTO_REPLY_TIMEOUT_MS * MS;
	if (k->out.failed) {
		log_warn("control: out of memory for a reply: closing its connection");
		return -1;
	}
	return 0;
}

/* Write what the socket takes of the pending reply. 0 (all written, or
 * the rest waits for room), or -1 when the client is gone. */
static int conn_flush(struct conn *k, uint64_t now)
{
	while (reply_pending(k)) {
		ssize_t n = send(k->fd, k->out.data + k->out_off, k->out.len - k->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			k->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		log_debug("control: a client is gone before its reply: %s",
			  n < 0 ? strerror(errno) : "closed");
		return -1;
	}
	if (k->out.data) { /* done: the next request's clock starts */
		proto_buf_free(&k->out);
		k->out_off = 0;
		k->deadline_ns = now + CTLPROTO_REQUEST_TIMEOUT_MS * MS;
		k->since_ns = now;
	}
	return 0;
}

/* Serve the request at the front of k's input, if it is all there.
 * 1 when a reply was queued, 0 when more input is needed, -1 to close. */
static int next_request(struct sup *s, struct conn *k, uint64_t now)
{
	struct proto_buf body;
	size_t len;
	int rc;
	if (k->skipping) {
		if (k->skip)
			return 0;
		/* An oversized request, thrown away: the parser names its size
		 * without looking at the bytes. */
		static const char nothing[1];
		k->skipping = 0;
		proto_buf_init(&body);
		rc = handle(s, nothing, k->skip_len, &body);
		rc = queue_reply(k, rc == 0, &body, now);
		proto_buf_free(&body);
		return rc == 0 ? 1 : -1;
	}
	switch (ctlproto_scan(k->in, k->in_len, CTLPROTO_MAX_FRAME, &len)) {
	case CTLPROTO_OVERSIZE:
		log_debug("control: closing a connection: it sent a %zu-byte frame (at most %u)",
			  len, CTLPROTO_MAX_FRAME);
		return -1;
	case CTLPROTO_PARTIAL:
		if (len > PROTO_MAX_REQUEST) { /* do not keep it: count it off */
			k->skipping = 1;
			k->skip_len = len;
			k->skip = CTLPROTO_HEADER + len - k->in_len;
			k->in_len = 0;
		}
		return 0;
	case CTLPROTO_WHOLE:
		break;
	}
	proto_buf_init(&body);
	rc = handle(s, k->in + CTLPROTO_HEADER, len, &body);
	rc = queue_reply(k, rc == 0, &body, now);
	proto_buf_free(&body);
	if (rc != 0)
		return -1;
	size_t used = CTLPROTO_HEADER + len;
	memmove(k->in, k->in + used, k->in_len - used);
	k->in_len -= used;
	return 1;
}

/* One read from the client. > 0 bytes taken, 0 at its end, -EAGAIN when
 * nothing is there, or another -errno. */
static ssize_t conn_fill(struct conn *k)
{
	static char scratch[65536]; /* what an oversized request is read into */
	char *to = scratch;
	size_t room = sizeof(scratch);
	if (k->skipping) {
		if (room > k->skip)
			room = k->skip;
	} else {
		size_t want = CTLPROTO_HEADER, len;
		if (ctlproto_scan(k->in, k->in_len, CTLPROTO_MAX_FRAME, &len) == CTLPROTO_PARTIAL &&
		    k->in_len >= CTLPROTO_HEADER)
			want += len; /* at most PROTO_MAX_REQUEST: see next_request */
		if (want < CONTROL_READ_MIN)
			want = CONTROL_READ_MIN;
		if (k->in_cap < want) {
			unsigned char *in = realloc(k->in, want);
			if (!in)
				return -ENOMEM;
			k->in = in;
			k->in_cap = want;
		}
		to = (char *)k->in + k->in_len;
		room = k->in_cap - k->in_len;
	}
	ssize_t n = recv(k->fd, to, room, MSG_DONTWAIT);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (k->skipping)
		k->skip -= (size_t)n;
	else
		k->in_len += (size_t)n;
	return n;
}

/* Everything that can be done for connection k now: write its reply, read,
 * serve what came (up to CONTROL_REQUESTS). Returns -1 to close it. */
static int conn_service(struct sup *s, struct control *c, struct conn *k, uint64_t now)
{
	k->ready = 0;
	if (conn_flush(k, now) != 0)
		return -1;
	for (unsigned served = 0; !reply_pending(k);) {
		int rc = next_request(s, k, now);
		if (rc < 0)
			return -1;
		if (rc > 0) {
			if (conn_flush(k, now) != 0)
				return -1;
			if (++served == CONTROL_REQUESTS) {
				k->ready = c->busy = 1; /* more may be waiting: come back soon */
				return 0;
			}
			continue;
		}
		if (k->eof)
			return -1; /* the client is done, and nothing whole is left */
		ssize_t n = conn_fill(k);
		if (n == -EAGAIN || n == -EINTR)
			return 0;
		if (n == 0)
			k->eof = 1;
		else if (n < 0) {
			log_debug("control: closing a connection: %s", strerror((int)-n));
			return -1;
		}
	}
	return 0;
}

/* ---- refusals, logged once a burst ---- */

static void burst_note(struct control *c, uint64_t now, enum burst_kind kind, int err)
{
	struct control_burst *b = &c->burst;
	if (!b->first_ns) {
		b->first_ns = b->reported_ns = now;
		if (kind == BURST_CAP)
			log_warn("control: %u connections open, the most allowed: each new one "
				 "closes the one idle the longest (counted from now on, not logged "
				 "one by one)",
				 c->cap);
		else
			log_warn("control: cannot accept a connection: %s; %s (counted from now "
				 "on, not logged one by one)",
				 strerror(err),
				 kind == BURST_FDS	 ? "closing the connection idle the longest"
				 : kind == BURST_REFUSED ? "refusing new ones"
							 : "not accepting for a moment");
	}
	b->count[kind]++;
	b->last_ns = now;
}

/* At the end of a burst (quiet for a while), or now and then during a long
 * one, say how many. */
static void burst_check(struct control *c, uint64_t now)
{
	struct control_burst *b = &c->burst;
	if (!b->first_ns)
		return;
	int over = now - b->last_ns >= CONTROL_BURST_QUIET_NS;
	if (!over && now - b->reported_ns < CONTROL_BURST_REPORT_NS)
		return;
	char what[256] = "";
	size_t at = 0;
	static const char *const names[] = {
	    [BURST_CAP] = "closed at the cap",
	    [BURST_FDS] = "closed for lack of file descriptors",
	    [BURST_REFUSED] = "refused for lack of file descriptors",
	    [BURST_PAUSED] = "accept pauses",
	};
	for (int k = 0; k < 4; k++)
		if (b->count[k] && at < sizeof(what))
			at += (size_t)snprintf(what + at, sizeof(what) - at, "%s%u %s",
					       at ? ", " : "", b->count[k], names[k]);
	log_warn("control: %s (%.1fs): %s; at most %u connections",
		 over ? "burst over" : "still refusing", (double)(now - b->first_ns) / 1e9, what,
		 c->cap);
	if (over)
		memset(b, 0, sizeof(*b));
	else
		b->reported_ns = now;
}

/* Close the connection idle the longest, to make room for a new one. */
static void evict(struct control *c, uint64_t now, enum burst_kind why, int err)
{
	unsigned victim = 0;
	for (unsigned i = 1; i < c->n; i++)
		if (c->conns[i].since_ns < c->conns[victim].since_ns)
			victim = i;
	burst_note(c, now, why, err);
	conn_drop(c, victim);
}

/* Out of descriptors with no connection to close: give up the spare one
 * for a moment to take the waiting connection off the backlog and tell it
 * why it is refused, rather than leave it there to wake every poll.
 * Returns 1 when one was refused, 0 when none was waiting, -1 when it did
 * not work. */
static int refuse_with_spare(struct control *c, uint64_t now, int err)
{
	static const char why[] = "out of file descriptors: connection refused (see the "
				  "supervisor's log)\n";
	if (c->spare < 0)
		return -1;
	close(c->spare);
	int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int e = errno;
	if (fd >= 0) {
		struct proto_buf b;
		proto_buf_init(&b);
		ctlproto_add_reply(&b, 0, why, sizeof(why) - 1);
		if (!b.failed && send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("control: refusal not sent: %s", strerror(errno));
		proto_buf_free(&b);
		close(fd);
		burst_note(c, now, BURST_REFUSED, err);
	}
	c->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return 1;
	return e == EAGAIN || e == EWOULDBLOCK ? 0 : -1;
}

static void add_conn(struct sup *s, struct control *c, int fd, uint64_t now)
{
	struct conn *k = &c->conns[c->n++];
	memset(k, 0, sizeof(*k));
	k->fd = fd;
	k->since_ns = now;
	k->deadline_ns = now + CTLPROTO_REQUEST_TIMEOUT_MS * MS;
	/* A client writes its request as soon as it is connected: serve it
	 * now rather than after another poll. */
	if (conn_service(s, c, k, now) != 0)
		conn_drop(c, c->n - 1);
}

static void accept_some(struct sup *s, struct control *c, uint64_t now)
{
	for (int i = 0; i < CONTROL_ACCEPTS; i++) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			if (c->n == c->cap)
				evict(c, now, BURST_CAP, 0);
			add_conn(s, c, fd, now);
			continue;
		}
		int e = errno;
		if (e == EAGAIN || e == EWOULDBLOCK)
			return;
		if (e == EINTR || e == ECONNABORTED || e == EPROTO)
			continue;
		if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
			/* accept() wants the descriptor before it looks at the
			 * backlog: is anybody waiting at all? */
			struct pollfd p = {.fd = c->fd, .events = POLLIN};
			if (poll(&p, 1, 0) <= 0)
				return;
			if (c->n > 0) { /* a connection of ours is the descriptor to free */
				evict(c, now, BURST_FDS, e);
				continue;
			}
			int rc = refuse_with_spare(c, now, e);
			if (rc > 0)
				continue;
			if (rc == 0)
				return;
		}
		/* It stays in the backlog: pause rather than spin on it. */
		burst_note(c, now, BURST_PAUSED, e);
		c->paused_until_ns = now + CONTROL_PAUSE_MS * MS;
		return;
	}
	c->busy = 1; /* more may be waiting */
}

/* Close connections whose request or reply is overdue. */
static void sweep(struct control *c, uint64_t now)
{
	for (unsigned i = c->n; i-- > 0;) {
		struct conn *k = &c->conns[i];
		if (now < k->deadline_ns)
			continue;
		log_debug("control: closing a connection: %s within %d ms",
			  reply_pending(k) ? "it did not take its reply"
					   : "it did not send a whole request",
			  reply_pending(k) ? CTLPROTO_REPLY_TIMEOUT_MS
					   : CTLPROTO_REQUEST_TIMEOUT_MS);
		conn_drop(c, i);
	}
}

/* ---- the loop's entry ---- */

unsigned control_max_fds(const struct control *c)
{
	return c ? c->cap + 1 : 0;
}

unsigned control_pollfds(struct control *c, struct pollfd *pfds, uint64_t now, uint64_t *wake_ns)
{
	if (!c)
		return 0;
	if (c->spare < 0)
		c->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (c->busy)
		*wake_ns = now; /* more to serve without waiting */
	int listening = now >= c->paused_until_ns;
	if (!listening && c->paused_until_ns < *wake_ns)
		*wake_ns = c->paused_until_ns;
	pfds[0] = (struct pollfd){.fd = listening ? c->fd : -1, .events = POLLIN};
	for (unsigned i = 0; i < c->n; i++) {
		struct conn *k = &c->conns[i];
		pfds[i + 1] = (struct pollfd){
		    .fd = k->fd, .events = (short)(reply_pending(k) ? POLLOUT : POLLIN)};
		if (k->deadline_ns < *wake_ns)
			*wake_ns = k->deadline_ns;
	}
	c->polled = c->n;
	return c->n + 1;
}

void control_serve(struct sup *s, const struct pollfd *pfds, uint64_t now)
{
	struct control *c = s->control;
	if (!c)
		return;
	unsigned n = c->polled;
	c->busy = 0;
	/* Downwards: a dropped connection's slot takes the last one, which
	 * has been seen to already. */
	for (unsigned i = n; i-- > 0;) {
		struct conn *k = &c->conns[i];
		if (!pfds[i + 1].revents && !k->ready)
			continue;
		if (conn_service(s, c, k, now) != 0)
			conn_drop(c, i);
	}
	if (pfds[0].revents & POLLIN)
		accept_some(s, c, now);
	sweep(c, now);
	burst_check(c, now);
}

/* ---- opening and closing ---- */

static void control_free(struct control *c, int linger)
{
	/* The replies queued (to `stop`, say) get a moment to leave. */
	uint64_t deadline = shm_now_ns() + CONTROL_CLOSE_LINGER_MS * MS;
	for (unsigned i = 0; linger && i < c->n; i++) {
		struct conn *k = &c->conns[i];
		while (reply_pending(k) && conn_flush(k, 0) == 0) {
			uint64_t now = shm_now_ns();
			if (now >= deadline)
				break;
			struct pollfd p = {.fd = k->fd, .events = POLLOUT};
			poll(&p, 1, (int)((deadline - now + MS - 1) / MS));
		}
	}
	for (unsigned i = 0; i < c->n; i++)
		conn_free(&c->conns[i]);
	if (c->fd >= 0)
		close(c->fd);
	if (c->spare >= 0)
		close(c->spare);
	if (linger && c->bound && unlink(c->path) != 0 && errno != ENOENT)
		log_warn("%s: cannot remove the control socket: %s", c->path, strerror(errno));
	free(c->conns);
	free(c);
}

/* Bind with a umask that keeps the socket file private from its first
 * moment, then make sure of 0600 whatever the umask allowed. A socket file
 * already there is left from an instance that did not stop cleanly (the
 * pid file's lock says none runs on this run_dir): it goes. */
static int bind_private(struct control *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	if (lstat(c->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("%s: exists and is not a socket: not replacing it", c->path);
			return -1;
		}
		if (unlink(c->path) != 0) {
			log_error("%s: cannot remove the stale control socket: %s", c->path,
				  strerror(errno));
			return -1;
		}
	}
	mode_t old = umask(0077);
	int rc = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	umask(old);
	if (rc != 0) {
		log_error("%s: cannot bind the control socket: %s", c->path, strerror(err));
		return -1;
	}
	c->bound = 1;
	if (chmod(c->path, 0600) != 0) {
		log_error("%s: cannot make the control socket private (chmod 0600): %s", c->path,
			  strerror(errno));
		return -1;
	}
	if (listen(c->fd, CONTROL_BACKLOG) != 0) {
		log_error("%s: cannot listen on the control socket: %s", c->path, strerror(errno));
		return -1;
	}
	return 0;
}

/* As many connections as a quarter of the descriptors left, within
 * CTLPROTO_MAX_CONNECTIONS: the rest is for the stores, the source, the
 * tables a reload reads. */
static unsigned connection_cap(void)
{
	long left = fdlimit_free();
	unsigned cap = CTLPROTO_MAX_CONNECTIONS;
	if (left >= 0 && (unsigned long)left / 4 < cap)
		cap = left / 4 > CONTROL_MIN_CONNECTIONS ? (unsigned)(left / 4)
							 : CONTROL_MIN_CONNECTIONS;
	return cap;
}

int control_open(struct sup *s)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("control socket: out of memory");
		return -1;
	}
	c->fd = c->spare = -1;
	int n = snprintf(c->path, sizeof(c->path), "%s/control.sock", s->cfg.run_dir);
	if (n < 0 || (size_t)n >= sizeof(c->path)) {
		log_error("%s/control.sock: a socket path is at most %zu bytes: "
			  "give [ringmaster] run_dir a shorter path",
			  s->cfg.run_dir, sizeof(c->path) - 1);
		goto fail;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		log_error("control socket: cannot create it: %s", strerror(errno));
		goto fail;
	}
	if (bind_private(c) != 0)
		goto fail;
	c->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (c->spare < 0)
		log_warn("control socket: cannot keep a spare descriptor (/dev/null): %s",
			 strerror(errno));
	c->cap = connection_cap();
	c->conns = calloc(c->cap, sizeof(*c->conns));
	if (!c->conns) {
		log_error("control socket: out of memory");
		goto fail;
	}
	s->control = c;
	log_info("control socket ready path=%s max_connections=%u", c->path, c->cap);
	return 0;
fail:
	control_free(c, 1);
	return -1;
}

void control_close(struct sup *s)
{
	if (!s->control)
		return;
	control_free(s->control, 1);
	s->control = NULL;
}
