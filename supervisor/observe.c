/* observe.c - see observe.h. */
#include "observe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"

/* A hot key is named in the verdict from this share of its partition. */
#define HOT_NAMED 0.10

void obs_collect(const struct sup *s, struct obs_proc *procs)
{
	memset(&procs[0], 0, sizeof(procs[0]));
	procs[0].partition = -1;
	procs[0].total = stage_seconds(&s->shm.sup->stages, 0, procs[0].secs);
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct shm_worker *w = &s->shm.workers[p];
		struct obs_proc *o = &procs[1 + p];
		memset(o, 0, sizeof(*o));
		o->partition = (int)p;
		o->total = stage_seconds(&w->stages, 1, o->secs);
		o->events = atomic_load(&w->processed);
		if (atomic_load(&w->latency_events)) {
			o->lat_p50_us = shm_hist_quantile(w->latency_us_hist, 0.50);
			o->lat_p99_us = shm_hist_quantile(w->latency_us_hist, 0.99);
			o->lat_p999_us = shm_hist_quantile(w->latency_us_hist, 0.999);
		}
		if (hot_read(&w->hot, &o->hot) != 0)
			o->hot.n = 0;
	}
}

double obs_imbalance(const struct obs_proc *procs, unsigned partitions)
{
	uint64_t max = 0, sum = 0;
	for (unsigned p = 0; p < partitions; p++) {
		uint64_t e = procs[1 + p].events;
		sum += e;
		if (e > max)
			max = e;
	}
	return sum ? (double)max * partitions / (double)sum : 0;
}

int obs_hottest(const struct obs_proc *procs, unsigned partitions, char *key, size_t size,
		unsigned *partition, double *share)
{
	int found = -1;
	uint64_t best = 0;
	for (unsigned p = 0; p < partitions; p++) {
		const struct hot_pub *h = &procs[1 + p].hot;
		if (!h->n || h->top[0].count <= best)
			continue;
		best = h->top[0].count;
		snprintf(key, size, "%.*s", (int)h->top[0].len, h->top[0].key);
		*partition = p;
		*share = h->total ? (double)h->top[0].count / (double)h->total : 0;
		found = 0;
	}
	return found;
}

int obs_health(const struct sup *s, char *reason, size_t size)
{
	static const char *const fails[] = {"", "fsync", "handler", "data loss"};
	if (s->state != SUP_RUNNING && s->state != SUP_RELOADING) {
		snprintf(reason, size, "the supervisor is %s", sup_state_name(s->state));
		return 0;
	}
	if (s->failed) {
		snprintf(reason, size, "the run failed (see the log)");
		return 0;
	}
	size_t n = 0;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct sup_worker *w = &s->workers[p];
		if (w->state != WK_FAILED)
			continue;
		int k = snprintf(reason + n, n < size ? size - n : 0, "%spartition %u failed (%s)",
				 n ? ", " : "", p, fails[w->fail <= FAIL_DATA_LOSS ? w->fail : 0]);
		if (k < 0 || n + (size_t)k >= size)
			break;
		n += (size_t)k;
	}
	if (n)
		return 0;
	snprintf(reason, size, "ok");
	return 1;
}

/* Time a process was not waiting. */
static double busy(const struct obs_proc *o)
{
	if (o->partition < 0)
		return o->total - o->secs[SUP_ST_IDLE] - o->secs[SUP_ST_BACKPRESSURE];
	return o->total - o->secs[WRK_ST_WAIT] - o->secs[WRK_ST_IDLE];
}

/* The stage a process spent most of its busy time in. */
static unsigned top_stage(const struct obs_proc *o)
{
	int worker = o->partition >= 0;
	unsigned best = worker ? WRK_ST_HANDLER : SUP_ST_READ;
	for (unsigned i = 0; i < stage_count(worker); i++) {
		int waiting = worker ? i == WRK_ST_WAIT || i == WRK_ST_IDLE
				     : i == SUP_ST_IDLE || i == SUP_ST_BACKPRESSURE;
		if (!waiting && o->secs[i] > o->secs[best])
			best = i;
	}
	return best;
}

static double share(double part, double whole)
{
	return whole > 0 ? 100 * part / whole : 0;
}

