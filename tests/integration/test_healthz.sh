# /healthz: 200 while the loop runs and no partition failed, 503 with the
# reason once one has (its handler could not finish fail_after events in a
# row); a worker killed and restarted is no failure; `ringctl
# restart-worker` after a fixing reload brings 200 back.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "skipped: no curl (make test installs it)"; exit 0; }
port=$((20000 + RANDOM % 20000))
mkdir -p "$T/in"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so PARTITIONS=2 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 0" \
	"[restart]" "backoff_initial = 2ms" "backoff_max = 20ms" "poison_after = 2" "fail_after = 4"
"$RINGMASTER" -c "$T/t.ini" -o source.type=spool -o source.dir="$T/in" -o source.follow=yes \
	-o control.http=127.0.0.1:$port 2>"$T/log" &
BG_PIDS+=($!)
"$RINGCTL" -c "$T/t.ini" wait -t 20s
health() { # CODE [BODY_PATTERN]
	local code
	code=$(curl -s -o "$T/h.out" -w '%{http_code}' "http://127.0.0.1:$port/healthz") &&
		[ "$code" = "$1" ] && grep -q -- "${2:-}" "$T/h.out"
}
wait_until 10 health 200 '^ok$'
kill -KILL "$(worker_pid 0)"
sleep 0.2
health 200 '^ok$' || fail "a worker being restarted made /healthz fail: $(cat "$T/h.out")"
ok "200 while running, and while a killed worker is restarted"
"$RINGCTL" gen events --events 500 --keys 50 >"$T/in/.a" && mv "$T/in/.a" "$T/in/a.tsv"
"$RINGCTL" -c "$T/t.ini" reload >/dev/null # nothing fails yet
sed -i 's/^sleep_us = 0$/sleep_us = 0\nfail_mode = error\nfail_partition = 1/' "$T/t.ini"
"$RINGCTL" -c "$T/t.ini" reload >/dev/null
"$RINGCTL" gen events --events 500 --keys 50 --seed 2 >"$T/in/.b" && mv "$T/in/.b" "$T/in/b.tsv"
wait_until 60 health 503 'partition 1'
ok "503 once partition 1 failed: $(head -c 120 "$T/h.out")"
sed -i '/^fail_mode = error$/d; /^fail_partition = 1$/d' "$T/t.ini"
"$RINGCTL" -c "$T/t.ini" reload >/dev/null
"$RINGCTL" -c "$T/t.ini" restart-worker 1 >/dev/null
wait_until 20 health 200 '^ok$'
ok "200 again after restart-worker"
