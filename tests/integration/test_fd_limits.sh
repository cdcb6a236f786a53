# File descriptors (issue 12): clients of the control socket cannot stop
# the supervisor, and too few descriptors end ringmaster with exit 71 and
# a message, never an abort or endless restarts.
#
#   1. Under `ulimit -n 256`, far more connections than that are opened
#      to control.sock and held: the supervisor keeps at most its cap
#      (closing the connection idle the longest for each new one), ringctl
#      answers all the while, the refusals are logged once for the burst,
#      the idle connections are closed after the request timeout, and
#      every event (more are appended meanwhile) is processed.
#   2. Connections that send half a request, or requests whose replies
#      they never read, are closed within the timeouts; ringctl answers
#      meanwhile.
#   3. With no descriptor left (prlimit on the running supervisor),
#      accept() fails: a connection is closed to make room, or, with none,
#      the new one is refused with a reply saying why; the supervisor
#      lives, and serves again once the limit is back.
#   4. `ulimit -n 12`, 14 and more up to the floor: exit 71 at once with a
#      message, no core, no worker started; above the floor the run works.
#      A start that fails after the workers are forked restarts none.
#   5. A worker that cannot start for lack of descriptors (the limit
#      lowered under a running instance and its fork server, then
#      restart-worker) stops
#      ringmaster with exit 71 instead of being restarted for ever.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is missing: run 'make deps'"
[ -x "$CONTROL_CLIENT" ] || fail "no $CONTROL_CLIENT: run through make test"
SOCK="$T/run/control.sock"
"$RINGCTL" gen events --events 4000 --keys 300 --seed 12 >"$T/all.tsv"
head -n 2000 "$T/all.tsv" >"$T/events.tsv"
write_config "$T/t.ini"

start() { # [limit]: ringmaster in follow mode, under `ulimit -n limit`
	local limit=${1:-}
	if [ -n "$limit" ]; then
		(ulimit -n "$limit" && exec "$RINGMASTER" -c "$T/t.ini" -o source.follow=yes) \
			2>>"$T/log" &
	else
		"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>>"$T/log" &
	fi
	rm_pid=$!
	BG_PIDS+=($rm_pid)
	for _ in $(seq 100); do
		"$RINGCTL" -s "$SOCK" -t 1s ping >/dev/null 2>&1 && return 0
		kill -0 $rm_pid 2>/dev/null || { cat "$T/log"; fail "ringmaster exited at start"; }
		sleep 0.1
	done
	fail "ringmaster never answered ping"
}

processed() { "$RINGCTL" -s "$SOCK" -t 2s --json status 2>/dev/null | jq -e .processed; }
processed_is() { [ "$(processed)" = "$1" ]; }
fds_of() { ls /proc/$1/fd | wc -l; }
# The lowest descriptor number process $1 does not use.
lowest_free_fd() {
	local n=0
	while [ -e /proc/$1/fd/$n ]; do n=$((n + 1)); done
	echo $n
}

# ---- 1. a flood of connections ---------------------------------------------
: >"$T/log"
start 256
wait_until 10 processed_is 2000
# As many as this shell may hold, up to 1100: far more than 256 anyway.
n=1100
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -gt $((n + 50)) ] || n=$((hard - 50))
[ $n -ge 600 ] || fail "the hard limit on descriptors here ($hard) is too low for this test"
"$CONTROL_CLIENT" "$SOCK" hold $n 8 idle >"$T/hold.out" 2>"$T/hold.err" &
hold_pid=$!
sleep 1.5 # the connections are made
max_fds=0
for i in 1 2 3 4 5; do
	t0=$(date +%s%N)
	out=$("$RINGCTL" -s "$SOCK" -t 2s ping) || fail "ping $i during the flood: $out"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $ms -lt 1500 ] || fail "ping $i took $ms ms during the flood"
	f=$(fds_of $rm_pid)
	[ $f -gt $max_fds ] && max_fds=$f
	sleep 0.2