void obs_verdict(const struct obs_proc *procs, unsigned partitions, char *out, size_t size)
{
	const struct obs_proc *sup = &procs[0], *hot = NULL;
	double cores = 0, wall = sup->total;
	for (unsigned p = 0; p < partitions; p++) {
		const struct obs_proc *o = &procs[1 + p];
		if (o->total > 0 && (!hot || busy(o) / o->total > busy(hot) / hot->total))
			hot = o;
		if (o->total > wall)
			wall = o->total;
	}
	for (unsigned p = 0; p < partitions && wall > 0; p++)
		cores += busy(&procs[1 + p]) / wall;
	if (wall > 0)
		cores += busy(sup) / wall;
	if (sup->total <= 0 || !hot) {
		snprintf(out, size, "bottleneck: not known yet (no figures)");
		return;
	}
	double imbalance = obs_imbalance(procs, partitions);
	double bp = sup->secs[SUP_ST_BACKPRESSURE] / sup->total;
	double idle = sup->secs[SUP_ST_IDLE] / sup->total;
	double sup_busy = busy(sup) / sup->total;
	unsigned st = top_stage(sup);
	if (bp >= 0.3) {
		/* The supervisor waits for room: the workers are behind. */
		unsigned wst = top_stage(hot);
		int n = snprintf(out, size, "bottleneck: partition %d (%s %.0f%%", hot->partition,
				 stage_name(1, wst), share(hot->secs[wst], hot->total));
		const struct hot_pub *h = &hot->hot;
		double key_share = h->n && h->total ? (double)h->top[0].count / h->total : 0;
		if (key_share >= HOT_NAMED && n > 0 && (size_t)n < size)
			n += snprintf(out + n, size - n, ", hot key %.*s with %.0f%% of its events",
				      (int)h->top[0].len, h->top[0].key, 100 * key_share);
		if (n < 0 || (size_t)n >= size)
			return;
		if (key_share >= 0.25)
			snprintf(out + n, size - n,
				 "): one key this hot stays on one partition: more partitions will "
				 "not help, spreading the key's work will");
		else if (wst == WRK_ST_FSYNC)
			snprintf(out + n, size - n,
				 "): durable syncs dominate: larger batches or sync = periodic");
		else if (partitions > 1 && imbalance >= 1.5)
			snprintf(out + n, size - n,
				 "): partitions uneven (%.1fx the mean): more partitions will not "
				 "help, spreading the keys will",
				 imbalance);
		else
			snprintf(out + n, size - n,
				 "): the supervisor waits for room %.0f%% of the time: more "
				 "partitions or a faster handler will help",
				 100 * bp);
	} else if (sup_busy >= 0.8) {
		snprintf(out, size,
			 "bottleneck: the supervisor (%s %.0f%%, %.1f cores busy): more partitions "
			 "will not help",
			 stage_name(0, st), share(sup->secs[st], sup->total), cores);
	} else if (idle >= 0.5) {
		snprintf(out, size,
			 "bottleneck: the source (the supervisor waits for input %.0f%% of the "
			 "time): ringmaster keeps up",
			 100 * idle);
	} else {
		snprintf(
		    out, size,
		    "bottleneck: none clear (supervisor busy %.0f%%, partition %d busy %.0f%%)",
		    100 * sup_busy, hot->partition, share(busy(hot), hot->total));
	}
}

/* ---- the `stages` reply ---- */

/* Every stage of either kind, in one column set. */
static const struct {
	const char *name;
	int worker; /* -1: neither: computed */
	unsigned stage;
} stage_cols[] = {
    {"read", 0, SUP_ST_READ},		{"parse", 0, SUP_ST_PARSE},
    {"partition", 0, SUP_ST_PARTITION}, {"backpressure", 0, SUP_ST_BACKPRESSURE},
    {"wait", 1, WRK_ST_WAIT},		{"handler", 1, WRK_ST_HANDLER},
    {"reads", 1, WRK_ST_READS},		{"commit", 1, WRK_ST_COMMIT},
    {"fsync", 1, WRK_ST_FSYNC},		{"output", 1, WRK_ST_OUTPUT},
    {"idle", 0, SUP_ST_IDLE},	/* and WRK_ST_IDLE */
    {"other", 0, SUP_ST_OTHER}, /* and WRK_ST_OTHER */
};
#define N_STAGE_COLS (sizeof(stage_cols) / sizeof(stage_cols[0]))

