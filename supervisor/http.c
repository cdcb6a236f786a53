/* http.c - see http.h. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "clock.h"
#include "log.h"

#define HTTP_CONNECTIONS 32 /* at once; more wait in the backlog */
#define HTTP_TIMEOUT_S 10   /* a connection idle this long is closed */
#define HTTP_REASON_LEN 256

struct http {
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock; /* over the snapshot below */
	char *metrics;
	size_t len;
	int healthy;
	char reason[HTTP_REASON_LEN];
	uint64_t published_ns; /* 0: nothing yet */
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status, const char *msg)
{
	char *body = strdup(msg);
	if (!body)
		return MHD_NO;
	return reply(conn, status, "text/plain; charset=utf-8", body, strlen(body));
}

/* /healthz: from the snapshot, and its age (a loop that stopped). */
static enum MHD_Result healthz(struct http *h, struct MHD_Connection *conn)
{
	char msg[HTTP_REASON_LEN + 64];
	int ok;
	pthread_mutex_lock(&h->lock);
	uint64_t age_ms = h->published_ns ? (shm_now_ns() - h->published_ns) / 1000000 : 0;
	ok = h->published_ns && h->healthy && age_ms < HTTP_STALE_MS;
	if (!h->published_ns)
		snprintf(msg, sizeof(msg), "starting\n");
	else if (age_ms >= HTTP_STALE_MS)
		snprintf(msg, sizeof(msg), "the supervisor loop has not run for %llu s\n",
			 (unsigned long long)(age_ms / 1000));
	else
		snprintf(msg, sizeof(msg), "%s\n", h->healthy ? "ok" : h->reason);
	pthread_mutex_unlock(&h->lock);
	return text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

static enum MHD_Result metrics(struct http *h, struct MHD_Connection *conn)
{
	pthread_mutex_lock(&h->lock);
	char *body = h->len ? malloc(h->len) : NULL;
	size_t len = h->len;
	if (body)
		memcpy(body, h->metrics, len);
	pthread_mutex_unlock(&h->lock);
	if (!body)
		return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics yet\n");
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **req)
{
	(void)version;
	(void)upload;
	(void)req;
	struct http *h = cls;
	if (*upload_size) /* a body: not ours to read */
		return MHD_NO;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET /metrics or /healthz\n");
	if (strcmp(url, "/metrics") == 0)
		return metrics(h, conn);
	if (strcmp(url, "/healthz") == 0)
		return healthz(h, conn);
	return text(conn, MHD_HTTP_NOT_FOUND, "GET /metrics or /healthz\n");
}

/* libmicrohttpd's own messages, into our log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warn("http: %s", msg);
}

struct http *http_start(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (cfg_http_addr(addr, &ss, &len) != 0) {
		log_error("[control] http: not ADDRESS:PORT: '%s'", addr);
		return NULL;
	}
	struct http *h = calloc(1, sizeof(*h));
	if (!h || pthread_mutex_init(&h->lock, NULL) != 0) {
		log_error("[control] http: out of memory");
		free(h);
		return NULL;
	}
	/* The thread inherits this mask: signals are for the loop. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, answer, h, MHD_OPTION_SOCK_ADDR, &ss,
				     MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	int err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!h->daemon) {
		log_error("[control] http: cannot listen on %s: %s", addr,
			  err ? strerror(err) : "libmicrohttpd refused");
		pthread_mutex_destroy(&h->lock);
		free(h);
		return NULL;
	}
	log_info("serving /metrics and /healthz on http://%s", addr);
	return h;
}

void http_publish(struct http *h, const char *metrics_text, size_t len, int healthy,
		  const char *reason)
{
	char *copy = len ? malloc(len) : NULL;
	if (len && !copy)
		return; /* the last snapshot stays; it ages */
	if (copy)
		memcpy(copy, metrics_text, len);
	pthread_mutex_lock(&h->lock);
	char *old = h->metrics;
	h->metrics = copy;
	h->len = len;
	h->healthy = healthy;
	snprintf(h->reason, sizeof(h->reason), "%s", reason ? reason : "");
	h->published_ns = shm_now_ns();
	pthread_mutex_unlock(&h->lock);
	free(old);
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->daemon);
	pthread_mutex_destroy(&h->lock);
	free(h->metrics);
	free(h);
}