done
cat "$T/all.tsv" | tail -n +2001 >>"$T/events.tsv" # follow mode reads them
wait $hold_pid || fail "the flooding client failed: $(cat "$T/hold.err")"
read -r _ connected _ refused _ closed _ open _ <"$T/hold.out"
echo "flood: $(cat "$T/hold.out"); supervisor descriptors at most $max_fds"
[ "$connected" -ge 600 ] || fail "only $connected connections made: $(cat "$T/hold.out")"
assert_eq "connections still open after the request timeout" 0 "$open"
[ "$max_fds" -le 100 ] || fail "the supervisor held $max_fds descriptors during the flood"
kill -0 $rm_pid || fail "ringmaster died of the flood"
wait_until 10 processed_is 4000
assert_eq "cap messages (once a burst)" 1 "$(grep -c 'the most allowed: each new one closes' "$T/log")"
log_has "$T/log" "control: burst over ([0-9.]*s): [0-9]* closed at the cap; at most [0-9]* connections" \
	|| { cat "$T/log"; fail "no end-of-burst count"; }
[ "$(grep -c ' control: ' "$T/log")" -le 4 ] || { cat "$T/log"; fail "the flood is logged per connection"; }
ok "$connected connections held under ulimit -n 256: ringctl answered, one warning, all 4000 events processed"

# ---- 2. half requests and replies never read -------------------------------
t0=$SECONDS
"$CONTROL_CLIENT" "$SOCK" hold 20 9 half >"$T/half.out" &
half_pid=$!
"$CONTROL_CLIENT" "$SOCK" hold 20 9 noread >"$T/noread.out" &
noread_pid=$!
sleep 1
for i in 1 2 3; do
	"$RINGCTL" -s "$SOCK" -t 2s status >/dev/null || fail "status $i with stuck clients"
	sleep 0.5
done
wait $half_pid || fail "half client"
wait $noread_pid || fail "noread client"
for mode in half noread; do
	read -r _ c _ _ _ k _ o _ first _ last <"$T/$mode.out"
	echo "$mode: $(cat "$T/$mode.out")"
	assert_eq "$mode connections made" 20 "$c"
	assert_eq "$mode connections closed by the supervisor" 20 "$k"
	[ "${first%.*}" -ge 3000 ] && [ "${last%.*}" -le 8000 ] \
		|| fail "$mode connections closed after $first..$last ms, expected about 5 s"
done
"$RINGCTL" -s "$SOCK" status >/dev/null || fail "status after the stuck clients"
ok "half requests and unread replies dropped after the timeout ($((SECONDS - t0)) s)"

# ---- 3. accept() without a descriptor --------------------------------------
if command -v prlimit >/dev/null; then
	: >"$T/log3"
	soft=$(prlimit --pid $rm_pid --nofile --noheadings --output SOFT | tr -d ' ')
	low=$(lowest_free_fd $rm_pid)
	prlimit --pid $rm_pid --nofile=$low: # not one descriptor left
	rc=0
	"$RINGCTL" -s "$SOCK" -t 2s ping >"$T/cmd.out" 2>"$T/cmd.err" || rc=$?
	assert_eq "ringctl without a descriptor in the supervisor" 1 $rc
	grep -q "out of file descriptors: connection refused" "$T/cmd.err" \
		|| fail "refusal: $(cat "$T/cmd.err")"
	"$CONTROL_CLIENT" "$SOCK" hold 100 1 idle >/dev/null
	prlimit --pid $rm_pid --nofile=$((low + 1)): # one: each new one closes the last
	"$CONTROL_CLIENT" "$SOCK" hold 100 1 idle >/dev/null
	out=$("$RINGCTL" -s "$SOCK" -t 2s ping) || fail "ping with one descriptor: $out"
	prlimit --pid $rm_pid --nofile=$soft:
	out=$("$RINGCTL" -s "$SOCK" -t 2s ping) || fail "ping with the limit back: $out"
	kill -0 $rm_pid || fail "ringmaster died without descriptors"
	sleep 2.5 # the end of the burst is logged
	"$RINGCTL" -s "$SOCK" ping >/dev/null
	log_has "$T/log" "control: cannot accept a connection: Too many open files" \
		|| { cat "$T/log"; fail "no EMFILE warning"; }
	n=$(grep -c "control: cannot accept a connection" "$T/log")
	[ "$n" -le 2 ] || { cat "$T/log"; fail "EMFILE logged $n times"; }
	ok "accept() without descriptors: refused with a reply, then room made; ringmaster lives on"
