/* summary.h - the end-of-run summary: on stderr for people, and as one JSON
 * object in the file given with --summary, for scripts and tests. */
#ifndef RM_SUMMARY_H
#define RM_SUMMARY_H

#include <stdint.h>

struct sup;

void summary_report(const struct sup *s, uint64_t now_ns);

#endif
