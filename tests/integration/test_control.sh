# The control socket and ringctl against a running ringmaster (a file source
# in follow mode, so it stays up): permissions, every command in every
# format, refusals (from ringctl itself, exit 2, and from the supervisor,
# exit 1), raw garbage the supervisor must survive, ringctl top under tmux,
# stop, and the ways of not reaching a supervisor (exit 3).
. "$(dirname "$0")/lib.sh"
for tool in jq tmux; do
	command -v $tool >/dev/null || fail "$tool is missing: run 'make deps'"
done
# A raw client, for what ringctl never sends.
[ -x "$CONTROL_CLIENT" ] || fail "no $CONTROL_CLIENT: run through make test"

"$RINGCTL" gen events --events 2000 --keys 200 --seed 5 >"$T/events.tsv"
write_config "$T/t.ini"
SOCK="$T/run/control.sock"
rm_pid=
trap 'rc=$?; [ -z "$rm_pid" ] || kill -KILL $rm_pid 2>/dev/null || true
	tmux -S "$T/tmux.sock" kill-server 2>/dev/null || true
	[ $rc -eq 0 ] && rm -rf "$T" || echo "kept $T for a look"; exit $rc' EXIT

start() { # start ringmaster in the background; wait until it answers
	"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>>"$T/log" &
	rm_pid=$!
	for _ in $(seq 100); do
		"$RINGCTL" -s "$SOCK" -t 1s ping >/dev/null 2>&1 && return 0
		kill -0 $rm_pid 2>/dev/null || { cat "$T/log"; fail "ringmaster exited at start"; }
		sleep 0.1
	done
	fail "ringmaster never answered ping"
}

wait_for() { # description jq-filter command...: until the JSON satisfies it
	local what=$1 filter=$2; shift 2
	for _ in $(seq 100); do
		"$@" 2>/dev/null | jq -e "$filter" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	"$@" >&2 || true
	fail "timed out waiting for $what"
}

expect() { # exit-code stderr-substring command...
	local want=$1 text=$2 rc=0; shift 2
	"$@" >"$T/cmd.out" 2>"$T/cmd.err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$T/cmd.out" "$T/cmd.err" >&2; fail "$*: exit $rc, expected $want"; }
	grep -qF -- "$text" "$T/cmd.err" || { cat "$T/cmd.err" >&2; fail "$*: no '$text' in stderr"; }
}

start
C="-c $T/t.ini"

# ---- permissions ----
assert_eq "run_dir mode" 700 "$(stat -c %a "$T/run")"
assert_eq "control.sock mode" 600 "$(stat -c %a "$SOCK")"
[ -S "$SOCK" ] || fail "control.sock is not a socket"
ok "run_dir 0700, control.sock 0600"

# ---- status ----
wait_for "every event processed" '.processed == 2000' "$RINGCTL" $C status --json
"$RINGCTL" $C status >"$T/status" || fail "status"
grep -q "^name: *$NAME\$" "$T/status" || fail "status has no name: $(cat "$T/status")"
grep -q '^state: *running$' "$T/status" || fail "status has no state"
grep -q "^config: *$T/t.ini\$" "$T/status" || fail "status has no config file"
grep -q '^generation: *[0-9]' "$T/status" || fail "status has no generation"
grep -q '^processed: *2000$' "$T/status" || fail "status: processed"
"$RINGCTL" $C --json status | jq -e --arg pid $rm_pid --arg name "$NAME" \
	'.name == $name and .state == "running" and (.pid | tostring) == $pid and
	 .source == "file (follow)" and .source_position == .source_size and .source_lag == 0 and
	 .events_read == 2000 and .workers_running == 4 and .uptime_seconds > 0' >/dev/null \
	|| fail "status --json: $("$RINGCTL" $C --json status)"
"$RINGCTL" -s "$SOCK" status --tsv | awk -F'\t' -v name="$NAME" 'NR == 1 && $1 == "name" { h = 1 }
	NR == 2 && $1 == name { r = 1 } END { exit !(h && r && NR == 2) }' || fail "status --tsv"
ok "status in text, JSON and TSV"

# ---- workers ----
"$RINGCTL" $C workers >"$T/workers" || fail "workers"
head -1 "$T/workers" | grep -q '^P  *PID  *STATE  *UPTIME  *RESTARTS  *DEPTH' \
	|| fail "workers header: $(head -1 "$T/workers")"
