# Restart delays double from backoff_initial up to backoff_max, and start
# over once a worker has stayed up backoff_reset (read from the log).
. "$(dirname "$0")/lib.sh"
: >"$T/events.tsv"
PARTITIONS=1 write_config "$T/t.ini" "[restart]" "backoff_initial = 50ms" \
	"backoff_max = 150ms" "backoff_reset = 1500ms"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log" &
sup=$!
BG_PIDS+=($sup)
wait_until 10 worker_pid 0
kill_worker() { # wait for a running worker, kill it, wait for the log line
	local n=$1
	wait_until 10 worker_pid 0
	kill -KILL "$(worker_pid 0)"
	wait_until 10 log_has "$T/log" "restarting it in" "$n"
}
kill_worker 1; kill_worker 2; kill_worker 3; kill_worker 4
sleep 2 # longer than backoff_reset
kill_worker 5
kill -TERM $sup
wait $sup || fail "ringmaster did not exit 0 after SIGTERM"
delays=$(grep -o 'restarting it in [0-9]*ms' "$T/log" | grep -o '[0-9]*' | tr '\n' ' ')
assert_eq "restart delays" "50 100 150 150 50 " "$delays"
ok "backoff grows, caps and resets: $delays"
