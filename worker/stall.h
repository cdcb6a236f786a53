/* stall.h - a worker blocked on something outside it (a zmq consumer that
 * takes nothing, Kafka that acknowledges nothing, a changelog being read)
 * stays alive for the watchdog and answers a stop request, in one way.
 *
 * The blocked module waits in slices (STALL_SLICE_MS for the long ones) and
 * calls stall_check after each. stall_check keeps the worker's heartbeat
 * fresh, so that the watchdog does not take a worker held by backpressure
 * for a hung one, but for no longer than beat_max_ns into one wait when
 * that is set (a wait that never ends is then the watchdog's to end); warns
 * once a wait has lasted STALL_WARN_SLICES whole slices; and once the worker
 * is asked to stop, gives the wait grace_ns more (a slow consumer should not
 * fail a graceful stop), then gives it up.
 *
 * The messages are the blocked module's, made once at its start
 * (stall_say): each is logged as it is, and an empty one is not logged.
 */
#ifndef RM_STALL_H
#define RM_STALL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#define STALL_SLICE_MS 1000
#define STALL_WARN_SLICES 5
#define STALL_MSG_LEN 512

enum stall_msg {
	STALL_SLOW,    /* warning: the wait has lasted STALL_WARN_SLICES slices */
	STALL_GIVE_UP, /* error: asked to stop, the wait outlasted grace_ns */
	STALL_SILENT,  /* error: no more heartbeats, after beat_max_ns */
	STALL_N_MSGS
};

/* What passed since the last stall_check. */
enum stall_slice {
	STALL_SLICE,	   /* a whole slice, without progress: counts for STALL_SLOW */
	STALL_SHORT,	   /* a shorter wait, or a step of a long job: does not count */
	STALL_INTERRUPTED, /* a signal cut the slice short: a stop request */
};

struct stall {
	_Atomic uint64_t *heartbeat_ns; /* the worker's, or NULL */
	volatile sig_atomic_t *stop;	/* the worker's SIGTERM flag, or NULL */
	uint64_t grace_ns;		/* 0: a stop request ends a wait at once */
	uint64_t beat_max_ns;		/* 0: keep the heartbeat for as long as it lasts */
	uint64_t stop_by;		/* give up then (asked to stop), 0 */
	uint64_t since;			/* this wait's first stall_check, 0 */
	unsigned slices;		/* whole slices this wait has lasted */
	int silent;			/* this wait has outlasted beat_max_ns */
	char msg[STALL_N_MSGS][STALL_MSG_LEN];
};

/* Set s up with no messages yet and no heartbeat or stop flag. */
void stall_init(struct stall *s, uint64_t grace_ns, uint64_t beat_max_ns);

/* The worker's heartbeat and stop flag; either may be NULL. */
void stall_watch(struct stall *s, _Atomic uint64_t *heartbeat_ns, volatile sig_atomic_t *stop);

/* Make message `which`. */
void stall_say(struct stall *s, enum stall_msg which, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A new wait begins (its slices and its heartbeat limit count from here);
 * a stop request already seen still holds. */
void stall_begin(struct stall *s);

/* After one slice of a wait: returns 0 to wait on, or -EINTR (STALL_GIVE_UP
 * logged) when the worker was asked to stop grace_ns ago or more. */
int stall_check(struct stall *s, enum stall_slice what);

#endif
