/* summary.c - see summary.h. Counts come from the shared status blocks, so
 * they are what the workers committed, not what was merely handed over. */
#include "summary.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "observe.h"
#include "proto.h"
#include "supervisor.h"

struct outcome_total {
	const char *name;
	uint64_t count;
};

/* Sum the per-worker outcome counts by name. Returns how many names. */
static size_t sum_outcomes(const struct sup *s, struct outcome_total *t, size_t max)
{
	size_t n = 0;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		struct shm_worker *w = &s->shm.workers[p];
		uint32_t k = atomic_load(&w->n_outcomes);
		for (uint32_t i = 0; i < k && i < SHM_OUTCOMES; i++) {
			const char *name = w->outcomes[i].name;
			size_t j = 0;
			while (j < n && strcmp(t[j].name, name) != 0)
				j++;
			if (j == n) {
				if (n == max)
					continue;
				t[n].name = name;
				t[n++].count = 0;
			}
			t[j].count += atomic_load(&w->outcomes[i].count);
		}
	}
	return n;
}

static void json_name(struct proto_buf *b, const char *s)
{
	proto_json_string(b, s, strlen(s));
}

/* Where the time went (observe.h), as JSON members: "stages" (a row per
 * process), "imbalance", "hot_keys" (per partition, heaviest first) and
 * "verdict". */
static void write_json_stages(const struct sup *s, struct proto_buf *b,
			      const struct obs_proc *procs)
{
	proto_buf_printf(b, ",\"stages\":");
	size_t at = b->len;
	obs_render(s, PROTO_FMT_JSON, b);
	while (b->len > at && !b->failed && b->data[b->len - 1] == '\n')
		b->data[--b->len] = '\0';
	proto_buf_printf(b, ",\"imbalance\":%.3f,\"hot_keys\":[",
			 obs_imbalance(procs, s->cfg.partitions));
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		const struct hot_pub *h = &procs[1 + p].hot;
		proto_buf_printf(b, "%s[", p ? "," : "");
		for (uint32_t i = 0; i < h->n; i++) {
			proto_buf_printf(b, "%s{\"key\":", i ? "," : "");
			proto_json_string(b, h->top[i].key, h->top[i].len);
			proto_buf_printf(b, ",\"events\":%llu,\"share\":%.4f}",
					 (unsigned long long)h->top[i].count,
					 h->total ? (double)h->top[i].count / (double)h->total
						  : 0.0);
		}
		proto_buf_printf(b, "]");
	}
	char verdict[512];
	obs_verdict(procs, s->cfg.partitions, verdict, sizeof(verdict));
	proto_buf_printf(b, "],\"verdict\":");
	json_name(b, verdict);
}

/* The summary as one JSON object and a newline, in b. */
static void write_json(const struct sup *s, struct proto_buf *b, double secs, uint64_t processed,
		       uint64_t rejected, const struct outcome_total *t, size_t n,
		       const struct obs_proc *procs)
{
	proto_buf_printf(b, "{\"name\":");
	json_name(b, s->cfg.name);
	proto_buf_printf(
	    b,
	    ",\"partitions\":%u,\"events_read\":%llu,\"dispatched\":%llu,"
	    "\"processed\":%llu,\"dead_lettered\":%llu,\"source_dead_lettered\":%llu,"
	    "\"handler_rejected\":%llu,\"wall_seconds\":%.3f,\"events_per_second\":%.0f,"
	    "\"held\":%llu,\"ok\":%s,\"failed_partitions\":[",
	    s->cfg.partitions, (unsigned long long)s->lines, (unsigned long long)s->dispatched,
	    (unsigned long long)processed, (unsigned long long)(s->dead_lettered + rejected),
	    (unsigned long long)s->dead_lettered, (unsigned long long)rejected, secs,
	    secs > 0 ? (double)s->lines / secs : 0.0, (unsigned long long)s->held,
	    s->failed || s->failed_partitions ? "false" : "true");
	for (unsigned p = 0, n_failed = 0; p < s->cfg.partitions; p++)
		if (s->workers[p].state == WK_FAILED)
			proto_buf_printf(b, "%s%u", n_failed++ ? "," : "", p);
	proto_buf_printf(b, "],\"per_partition\":[");
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		struct shm_worker *w = &s->shm.workers[p];
		uint64_t busy = atomic_load(&w->busy_ns), wait = atomic_load(&w->wait_ns);
		proto_buf_printf(b,
				 "%s{\"partition\":%u,\"processed\":%llu,\"skipped\":%llu,"
				 "\"rejected\":%llu,\"batches\":%llu,\"busy_seconds\":%.3f,"
				 "\"wait_seconds\":%.3f}",
				 p ? "," : "", p, (unsigned long long)atomic_load(&w->processed),
				 (unsigned long long)atomic_load(&w->skipped),
				 (unsigned long long)atomic_load(&w->rejected),
				 (unsigned long long)atomic_load(&w->batches), (double)busy / 1e9,
				 (double)wait / 1e9);
	}
	proto_buf_printf(b, "],\"outcomes\":{");
	for (size_t i = 0; i < n; i++) {
		proto_buf_printf(b, "%s", i ? "," : "");
		json_name(b, t[i].name);
		proto_buf_printf(b, ":%llu", (unsigned long long)t[i].count);
	}
	proto_buf_printf(b, "}");
	if (procs)
		write_json_stages(s, b, procs);
	proto_buf_printf(b, "}\n");
}