static const struct proto_column obs_cols[] = {
    {"process", "PROCESS"},	   {"read_pct", "READ%"},	    {"parse_pct", "PARSE%"},
    {"partition_pct", "PART%"},	   {"backpressure_pct", "BACKPR%"}, {"wait_pct", "WAIT%"},
    {"handler_pct", "HANDLER%"},   {"reads_pct", "READS%"},	    {"commit_pct", "COMMIT%"},
    {"fsync_pct", "FSYNC%"},	   {"output_pct", "OUTPUT%"},	    {"idle_pct", "IDLE%"},
    {"other_pct", "OTHER%"},	   {"busy_pct", "BUSY%"},	    {"events", "EVENTS"},
    {"latency_p50_ms", "LAT50ms"}, {"latency_p99_ms", "LAT99ms"},   {"latency_p999_ms", "LAT999ms"},
    {"hot_key", "HOT KEY"},	   {"hot_key_pct", "HOT%"},
};
#define OBS_COLS (sizeof(obs_cols) / sizeof(obs_cols[0]))
_Static_assert(OBS_COLS == 1 + N_STAGE_COLS + 7, "one value per column");

static struct proto_value f64(double f)
{
	return (struct proto_value){.type = PROTO_T_F64, .f = f};
}

/* A stage's percentage of the process's time, NaN when not its kind. */
static double stage_pct(const struct obs_proc *o, size_t col)
{
	int worker = o->partition >= 0;
	unsigned st = stage_cols[col].stage;
	if (!strcmp(stage_cols[col].name, "idle"))
		st = worker ? WRK_ST_IDLE : SUP_ST_IDLE;
	else if (!strcmp(stage_cols[col].name, "other"))
		st = worker ? WRK_ST_OTHER : SUP_ST_OTHER;
	else if (stage_cols[col].worker != worker)
		return NAN;
	return o->total > 0 ? share(o->secs[st], o->total) : NAN;
}

static double ms(uint64_t us)
{
	return us ? (double)us / 1000 : NAN;
}

static void obs_values(const struct obs_proc *o, char *name, size_t name_size, char *key,
		       size_t key_size, struct proto_value *v)
{
	size_t i = 0;
	if (o->partition < 0)
		snprintf(name, name_size, "supervisor");
	else
		snprintf(name, name_size, "p%d", o->partition);
	v[i++] = (struct proto_value){.type = PROTO_T_STR, .s = name};
	for (size_t c = 0; c < N_STAGE_COLS; c++)
		v[i++] = f64(stage_pct(o, c));
	v[i++] = f64(o->total > 0 ? share(busy(o), o->total) : NAN);
	int worker = o->partition >= 0;
	v[i++] = (struct proto_value){.type = PROTO_T_U64, .u = o->events};
	v[i++] = f64(worker ? ms(o->lat_p50_us) : NAN);
	v[i++] = f64(worker ? ms(o->lat_p99_us) : NAN);
	v[i++] = f64(worker ? ms(o->lat_p999_us) : NAN);
	key[0] = '\0';
	double pct = NAN;
	if (o->hot.n) {
		snprintf(key, key_size, "%.*s", (int)o->hot.top[0].len, o->hot.top[0].key);
		pct = share((double)o->hot.top[0].count, (double)o->hot.total);
	}
	v[i++] = (struct proto_value){.type = PROTO_T_STR, .s = key};
	v[i++] = f64(pct);
}

int obs_render(const struct sup *s, enum proto_format fmt, struct proto_buf *b)
{
	unsigned n = 1 + s->cfg.partitions;
	struct obs_proc *procs = calloc(n, sizeof(*procs));
	struct proto_value *cells = calloc((size_t)n * OBS_COLS, sizeof(*cells));
	char(*names)[16] = calloc(n, sizeof(*names));
	char(*keys)[HOT_KEY_MAX + 1] = calloc(n, sizeof(*keys));
	int rc = -1;
	if (!procs || !cells || !names || !keys)
		goto out;
	obs_collect(s, procs);
	for (unsigned i = 0; i < n; i++)
		obs_values(&procs[i], names[i], sizeof(names[i]), keys[i], sizeof(keys[i]),
			   &cells[(size_t)i * OBS_COLS]);
	proto_render_table(b, fmt, obs_cols, OBS_COLS, cells, n);
	if (fmt == PROTO_FMT_TEXT) {
		char verdict[512];
		obs_verdict(procs, s->cfg.partitions, verdict, sizeof(verdict));
		proto_buf_printf(
		    b, "imbalance: %.2fx (busiest partition's events over the mean)\n%s\n",
		    obs_imbalance(procs, s->cfg.partitions), verdict);
	}
	rc = 0;
out:
	free(procs);
	free(cells);
	free(names);
	free(keys);
	return rc;
}