assert_eq "workers table lines" 5 "$(wc -l <"$T/workers")"
"$RINGCTL" $C --json workers >"$T/workers.json" || fail "workers --json"
jq -e 'length == 4 and ([.[].processed] | add) == 2000 and .[3].partition == 3 and
	all(.[]; .state == "running" and .pid > 0 and .lag_records == 0 and
	    .ring_capacity_bytes == 1048576 and .batch_p99 >= .batch_p50 and
	    (.events_per_second | type) == "number")' "$T/workers.json" >/dev/null \
	|| fail "workers --json: $(cat "$T/workers.json")"
if command -v python3 >/dev/null && python3 -c 'import json' 2>/dev/null; then
	python3 -m json.tool "$T/workers.json" >/dev/null || fail "python rejects the JSON"
fi
ok "workers as a table and as JSON"

# ---- metrics ----
"$RINGCTL" $C metrics >"$T/metrics" || fail "metrics"
grep -q '^# HELP ringmaster_worker_events_processed_total ' "$T/metrics" || fail "no HELP line"
grep -q '^# TYPE ringmaster_worker_events_processed_total counter$' "$T/metrics" || fail "no TYPE"
grep -q '^ringmaster_ring_depth_bytes{partition="3"} [0-9]' "$T/metrics" || fail "no partition label"
sum=$(awk '/^ringmaster_worker_events_processed_total\{/ { s += $2 } END { print s }' "$T/metrics")
assert_eq "processed, summed over partitions" 2000 "$sum"
# Every sample has a TYPE (a histogram's _bucket, _sum and _count its
# own); every counter ends in _total; nothing else in the text.
awk '/^# TYPE / { type[$3] = $4; if ($4 == "counter" && $3 !~ /_total$/) bad = bad " " $3; next }
	/^# HELP / { next }
	/^ringmaster_[a-z0-9_]+(\{[^}]*\})? [-+0-9.eENaInf]+$/ { n = $1; sub(/\{.*/, "", n)
		h = n; sub(/_(bucket|sum|count)$/, "", h)
		if (!(n in type) && type[h] != "histogram") bad = bad " untyped:" n; next }
	{ bad = bad " line:" NR }
	END { if (bad != "") { print bad; exit 1 } }' "$T/metrics" || fail "metrics format"
ok "metrics in Prometheus text format"

# ---- refusals ----
expect 2 "unknown command 'frobnicate'" "$RINGCTL" $C frobnicate
expect 2 "'restart-worker' takes 1 argument (usage: restart-worker N), got 0" \
	"$RINGCTL" $C restart-worker
expect 2 "'status' takes no arguments, got 1" "$RINGCTL" $C status now
expect 2 "'metrics' has no --tsv form" "$RINGCTL" $C metrics --tsv
expect 1 "ringctl: 'restart-worker': no partition 9 (partitions are 0..3)" \
	"$RINGCTL" $C restart-worker 9
expect 2 "-t 0" "$RINGCTL" $C -t 0 status
out=$("$CONTROL_CLIENT" "$SOCK" text "frobnicate now") || fail "raw unknown command"
assert_eq "unknown command, from the supervisor" \
	"error: unknown command 'frobnicate' (try 'help')" "$out"
out=$("$CONTROL_CLIENT" "$SOCK" text "workers 1 2") || fail "raw wrong count"
assert_eq "wrong argument count, from the supervisor" "error: 'workers' takes no arguments, got 2" "$out"
ok "bad commands refused with their reason"

# ---- garbage the supervisor must survive ----
printf 'status\000\001\377' >"$T/binary"
out=$("$CONTROL_CLIENT" "$SOCK" file "$T/binary") || fail "raw binary"
assert_eq "binary frame" "error: binary data in request: NUL byte at offset 6" "$out"
out=$("$CONTROL_CLIENT" "$SOCK" text "") || fail "raw empty"
assert_eq "empty frame" "error: empty request (try 'help')" "$out"
out=$("$CONTROL_CLIENT" "$SOCK" text ping "status now" ping) || fail "raw three requests"
assert_eq "three requests on one connection, answered in turn" \
	"$(printf 'ok: pong\nerror: '"'"'status'"'"' takes no arguments, got 1\nok: pong')" "$out"
out=$("$CONTROL_CLIENT" "$SOCK" size 70000) || fail "raw 70000 bytes"
assert_eq "oversized frame" "error: request too large: 70000 bytes (at most 65536)" "$out"
# Past 1 MiB the supervisor closes the connection without reading it: no reply.
rc=0; "$CONTROL_CLIENT" "$SOCK" size 2000000 >/dev/null 2>&1 || rc=$?
assert_eq "a 2 MB frame gets the connection dropped" 3 $rc
"$RINGCTL" $C status >/dev/null || fail "status after the garbage"
kill -0 $rm_pid || fail "ringmaster died of garbage"
ok "garbage answered with errors, and ringmaster still serves"

# ---- reload ----
out=$("$RINGCTL" $C reload) || fail "reload"
echo "$out" | grep -q '^reloaded: generation [0-9]' || fail "reload says: $out"
cp "$T/t.ini" "$T/t.ini.good"
sed -i 's/^batch_max = .*/batch_max = 0/' "$T/t.ini"
expect 1 "batch_max must be 1..1048576, got 0" "$RINGCTL" -s "$SOCK" reload
cp "$T/t.ini.good" "$T/t.ini"
"$RINGCTL" $C status >/dev/null || fail "status after a refused reload"
ok "reload: ok with a good file, exit 1 with the errors of a bad one"

# ---- restart-worker ----
before=$("$RINGCTL" $C --json workers | jq '.[0].pid')
out=$("$RINGCTL" $C restart-worker 0) || fail "restart-worker 0"
case $out in "restarting worker 0: worker 0 (pid "*") is restarting") ;; *) fail "restart-worker reply: $out" ;; esac
wait_for "worker 0 restarted" ".[0].restarts == 1 and .[0].state == \"running\" and
	.[0].pid != $before and .[0].pid > 0" "$RINGCTL" $C --json workers
