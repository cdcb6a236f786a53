/* observe.h - "where is the time going?", answered from the shared
 * mapping (stage.h): per process, the share of each stage; per partition,
 * the end-to-end latency and the heaviest keys; the imbalance between
 * partitions; and a one-line verdict naming the bottleneck. Read by
 * `ringctl stages` and `ringctl top` (control.c), the metrics and the
 * end-of-run summary (summary.c). Costs the workers nothing. */
#ifndef RM_OBSERVE_H
#define RM_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "stage.h"

struct sup;

/* One process: the supervisor (partition -1) or a partition's worker. */
struct obs_proc {
	int partition; /* -1: the supervisor */
	double secs[STAGE_MAX], total;
	uint64_t events;			      /* a worker's events processed */
	uint64_t lat_p50_us, lat_p99_us, lat_p999_us; /* 0: none measured */
	struct hot_pub hot;			      /* n = 0: none */
};

/* Fill procs[0] (the supervisor) and procs[1 + p] (worker p): room for
 * 1 + partitions. */
void obs_collect(const struct sup *s, struct obs_proc *procs);

/* The busiest partition's events over the mean (1.0: even; 0: no events). */
double obs_imbalance(const struct obs_proc *procs, unsigned partitions);

/* One line, no newline: "bottleneck: the supervisor (parse 71%, 1 core
 * busy): more partitions will not help", ... */
void obs_verdict(const struct obs_proc *procs, unsigned partitions, char *out, size_t size);

/* The `stages` reply: a row per process. Returns 0, or -1 out of memory. */
int obs_render(const struct sup *s, enum proto_format fmt, struct proto_buf *b);

/* For /healthz: 1 while the supervisor runs and no partition failed; else
 * 0 and the reason in `reason` ("starting", "partition 3 failed (fsync)").
 * A worker being restarted, or a Kafka partition owned elsewhere, is not a
 * failure. */
int obs_health(const struct sup *s, char *reason, size_t size);

/* The hottest key of all partitions, its partition and its share of that
 * partition's events (0..1). Returns 0, or -1 when none is known. */
int obs_hottest(const struct obs_proc *procs, unsigned partitions, char *key, size_t size,
		unsigned *partition, double *share);

#endif
