/* stall.c - a worker blocked on something outside it (see stall.h). */
#include "stall.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "shm.h"

void stall_init(struct stall *s, uint64_t grace_ns, uint64_t beat_max_ns)
{
	memset(s, 0, sizeof(*s));
	s->grace_ns = grace_ns;
	s->beat_max_ns = beat_max_ns;
}

void stall_watch(struct stall *s, _Atomic uint64_t *heartbeat_ns, volatile sig_atomic_t *stop)
{
	s->heartbeat_ns = heartbeat_ns;
	s->stop = stop;
}

void stall_say(struct stall *s, enum stall_msg which, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->msg[which], sizeof(s->msg[which]), fmt, ap);
	va_end(ap);
}

void stall_begin(struct stall *s)
{
	s->since = 0;
	s->slices = 0;
}

int stall_check(struct stall *s, enum stall_slice what)
{
	uint64_t now = shm_now_ns();
	if (!s->since) {
		s->since = now;
		s->silent = 0;
	}
	if (!s->stop_by && (what == STALL_INTERRUPTED || (s->stop && *s->stop)))
		s->stop_by = now + s->grace_ns;
	if (s->stop_by && now >= s->stop_by) {
		if (s->msg[STALL_GIVE_UP][0])
			log_error("%s", s->msg[STALL_GIVE_UP]);
		return -EINTR;
	}
	/* Beyond beat_max_ns the heartbeat stops: whatever we wait on may
	 * never answer (a producer whose threads are stuck, as after a fork
	 * under ASan), and only a new worker gets out of that. */
	if (s->beat_max_ns && now - s->since >= s->beat_max_ns) {
		if (!s->silent++ && s->msg[STALL_SILENT][0])
			log_error("%s", s->msg[STALL_SILENT]);
	} else if (s->heartbeat_ns) {
		atomic_store_explicit(s->heartbeat_ns, now, memory_order_relaxed);
	}
	if (what == STALL_SLICE && ++s->slices == STALL_WARN_SLICES && s->msg[STALL_SLOW][0])
		log_warn("%s", s->msg[STALL_SLOW]);
	return 0;
}
