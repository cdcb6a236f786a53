# The systemd unit, etc/ringmaster.service: `systemd-analyze verify` finds
# nothing wrong with it and `systemd-analyze security` rates its exposure
# 3.0 or below (where this systemd-analyze can look at a unit offline); and
# the supervisor speaks the protocol the unit asks for: READY=1 once, then
# WATCHDOG=1 every WatchdogSec/2 from its loop, none without WATCHDOG_USEC.
. "$(dirname "$0")/lib.sh"

# The unit with this build's binary: verify wants ExecStart's file to exist.
sed -e "s|/usr/local/sbin/ringmaster|$RINGMASTER|g" -e "s|/usr/local/etc/ringmaster/|$TOP/etc/|g" \
	"$TOP/etc/ringmaster.service" >"$T/ringmaster.service"

if ! command -v systemd-analyze >/dev/null; then
	echo "skipped: no systemd-analyze here (package systemd), unit not checked"
elif ! systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
	echo "skipped: this systemd-analyze ($(systemd-analyze --version | head -1)) has no --offline security review"
else
	out=$(systemd-analyze verify --man=no "$T/ringmaster.service" 2>&1) \
		|| fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify has remarks: $out"
	ok "systemd-analyze verify: clean"
	# --threshold is in tenths: exit non-zero over 3.0.
	report=$(systemd-analyze security --offline=yes --threshold=30 --no-pager \
		"$T/ringmaster.service" 2>&1) && rc=0 || rc=$?
	level=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	[ -n "$level" ] || fail "no exposure level in: $report"
	[ $rc -eq 0 ] || fail "systemd-analyze security rates the unit $level, over 3.0:"$'\n'"$(printf '%s\n' "$report" | grep '✗')"
	ok "systemd-analyze security: exposure $level (at most 3.0)"
fi
grep -q '^WatchdogSec=' "$TOP/etc/ringmaster.service" || fail "the unit sets no WatchdogSec="
grep -q '^MemoryDenyWriteExecute=yes' "$TOP/etc/ringmaster.service" \
	&& fail "MemoryDenyWriteExecute=yes would break LuaJIT's compiler"

# The notify protocol, with a listener standing in for systemd.
if ! command -v python3 >/dev/null; then
	echo "skipped: no python3 to listen on a notify socket; WATCHDOG=1 not checked"
	exit 0
fi
listen() { # SOCKET OUT: every datagram, one per line (newlines as '|')
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", "|") + "\n")
' "$1" "$2" &
	BG_PIDS+=($!)
	wait_until 5 test -S "$1"
}

: >"$T/events.tsv"
write_config "$T/rm.ini"
listen "$T/notify.sock" "$T/notify.txt"
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=400000 WATCHDOG_PID=$$ \
	"$RINGMASTER" -c "$T/rm.ini" -o source.follow=yes 2>"$T/other_pid.log" &
pid=$!
BG_PIDS+=($pid)
wait_until 20 log_has "$T/notify.txt" '^READY=1'
sleep 1
kill -TERM $pid
wait $pid || fail "ringmaster exited $? (log: $(cat "$T/other_pid.log"))"
log_has "$T/notify.txt" '^WATCHDOG=1' && fail "WATCHDOG=1 sent although WATCHDOG_PID is another process"
ok "no WATCHDOG=1 when WATCHDOG_PID names another process"

: >"$T/notify.txt"
start=$SECONDS
WATCHDOG_USEC=400000 NOTIFY_SOCKET="$T/notify.sock" \
	"$RINGMASTER" -c "$T/rm.ini" -o source.follow=yes 2>"$T/rm.log" &
pid=$!
BG_PIDS+=($pid)
wait_until 20 log_has "$T/notify.txt" '^READY=1'
# 0.2 s apart: about 10 in 2 s; the loop may be late, never silent.
wait_until 10 log_has "$T/notify.txt" '^WATCHDOG=1$' 8
kill -TERM $pid
wait $pid || fail "ringmaster exited $? (log: $(cat "$T/rm.log"))"
n=$(grep -c '^WATCHDOG=1$' "$T/notify.txt")
log_has "$T/rm.log" 'systemd watchdog: WATCHDOG=1 every 200 ms' || fail "no watchdog line in the log"
log_has "$T/notify.txt" '^STOPPING=1' || fail "no STOPPING=1"
# Not before READY=1: the first line is READY.
head -1 "$T/notify.txt" | grep -q '^READY=1' || fail "first datagram: $(head -1 "$T/notify.txt")"
ok "READY=1, then WATCHDOG=1 every 200 ms while the loop runs ($n in $((SECONDS - start)) s), STOPPING=1"
kill "${BG_PIDS[0]}" && wait "${BG_PIDS[0]}" 2>/dev/null || true # the listener
