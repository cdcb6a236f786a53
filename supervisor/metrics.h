/* metrics.h - the Prometheus families made of the shared mapping's
 * histograms and stage counters (stage.h), appended by control.c's
 * `metrics` to its own: latencies as real histograms (_bucket with le,
 * _sum, _count), the seconds each process spent in each stage, the
 * handler's outcomes (rm_count) live, the events processed in all, the
 * partition imbalance and each partition's hottest key. */
#ifndef RM_METRICS_H
#define RM_METRICS_H

#include "proto.h"

struct sup;

/* Append those families to b. Returns 0, or -1 out of memory. */
int metrics_render(const struct sup *s, struct proto_buf *b);

#endif
