/* notify.h - systemd's readiness protocol (sd_notify): one datagram of
 * "KEY=value" lines to the socket named by $NOTIFY_SOCKET. Without that
 * variable it does nothing, so it costs nothing outside systemd. */
#ifndef RM_NOTIFY_H
#define RM_NOTIFY_H

/* Send e.g. notify_send("READY=1\nSTATUS=%u workers", n). Errors are
 * ignored: readiness is advisory. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* systemd's watchdog (WatchdogSec=), as sd_watchdog_enabled() reads it:
 * the interval in microseconds within which it wants WATCHDOG=1, from
 * $WATCHDOG_USEC, or 0 when that is unset or not a positive number, or
 * when $WATCHDOG_PID names another process (the watchdog is for the main
 * process only). Both variables are then removed from the environment, so
 * that the workers forked later do not take it for theirs. */
unsigned long long notify_watchdog_usec(void);

#endif
