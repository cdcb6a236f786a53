/* control.h - the control socket: a Unix stream socket bound to
 * <run_dir>/control.sock (run_dir 0700, the socket 0600) that speaks
 * ctlproto.h's frames, served from the supervisor's own loop so that a
 * request never waits on a worker and no client can make it wait. */
#ifndef RM_CONTROL_H
#define RM_CONTROL_H

struct sup;

/* Bind the socket; s->control is set. Returns 0, or -1 (logged). */
int control_open(struct sup *s);

/* Wait up to timeout_ms for the socket (0: do not wait), then do what can
 * be done: accept, read, serve, write replies, close connections that are
 * overdue. Never blocks longer than that. */
void control_poll(struct sup *s, int timeout_ms);

/* Close the socket and its connections (replies queued get a moment to
 * leave) and remove control.sock. */
void control_close(struct sup *s);

#endif
