# How fast the control socket answers while the pipeline runs flat out: a
# generate source that does not end, and `status` round trips timed by a raw
# client (100 of them, 20 ms apart, each on a new connection as ringctl
# makes) and by ringctl itself (20, process start included). The figures go
# to the log; the test asserts only that every answer came and was right,
# and that the source kept running meanwhile (a timing is never pass/fail).
. "$(dirname "$0")/lib.sh"
[ -x "$CONTROL_CLIENT" ] || fail "no $CONTROL_CLIENT: run through make test"
SOURCE=generate write_config "$T/t.ini"
SOCK="$T/run/control.sock"
"$RINGMASTER" -c "$T/t.ini" -o source.events=1000000000000 -o source.keys=100000 \
	-o output.type=none 2>"$T/log" &
rm_pid=$!
trap 'rc=$?; kill -KILL $rm_pid 2>/dev/null || true
	[ $rc -eq 0 ] && rm -rf "$T" || echo "kept $T for a look"; exit $rc' EXIT
for _ in $(seq 100); do
	"$RINGCTL" -s "$SOCK" -t 1s ping >/dev/null 2>&1 && break
	kill -0 $rm_pid 2>/dev/null || { cat "$T/log"; fail "ringmaster exited at start"; }
	sleep 0.1
done
sleep 1 # up to speed
read_at() { "$RINGCTL" -s "$SOCK" --json status | jq .events_read; }
before=$(read_at)

"$CONTROL_CLIENT" "$SOCK" time 100 status >"$T/raw.txt" || fail "a status request got no right answer"
ms=()
for _ in $(seq 20); do
	t0=$(date +%s%N)
	"$RINGCTL" -s "$SOCK" status >"$T/status" || fail "ringctl status failed under load"
	ms+=($(( ($(date +%s%N) - t0) / 1000 )))
	grep -q '^state: *running$' "$T/status" || fail "status under load: $(cat "$T/status")"
done
after=$(read_at)
[ "$after" -gt "$before" ] || fail "the source did not move during the measurement"
rate=$("$RINGCTL" -s "$SOCK" --json status | jq '.events_per_second | floor')
sorted=($(printf '%s\n' "${ms[@]}" | sort -n))
echo "control latency while the pipeline runs ($rate events/s, $((after - before)) events meanwhile):"
echo "  raw client, status: $(cat "$T/raw.txt")"
printf '  ringctl status, process included: 20 runs  median %d.%03d ms  max %d.%03d ms\n' \
	$((sorted[10] / 1000)) $((sorted[10] % 1000)) $((sorted[19] / 1000)) $((sorted[19] % 1000))

out=$("$RINGCTL" -s "$SOCK" stop) || fail "stop"
rc=0; wait $rm_pid || rc=$?
assert_eq "exit status after stop under load" 0 $rc
ok "every status answered under full load"
