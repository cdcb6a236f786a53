/* http.h - the scraping endpoint, [control] http = ADDRESS:PORT (off by
 * default): GET /metrics (Prometheus text format, what `ringctl metrics`
 * says) and GET /healthz (200 "ok", or 503 and the reason).
 *
 * libmicrohttpd serves it from a thread of its own, which never touches
 * the supervisor's state: it answers from a snapshot the supervisor's loop
 * publishes every HTTP_PUBLISH_MS (a job of the loop; publishing swaps a
 * pointer under a mutex). So a client, however slow or many, costs the
 * loop nothing, and the loop never waits for the endpoint; and a loop that
 * stops publishing shows on /healthz as not running. The thread starts
 * after the fork server (supervisor.c's launch()), so no worker is forked
 * from a process with threads in it, and with every signal blocked, so
 * the supervisor's signals reach its loop. */
#ifndef RM_HTTP_H
#define RM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_PUBLISH_MS 500
/* /healthz says the loop stopped when it has not published for this long. */
#define HTTP_STALE_MS 10000

struct http;

/* Listen on `addr` ([control] http, checked by cfg_http_addr). Returns the
 * server, or NULL (logged, naming the address). */
struct http *http_start(const char *addr);

/* Publish what to serve from now on: the metrics text (`len` bytes, copied)
 * and the health (`healthy`, or the reason it is not). */
void http_publish(struct http *h, const char *metrics, size_t len, int healthy, const char *reason);

/* Stop the thread and free everything (NULL: nothing). */
void http_stop(struct http *h);

#endif