else
	echo "skipped: no prlimit (util-linux) to lower a running process's limit"
fi

out=$("$RINGCTL" -s "$SOCK" stop) || fail "stop"
rc=0; wait $rm_pid || rc=$?
assert_eq "exit status after the floods" 0 $rc
assert_eq "processed" 4000 "$(grep -o '[0-9]* processed' "$T/log" | tail -1 | cut -d' ' -f1)"
ok "stopped cleanly: exit 0"

# ---- 4. too few descriptors at start ----------------------------------------
for limit in 12 13 14 15 16 18 20 24 32 48 64; do
	rm -rf "$T/run" "$T/data" "$T/out" "$T/dead.tsv" "$T/.dead.tsv.owner"
	t0=$(date +%s%N)
	rc=0
	(ulimit -n $limit && exec "$RINGMASTER" -c "$T/t.ini") 2>"$T/low.log" || rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $rc -eq 71 ] || { cat "$T/low.log"; fail "ulimit -n $limit: exit $rc, expected 71"; }
	grep -q "too few file descriptors: the limit is $limit" "$T/low.log" \
		|| { cat "$T/low.log"; fail "ulimit -n $limit: no message"; }
	! grep -q "restarting\|worker/" "$T/low.log" || { cat "$T/low.log"; fail "workers at $limit"; }
	[ $ms -lt 5000 ] || fail "ulimit -n $limit: $ms ms to give up"
done
ok "ulimit -n 12..64: exit 71 with a message, at once"
rm -rf "$T/run" "$T/data" "$T/out" "$T/dead.tsv" "$T/.dead.tsv.owner"
(ulimit -n 128 && exec "$RINGMASTER" -c "$T/t.ini") 2>"$T/ok.log" \
	|| { cat "$T/ok.log"; fail "ulimit -n 128: the run failed"; }
grep -q "4000 processed" "$T/ok.log" || { cat "$T/ok.log"; fail "ulimit -n 128: not all processed"; }
ok "ulimit -n 128: the run works"

# A start that fails once the workers are forked (here control.sock is a
# directory) kills them and exits; it used to restart them for ever.
rm -rf "$T/run" "$T/data" "$T/out" "$T/dead.tsv" "$T/.dead.tsv.owner"
mkdir -p "$T/run/control.sock"
chmod 700 "$T/run"
rc=0
timeout 20 "$RINGMASTER" -c "$T/t.ini" 2>"$T/sf.log" || rc=$?
assert_eq "exit status when the control socket cannot be made" 73 $rc
grep -q "control.sock: exists and is not a socket" "$T/sf.log" || { cat "$T/sf.log"; fail "no message"; }
! grep -q "restarting it\|starting worker . again" "$T/sf.log" || { cat "$T/sf.log"; fail "workers restarted"; }
wait_until 10 workers_gone
rm -rf "$T/run"
ok "a failed start kills the workers and restarts none"

# ---- 5. a worker without descriptors ----------------------------------------
if command -v prlimit >/dev/null; then
	: >"$T/log"
	start
	n=$(fds_of $rm_pid)
	prlimit --pid $rm_pid --nofile=$((n + 4)):
	# A worker is forked by the fork server, and has its limit.
	fs=$(pgrep -f "^ringmaster: fork server \($NAME\)") || fail "no fork server"
	prlimit --pid $fs --nofile=$(($(fds_of $fs) + 4)):
	out=$("$RINGCTL" -s "$SOCK" restart-worker 1) || fail "restart-worker: $out"
	t0=$SECONDS
	rc=0; wait $rm_pid || rc=$?
	assert_eq "exit status when a worker has no descriptors" 71 $rc
	[ $((SECONDS - t0)) -lt 15 ] || fail "took $((SECONDS - t0)) s to give up"
	log_has "$T/log" "partition 1: out of file descriptors" || { cat "$T/log"; fail "no worker message"; }
	log_has "$T/log" "worker 1 (pid [0-9]*) cannot start: out of file descriptors" \
		|| { cat "$T/log"; fail "no supervisor message"; }
	! log_has "$T/log" "restarting it" || { cat "$T/log"; fail "a worker was restarted"; }
	wait_until 10 workers_gone
	ok "a worker without descriptors: ringmaster stops with exit 71"
fi
