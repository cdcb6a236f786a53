/* control.c - the control socket server (see control.h and proto.h).
 *
 * A ROUTER socket rather than REP: REP is a state machine that must send
 * exactly one reply before it can receive again, and a server that must
 * never block is easier to get right when the envelope is in plain sight.
 * A REQ client's message arrives as [routing id]["" delimiter][request];
 * the reply goes back as [routing id][""][status][body]. ROUTER drops a
 * reply to a peer that is gone or not reading (no ZMQ_ROUTER_MANDATORY),
 * so a send never waits.
 *
 * Sizes: frames up to CONTROL_MAX_FRAME are received, and one over
 * PROTO_MAX_REQUEST gets an error reply naming its size; libzmq drops the
 * connection of a peer that sends anything larger (ZMQ_MAXMSGSIZE), so no
 * client can make the supervisor hold more than that.
 *
 * Every figure comes from the supervisor's own struct and the shared
 * mapping, so answering costs the workers nothing. */
#include "control.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"
#include "proto.h"
#include "supervisor.h"

#define CONTROL_MAX_FRAME (1024 * 1024)
#define CONTROL_BATCH 64	    /* requests served by one control_poll at most */
#define CONTROL_CLOSE_LINGER_MS 200 /* so the reply to `stop` leaves */
#define CONTROL_MSG_LEN 8192

struct control {
	void *ctx;
	void *sock;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int bound;
};

/* ---- figures ---- */

/* One partition's figures, for `workers` and `metrics`. */
struct worker_row {
	uint64_t partition, pid, up, failed, held, restarts;
	const char *state, *last_exit;
	char state_buf[32]; /* "restoring 42%" */
	double uptime;	    /* NAN when not running */
	struct ring_stats ring;
	uint64_t processed, skipped, rejected, batches, applied_seq, lag;
	uint64_t batch_p50, batch_p99, commit_p50_us, commit_p99_us;
	double rate, busy_s, wait_s;
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
}

/* The instance as a whole, for `status` and `metrics`. */
struct status_row {
	const char *source, *source_name, *unit;
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
	};
	struct status_row st;
	status_row(s, shm_now_ns(), &st);
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
    SM("source_position", "gauge", M_U64, pos,
       "Position reached in the source (bytes for a file, events otherwise)."),
    SM("source_lag", "gauge", M_U64, lag,
       "Source left to read, when its size is known (same unit as the position)."),
};

