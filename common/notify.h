/* notify.h - systemd's readiness protocol (sd_notify): one datagram of
 * "KEY=value" lines to the socket named by $NOTIFY_SOCKET. Without that
 * variable it does nothing, so it costs nothing outside systemd. */
#ifndef RM_NOTIFY_H
#define RM_NOTIFY_H

/* Send e.g. notify_send("READY=1\nSTATUS=%u workers", n). Errors are
 * ignored: readiness is advisory. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
