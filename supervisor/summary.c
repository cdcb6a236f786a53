/* summary.c - see summary.h. Counts come from the shared status blocks, so
 * they are what the workers committed, not what was merely handed over. */
#include "summary.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
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

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void write_json(const struct sup *s, FILE *f, double secs, uint64_t processed,
		       uint64_t rejected, const struct outcome_total *t, size_t n)
{
	fprintf(f, "{\"name\":");
	json_string(f, s->cfg.name);
	fprintf(f,
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
			fprintf(f, "%s%u", n_failed++ ? "," : "", p);
	fprintf(f, "],\"per_partition\":[");
	for (unsigned p = 0; p < s->cfg.partitions; p++) {
		struct shm_worker *w = &s->shm.workers[p];
		uint64_t busy = atomic_load(&w->busy_ns), wait = atomic_load(&w->wait_ns);
		fprintf(f,
			"%s{\"partition\":%u,\"processed\":%llu,\"skipped\":%llu,"
			"\"rejected\":%llu,\"batches\":%llu,\"busy_seconds\":%.3f,"
			"\"wait_seconds\":%.3f}",
			p ? "," : "", p, (unsigned long long)atomic_load(&w->processed),
			(unsigned long long)atomic_load(&w->skipped),
			(unsigned long long)atomic_load(&w->rejected),
			(unsigned long long)atomic_load(&w->batches), (double)busy / 1e9,
			(double)wait / 1e9);
	}
	fprintf(f, "],\"outcomes\":{");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s", i ? "," : "");
		json_string(f, t[i].name);
		fprintf(f, ":%llu", (unsigned long long)t[i].count);
	}
	fprintf(f, "}}\n");
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

	if (!s->summary_path)
		return;
	FILE *f = fopen(s->summary_path, "w");
	if (!f) {
		log_error("%s: cannot write the summary: %s", s->summary_path, strerror(errno));
		return;
	}
	write_json(s, f, secs, processed, rejected, t, n);
	if (fclose(f) != 0)
		log_error("%s: cannot write the summary: %s", s->summary_path, strerror(errno));
}