static const struct metric worker_metrics[] = {
    WM("worker_up", "gauge", M_U64, up, "1 while the partition's worker process runs."),
    WM("worker_failed", "gauge", M_U64, failed,
       "1 when the partition failed (fail_after or an fsync) and is not restarted."),
    WM("worker_events_held_total", "counter", M_U64, held,
       "Events not dispatched because the partition failed; redone at the next start."),
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
    WM("worker_batch_size_p50", "gauge", M_U64, batch_p50,
       "Median events per batch (upper bound of its log2 bucket)."),
    WM("worker_batch_size_p99", "gauge", M_U64, batch_p99,
       "99th percentile of events per batch (upper bound of its log2 bucket)."),
    WM("ring_depth_bytes", "gauge", M_U64, ring.depth, "Bytes in the ring not yet acked."),
    WM("ring_high_water_bytes", "gauge", M_U64, ring.high_water, "Largest ring depth seen."),
    WM("ring_capacity_bytes", "gauge", M_U64, ring.capacity, "Size of the ring's data area."),
    WM("ring_records_total", "counter", M_U64, ring.records, "Records put in the ring."),
    WM("ring_producer_waits_total", "counter", M_U64, ring.producer_waits,
       "Times the supervisor waited on a full ring."),
    WM("ring_consumer_waits_total", "counter", M_U64, ring.consumer_waits,
       "Times the worker waited on an empty ring."),
    {"worker_commit_seconds_p50", "gauge",
     "Median commit latency (upper bound of its log2 bucket).", M_F64,
     offsetof(struct worker_row, commit_p50_us), 1e-6},
    {"worker_commit_seconds_p99", "gauge",
     "99th percentile of commit latency (upper bound of its log2 bucket).", M_F64,
     offsetof(struct worker_row, commit_p99_us), 1e-6},
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
	proto_buf_printf(b, "\",version=\"%s\",state=\"%s\"} 1\n", RM_VERSION,
			 sup_state_name(s->state));
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
		metric_head(b, &status_metrics[i]);
		proto_buf_printf(b, "ringmaster_%s ", status_metrics[i].name);
		metric_value(b, &status_metrics[i], &st);
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
	return 0;
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

/* Serve one request frame into body; 0 for an ok reply, -1 for an error. */
static int handle(struct sup *s, const void *frame, size_t len, struct proto_buf *b)
{
	struct proto_request req;
	char err[PROTO_ERR_LEN];
	if (proto_parse(frame, len, s->cfg.partitions, &req, err, sizeof(err)) != 0) {
		log_debug("control: bad request: %s", err);
		proto_buf_printf(b, "%s\n", err);
		return -1;
	}
	switch (req.cmd->id) {
	case PROTO_CMD_HELP:
		proto_render_help(b);
		return 0;
	case PROTO_CMD_PING:
		proto_buf_printf(b, "pong\n");
		return 0;
	case PROTO_CMD_STATUS:
		render_status(s, req.format, b);
		return 0;
	case PROTO_CMD_WORKERS:
		return render_workers(s, req.format, b);
	case PROTO_CMD_METRICS:
		return render_metrics(s, b);
	case PROTO_CMD_RELOAD:
		return do_reload(s, b);
	case PROTO_CMD_STOP:
		log_info("control: stop requested");
		sup_request_stop(s);
		proto_buf_printf(b, "stopping\n");
		return 0;
	case PROTO_CMD_RESTART_WORKER:
		return do_restart(s, (unsigned)req.value[0], b);
	}
	proto_buf_printf(b, "command not served\n");
	return -1;
}

/* ---- the socket ---- */

/* One incoming message: the routing id, whether a delimiter followed it,
 * the first request frame and how many request frames there were. */
struct incoming {
	zmq_msg_t id, frame;
	int delimiter;
	unsigned frames;
};

/* Receive the rest of a message whose routing id is in in->id. */
static void receive_parts(struct control *c, struct incoming *in)
{
	int more = zmq_msg_more(&in->id), first = 1;
	while (more) {
		zmq_msg_t part;
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, c->sock, ZMQ_DONTWAIT) < 0) {
			/* the parts of a message arrive together: not expected */
			log_warn("control: cannot receive a message part: %s", zmq_strerror(errno));
			zmq_msg_close(&part);
			return;
		}
		more = zmq_msg_more(&part);
		if (first && zmq_msg_size(&part) == 0)
			in->delimiter = 1;
		else if (in->frames++ == 0)
			zmq_msg_move(&in->frame, &part);
		first = 0;
		zmq_msg_close(&part);
	}
}

static void send_reply(struct control *c, struct incoming *in, int ok, struct proto_buf *b)
{
	const char *status = ok ? PROTO_STATUS_OK : PROTO_STATUS_ERROR;
	const char *body = b->data ? b->data : "";
	size_t len = b->len;
	if (b->failed) {
		status = PROTO_STATUS_ERROR;
		body = "out of memory\n";
		len = strlen(body);
	}
	int flags = ZMQ_SNDMORE | ZMQ_DONTWAIT;
	if (zmq_msg_send(&in->id, c->sock, flags) < 0 ||
	    (in->delimiter && zmq_send(c->sock, "", 0, flags) < 0) ||
	    zmq_send(c->sock, status, strlen(status), flags) < 0 ||
	    zmq_send(c->sock, body, len, ZMQ_DONTWAIT) < 0)
		log_debug("control: reply not sent: %s", zmq_strerror(errno));
}

