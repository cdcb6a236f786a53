/* control.h - the control socket: a Unix stream socket bound to
 * <run_dir>/control.sock (run_dir 0700, the socket 0600) that speaks
 * ctlproto.h's frames, served from the supervisor's own loop so that a
 * request never waits on a worker and no client can make it wait. */
#ifndef RM_CONTROL_H
#define RM_CONTROL_H

#include <poll.h>
#include <stdint.h>

struct control;
struct sup;

/* Bind the socket; s->control is set. Returns 0, or -1 (logged). */
int control_open(struct sup *s);

/* The supervisor's loop waits on the socket: control_pollfds writes the
 * descriptors to wait on into pfds (at most control_max_fds of them) and
 * lowers *wake_ns to when it must be looked at again (now, when work is
 * left that needs no waiting); after the poll, control_serve does what can
 * be done: accept, read, serve, write replies, close connections that are
 * overdue. Neither blocks. c may be NULL (no socket). */
unsigned control_max_fds(const struct control *c);
unsigned control_pollfds(struct control *c, struct pollfd *pfds, uint64_t now, uint64_t *wake_ns);
void control_serve(struct sup *s, const struct pollfd *pfds, uint64_t now);

/* Everything, in Prometheus text format (what `ringctl metrics` and the
 * HTTP endpoint serve). Returns 0, or -1 out of memory. */
struct proto_buf;
int control_metrics(const struct sup *s, struct proto_buf *b);

/* Close the socket and its connections (replies queued get a moment to
 * leave) and remove control.sock. */
void control_close(struct sup *s);

#endif
