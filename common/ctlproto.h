/* ctlproto.h - the control socket's wire format, shared by the supervisor
 * (supervisor/control.c), ringctl (supervisor/ctl/ctl_remote.c) and the
 * tests' raw client (tests/integration/control_client.c). What a request
 * and a reply say is proto.h's business; this is how they travel.
 *
 * The control socket is a plain AF_UNIX SOCK_STREAM socket,
 * run_dir/control.sock (mode 0600 in a 0700 run_dir). On it, everything is
 * a frame: a 4-byte big-endian unsigned length N, then N bytes.
 *
 *   request:  one frame, the command text ("status --json")
 *   reply:    two frames, the status ("ok" or "error"), then the body
 *
 * A connection may carry several requests, one after the other; the server
 * answers them in order, and reads the next request only once the reply to
 * the previous one is written. The server's limits (control.c):
 *
 *   - a request frame over PROTO_MAX_REQUEST bytes is read and thrown away,
 *     and gets an error reply that names its size; one over
 *     CTLPROTO_MAX_FRAME gets the connection closed at once, unread;
 *   - a connection that has not sent a whole request within
 *     CTLPROTO_REQUEST_TIMEOUT_MS of opening (or of its last reply) is
 *     closed, as is one that has not taken its reply within
 *     CTLPROTO_REPLY_TIMEOUT_MS;
 *   - at most CTLPROTO_MAX_CONNECTIONS connections are open at once (fewer
 *     when file descriptors are scarce): a new one beyond that makes the
 *     server close the one idle the longest, so clients that hold
 *     connections open cannot lock others out. Without a file descriptor
 *     to spare, a new connection gets the reply [error][out of file
 *     descriptors...] and is closed.
 *
 * A client must be ready for the connection to close before its reply
 * (it was one of those): ctlproto_recv_reply says -ECONNRESET. */
#ifndef RM_CTLPROTO_H
#define RM_CTLPROTO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define CTLPROTO_HEADER 4u			 /* bytes of a frame's length */
#define CTLPROTO_MAX_FRAME (1024u * 1024u)	 /* request frames the server reads */
#define CTLPROTO_MAX_STATUS 16u			 /* bytes of a reply's status frame */
#define CTLPROTO_MAX_BODY (256u * 1024u * 1024u) /* reply bodies a client takes */
#define CTLPROTO_MAX_CONNECTIONS 64u
#define CTLPROTO_REQUEST_TIMEOUT_MS 5000
#define CTLPROTO_REPLY_TIMEOUT_MS 5000

/* The header of a frame of `len` bytes, and back. */
void ctlproto_put_header(unsigned char hdr[CTLPROTO_HEADER], uint32_t len);
uint32_t ctlproto_get_header(const unsigned char hdr[CTLPROTO_HEADER]);

/* Append a frame (header and bytes) to b; a reply is two. len must fit in
 * 32 bits (b->failed is set otherwise). */
void ctlproto_add_frame(struct proto_buf *b, const void *data, size_t len);
void ctlproto_add_reply(struct proto_buf *b, int ok, const void *body, size_t len);

enum ctlproto_scan {
	CTLPROTO_PARTIAL,  /* not a whole frame yet (*len is 0 until the header is in) */
	CTLPROTO_WHOLE,	   /* a frame: *len bytes at buf + CTLPROTO_HEADER */
	CTLPROTO_OVERSIZE, /* its header says *len, over `max` */
};

/* Look at the `avail` bytes at the front of a stream. */
enum ctlproto_scan ctlproto_scan(const void *buf, size_t avail, size_t max, size_t *len);

/* ---- a client's side: blocking calls with a deadline ---- */

/* Milliseconds on CLOCK_MONOTONIC, for deadlines. */
uint64_t ctlproto_now_ms(void);

/* Connect to the socket at `path`. While its backlog is full (the server
 * is busy or wedged) keep trying until deadline_ms. Returns a connected
 * socket (close-on-exec, non-blocking), or -errno: -ENOENT, -ECONNREFUSED
 * (nobody listens: a file left behind), -EACCES, -ENAMETOOLONG, -ETIMEDOUT
 * (backlog still full at the deadline), ... */
int ctlproto_connect(const char *path, uint64_t deadline_ms);

/* Write all of data on a non-blocking socket, waiting for room until
 * deadline_ms. Never raises SIGPIPE. Returns 0, -ETIMEDOUT, -ECANCELED
 * when a signal interrupted a wait with *cancel set, or -errno (-EPIPE:
 * the server closed the connection). */
int ctlproto_send_all(int fd, const void *data, size_t len, uint64_t deadline_ms,
		      volatile sig_atomic_t *cancel);

/* Send one request frame. Returns what ctlproto_send_all returns. */
int ctlproto_send_request(int fd, const char *text, size_t len, uint64_t deadline_ms,
			  volatile sig_atomic_t *cancel);

/* Read one reply: *ok, and its body appended to `body`. Returns 0,
 * -ETIMEDOUT, -ECANCELED (as above), -ECONNRESET when the connection ended
 * before a whole reply, -EPROTO when the reply is malformed, -ENOMEM, or
 * -errno of a failed read. */
int ctlproto_recv_reply(int fd, int *ok, struct proto_buf *body, uint64_t deadline_ms,
			volatile sig_atomic_t *cancel);

#endif