/* Serve one waiting message. Returns 0, or -1 when there was none. */
static int serve_one(struct sup *s, struct control *c)
{
	struct incoming in = {.delimiter = 0};
	zmq_msg_init(&in.id);
	zmq_msg_init(&in.frame);
	if (zmq_msg_recv(&in.id, c->sock, ZMQ_DONTWAIT) < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("control: cannot receive: %s", zmq_strerror(errno));
		zmq_msg_close(&in.id);
		zmq_msg_close(&in.frame);
		return -1;
	}
	receive_parts(c, &in);
	struct proto_buf body;
	proto_buf_init(&body);
	int rc;
	if (in.frames == 1) {
		rc = handle(s, zmq_msg_data(&in.frame), zmq_msg_size(&in.frame), &body);
	} else {
		if (in.frames == 0)
			proto_buf_printf(&body, "empty request: no frame (try 'help')\n");
		else
			proto_buf_printf(&body, "a request is one frame, got %u\n", in.frames);
		rc = -1;
	}
	send_reply(c, &in, rc == 0, &body);
	proto_buf_free(&body);
	zmq_msg_close(&in.id);
	zmq_msg_close(&in.frame);
	return 0;
}

void control_poll(struct sup *s, int timeout_ms)
{
	struct control *c = s->control;
	if (!c)
		return;
	if (timeout_ms != 0) {
		zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
		int rc = zmq_poll(&item, 1, timeout_ms);
		if (rc < 0 && errno != EINTR)
			log_warn("control: poll: %s", zmq_strerror(errno));
		if (rc <= 0)
			return;
	}
	/* Without a wait, a non-blocking receive is the cheaper look: libzmq
	 * checks its mailbox without a system call most of the time. */
	for (int i = 0; i < CONTROL_BATCH; i++)
		if (serve_one(s, c) != 0)
			break;
}

static void control_free(struct control *c)
{
	if (c->sock) {
		int linger = CONTROL_CLOSE_LINGER_MS;
		zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_close(c->sock);
	}
	if (c->ctx)
		while (zmq_ctx_term(c->ctx) != 0 && errno == EINTR)
			;
	if (c->bound && unlink(c->path) != 0 && errno != ENOENT)
		log_warn("%s: cannot remove the control socket: %s", c->path, strerror(errno));
	free(c);
}

static int set_options(struct control *c)
{
	int linger = 0;
	int64_t max = CONTROL_MAX_FRAME;
	if (zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) != 0) {
		log_error("control socket: cannot set options: %s", zmq_strerror(errno));
		return -1;
	}
	return 0;
}

/* Bind with a umask that keeps the socket file private from its first
 * moment, then make sure of 0600 whatever the umask allowed. */
static int bind_private(struct control *c)
{
	char endpoint[sizeof(c->path) + 8];
	snprintf(endpoint, sizeof(endpoint), "ipc://%s", c->path);
	mode_t old = umask(0077);
	int rc = zmq_bind(c->sock, endpoint);
	int err = errno;
	umask(old);
	if (rc != 0) {
		log_error("%s: cannot bind the control socket: %s", c->path, zmq_strerror(err));
		return -1;
	}
	c->bound = 1;
	if (chmod(c->path, 0600) != 0) {
		log_error("%s: cannot make the control socket private (chmod 0600): %s", c->path,
			  strerror(errno));
		return -1;
	}
	return 0;
}

int control_open(struct sup *s)
{
	struct control *c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("control socket: out of memory");
		return -1;
	}
	int n = snprintf(c->path, sizeof(c->path), "%s/control.sock", s->cfg.run_dir);
	if (n < 0 || (size_t)n >= sizeof(c->path)) {
		log_error("%s/control.sock: a socket path is at most %zu bytes: "
			  "give [ringmaster] run_dir a shorter path",
			  s->cfg.run_dir, sizeof(c->path) - 1);
		goto fail;
	}
	c->ctx = zmq_ctx_new();
	c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_ROUTER) : NULL;
	if (!c->sock) {
		log_error("control socket: cannot create it: %s", zmq_strerror(errno));
		goto fail;
	}
	if (set_options(c) != 0 || bind_private(c) != 0)
		goto fail;
	s->control = c;
	log_info("control socket ready path=%s", c->path);
	return 0;
fail:
	control_free(c);
	return -1;
}

void control_close(struct sup *s)
{
	if (!s->control)
		return;
	control_free(s->control);
	s->control = NULL;
}
