/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "observe.h"
#include "supervisor.h"

static void head(struct proto_buf *b, const char *name, const char *type, const char *help)
{
	proto_buf_printf(b, "# HELP ringmaster_%s %s\n# TYPE ringmaster_%s %s\n", name, help, name,
			 type);
}

/* A label value: backslash and double quote escaped, and anything but
 * printable ASCII shown as '?' (a key is any bytes; a label must be UTF-8). */
static void label(struct proto_buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\' || c == '"')
			proto_buf_printf(b, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			proto_buf_add(b, "?", 1);
		else
			proto_buf_add(b, &s[i], 1);
	}
}

/* One partition's series of a log2 histogram (shm.h), its values scaled
 * by `scale` into the metric's unit: cumulative buckets, the last +Inf. */
static void histogram(struct proto_buf *b, const char *name, unsigned p,
		      const _Atomic uint64_t *hist, uint64_t sum, double scale)
{
	uint64_t cum = 0;
	for (unsigned i = 0; i < SHM_HIST_BUCKETS; i++) {
		cum += atomic_load_explicit(&hist[i], memory_order_relaxed);
		if (i + 1 < SHM_HIST_BUCKETS)
			proto_buf_printf(
			    b, "ringmaster_%s_bucket{partition=\"%u\",le=\"%.9g\"} %llu\n", name, p,
			    (double)shm_hist_bound(i) * scale, (unsigned long long)cum);
		else
			proto_buf_printf(
			    b, "ringmaster_%s_bucket{partition=\"%u\",le=\"+Inf\"} %llu\n", name, p,
			    (unsigned long long)cum);
	}
	proto_buf_printf(b, "ringmaster_%s_sum{partition=\"%u\"} %.9g\n", name, p,
			 (double)sum * scale);
	proto_buf_printf(b, "ringmaster_%s_count{partition=\"%u\"} %llu\n", name, p,
			 (unsigned long long)cum);
}

static void histograms(const struct sup *s, struct proto_buf *b)
{
	unsigned n = s->cfg.partitions;
	head(b, "worker_commit_duration_seconds", "histogram",
	     "Time to commit a batch (with sync = batch, its fsyncs too).");
	for (unsigned p = 0; p < n; p++)
		histogram(b, "worker_commit_duration_seconds", p, s->shm.workers[p].commit_us_hist,
			  atomic_load(&s->shm.workers[p].commit_us_sum), 1e-6);
	head(b, "event_latency_seconds", "histogram",
	     "From reading an event off the source to the commit of its batch (with sync = "
	     "batch, its fsync); an upper bound, by one read of the source.");
	for (unsigned p = 0; p < n; p++)
		histogram(b, "event_latency_seconds", p, s->shm.workers[p].latency_us_hist,
			  atomic_load(&s->shm.workers[p].latency_us_sum), 1e-6);
	head(b, "worker_batch_events", "histogram", "Events per committed batch.");
	for (unsigned p = 0; p < n; p++)
		histogram(b, "worker_batch_events", p, s->shm.workers[p].batch_hist,
			  atomic_load(&s->shm.workers[p].batch_events_sum), 1);
}

static void stages(const struct sup *s, struct proto_buf *b)
{
	double secs[STAGE_MAX];
	head(b, "supervisor_stage_seconds_total", "counter",
	     "Seconds the supervisor spent in each stage (parse and partition sampled).");
	stage_seconds(&s->shm.sup->stages, 0, secs);
	for (unsigned i = 0; i < stage_count(0); i++)
		proto_buf_printf(b,
				 "ringmaster_supervisor_stage_seconds_total{stage=\"%s\"} %.6f\n",
				 stage_name(0, i), secs[i]);
	head(b, "worker_stage_seconds_total", "counter",
	     "Seconds each worker spent in each stage (state and table reads sampled).");
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		stage_seconds(&s->shm.workers[p].stages, 1, secs);
		for (unsigned i = 0; i < stage_count(1); i++)
			proto_buf_printf(b,
					 "ringmaster_worker_stage_seconds_total{partition=\"%u\","
					 "stage=\"%s\"} %.6f\n",
					 p, stage_name(1, i), secs[i]);
	}
}

static void outcomes(const struct sup *s, struct proto_buf *b)
{
	head(b, "worker_outcomes_total", "counter",
	     "Business outcomes the handler counted (rm_count), committed.");
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct shm_worker *w = &s->shm.workers[p];
		uint32_t k = atomic_load(&w->n_outcomes);
		for (uint32_t i = 0; i < k && i < SHM_OUTCOMES; i++) {
			const char *name = w->outcomes[i].name;
			proto_buf_printf(
			    b, "ringmaster_worker_outcomes_total{partition=\"%u\",outcome=\"", p);
			label(b, name, strnlen(name, SHM_OUTCOME_NAME));
			proto_buf_printf(b, "\"} %llu\n",
					 (unsigned long long)atomic_load(&w->outcomes[i].count));
		}
	}
}

int metrics_render(const struct sup *s, struct proto_buf *b)
{
	unsigned n = s->cfg.partitions;
	struct obs_proc *procs = calloc(1 + n, sizeof(*procs));
	if (!procs)
		return -1;
	obs_collect(s, procs);
	uint64_t processed = 0;
	for (unsigned p = 0; p < n; p++)
		processed += procs[1 + p].events;
	head(b, "events_processed_total", "counter",
	     "Events run through the handler and committed, all partitions.");
	proto_buf_printf(b, "ringmaster_events_processed_total %llu\n",
			 (unsigned long long)processed);
	histograms(s, b);
	stages(s, b);
	outcomes(s, b);
	head(b, "partition_imbalance_ratio", "gauge",
	     "The busiest partition's events over the mean (1: even).");
	proto_buf_printf(b, "ringmaster_partition_imbalance_ratio %.3f\n", obs_imbalance(procs, n));
	head(b, "worker_hot_key_ratio", "gauge",
	     "Each partition's heaviest key (space-saving estimate): its share of the "
	     "partition's events.");
	for (unsigned p = 0; p < n; p++) {
		const struct hot_pub *h = &procs[1 + p].hot;
		if (!h->n || !h->total)
			continue;
		proto_buf_printf(b, "ringmaster_worker_hot_key_ratio{partition=\"%u\",key=\"", p);
		label(b, h->top[0].key, h->top[0].len);
		proto_buf_printf(b, "\"} %.4f\n", (double)h->top[0].count / (double)h->total);
	}
	free(procs);
	return b->failed ? -1 : 0;
}
