/* control.h - the control socket: a libzmq REP socket bound to
 * ipc://<run_dir>/control.sock (run_dir 0700, the socket 0600), served from
 * the supervisor's own loop so that a request never waits on a worker. */
#ifndef RM_CONTROL_H
#define RM_CONTROL_H

struct sup;

/* Bind the socket; s->control is set. Returns 0, or -1 (logged). */
int control_open(struct sup *s);

/* Serve every request waiting, after waiting up to timeout_ms for the
 * first (0: do not wait). Never blocks longer than that. */
void control_poll(struct sup *s, int timeout_ms);

/* Close the socket and remove control.sock. */
void control_close(struct sup *s);

#endif