ok "restart-worker 0"

# ---- top ----
"$RINGCTL" $C top -n 1 >"$T/top1" || fail "top -n 1"
grep -q 'RING DEPTH' "$T/top1" || fail "top -n 1 has no table: $(cat "$T/top1")"
assert_eq "top rows" 4 "$(grep -cE '^ +[0-9]+ +[0-9]+ running ' "$T/top1")"
unset TMUX
tmux -S "$T/tmux.sock" new-session -d -s top -x 150 -y 30 \
	"'$RINGCTL' -s '$SOCK' top; echo \$? >'$T/top.rc'; sleep 30"
for _ in $(seq 50); do
	tmux -S "$T/tmux.sock" capture-pane -p -t top >"$T/pane" 2>/dev/null || true
	grep -q 'RING DEPTH' "$T/pane" && break
	sleep 0.1
done
grep -q 'RING DEPTH' "$T/pane" || fail "top shows no table: $(cat "$T/pane")"
grep -q "^ringmaster $NAME " "$T/pane" || fail "top shows no instance line"
tmux -S "$T/tmux.sock" send-keys -t top q
for _ in $(seq 50); do [ -s "$T/top.rc" ] && break; sleep 0.1; done
assert_eq "top exits 0 on q" 0 "$(cat "$T/top.rc" 2>/dev/null || echo none)"
tmux -S "$T/tmux.sock" kill-server 2>/dev/null || true
ok "top under tmux: table shown, q quits"

# ---- stop ----
out=$("$RINGCTL" $C stop) || fail "stop"
assert_eq "stop reply" "stopping" "$out"
rc=0; wait $rm_pid || rc=$?
rm_pid=
assert_eq "ringmaster exit status after stop" 0 $rc
[ ! -e "$SOCK" ] || fail "control.sock left behind after a clean stop"
ok "stop: ringmaster exits 0 and removes the socket"

# ---- not reachable ----
expect 3 "missing" "$RINGCTL" -s /nonexistent/control.sock status
expect 3 "control socket $SOCK is missing" "$RINGCTL" $C status
start
kill -STOP $rm_pid
t0=$(date +%s%N)
expect 3 "nobody answers" "$RINGCTL" $C -t 1s status
elapsed=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $elapsed -lt 3000 ] || fail "ringctl took $elapsed ms with -t 1s"
kill -KILL $rm_pid
wait $rm_pid 2>/dev/null || true
rm_pid=
# The workers, which inherited the listening socket, die with their parent.
for _ in $(seq 50); do
	"$RINGCTL" $C -t 1s status 2>"$T/cmd.err" && fail "status answered after kill -9"
	grep -q "connection refused" "$T/cmd.err" && break
	sleep 0.1
done
expect 3 "connection refused" "$RINGCTL" $C -t 1s status
ok "exit 3: missing socket, wedged supervisor ($elapsed ms with -t 1s), stale socket"