void summary_report(const struct sup *s, uint64_t now_ns)
{
	double secs = (double)(now_ns - s->start_ns) / 1e9;
	uint64_t processed = 0, rejected = 0, skipped = 0;
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		processed += atomic_load(&s->shm.workers[p].processed);
		rejected += atomic_load(&s->shm.workers[p].rejected);
		skipped += atomic_load(&s->shm.workers[p].skipped);
	}
	struct outcome_total t[SHM_OUTCOMES * 2];
	size_t n = sum_outcomes(s, t, sizeof(t) / sizeof(t[0]));

	FILE *e = stderr;
	fprintf(e,
		"summary: %llu events read in %.2f s (%.0f events/s), %llu processed, "
		"%llu already applied (skipped), %llu dead-lettered (%llu by the source, "
		"%llu by the handler)\n",
		(unsigned long long)s->lines, secs, secs > 0 ? (double)s->lines / secs : 0.0,
		(unsigned long long)processed, (unsigned long long)skipped,
		(unsigned long long)(s->dead_lettered + rejected),
		(unsigned long long)s->dead_lettered, (unsigned long long)rejected);
	fprintf(e, "  per partition:");
	for (unsigned p = 0; p < s->cfg.partitions; p++)
		fprintf(e, " p%u=%llu", p,
			(unsigned long long)atomic_load(&s->shm.workers[p].processed));
	fprintf(e, "\n  outcomes:");
	for (size_t i = 0; i < n; i++)
		fprintf(e, " %s=%llu", t[i].name, (unsigned long long)t[i].count);
	fprintf(e, "%s\n", n ? "" : " none");
	if (s->failed_partitions || s->held) {
		fprintf(e, "  failed partitions:");
		for (unsigned p = 0; p < s->cfg.partitions; p++)
			if (s->workers[p].state == WK_FAILED)
				fprintf(e, " p%u (%s)", p,
					s->workers[p].fail == FAIL_HANDLER     ? "handler"
					: s->workers[p].fail == FAIL_DATA_LOSS ? "data loss"
									       : "fsync");
		fprintf(e,
			"%s; their unprocessed events (%llu held back, the rest left in their "
			"rings) are redone when ringmaster starts again\n",
			s->failed_partitions ? "" : " none left", (unsigned long long)s->held);
	}
	/* Where the time went: the table of `ringctl stages`, indented. */
	struct obs_proc *procs = calloc(1 + s->cfg.partitions, sizeof(*procs));
	struct proto_buf b;
	proto_buf_init(&b);
	if (procs && s->shm.sup) {
		obs_collect(s, procs);
		fprintf(e, "  where the time went:\n");
		obs_render(s, PROTO_FMT_TEXT, &b);
		for (char *line = b.data, *nl; !b.failed && line && *line; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl)
				break;
			fprintf(e, "    %.*s\n", (int)(nl - line), line);
		}
		proto_buf_free(&b);
		proto_buf_init(&b);
	} else {
		free(procs);
		procs = NULL;
	}

	if (!s->summary_path)
		goto out;
	write_json(s, &b, secs, processed, rejected, t, n, procs);
	if (b.failed) {
		log_error("%s: cannot write the summary: out of memory", s->summary_path);
		goto out;
	}
	FILE *f = fopen(s->summary_path, "w");
	if (!f) {
		log_error("%s: cannot write the summary: %s", s->summary_path, strerror(errno));
		goto out;
	}
	size_t put = fwrite(b.data, 1, b.len, f);
	if (fclose(f) != 0 || put != b.len)
		log_error("%s: cannot write the summary: %s", s->summary_path, strerror(errno));
out:
	proto_buf_free(&b);
	free(procs);
}
