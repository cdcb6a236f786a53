# Where the time goes (issue 16): a skewed input from `ringctl gen events
# --skew` through four partitions. The summary (text and --summary JSON)
# has a row of stage shares per process, latencies, the imbalance, each
# partition's heaviest keys and a verdict; the hottest generated key is
# reported first, by the summary and, live, by `ringctl status`, `stages`,
# `top` and the metrics; /healthz says 200 while it runs.
. "$(dirname "$0")/lib.sh"

"$RINGCTL" gen events --events 60000 --keys 2000 --skew 1.3 --seed 7 >"$T/events.tsv"
# The hottest key of the input, counted here.
hottest=$(cut -f1 "$T/events.tsv" | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
[ -n "$hottest" ] || fail "no hottest key in the input"

write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" --summary "$T/s.json" 2>"$T/log" || { cat "$T/log"; fail "run"; }
jq -e '.stages | length == 5' "$T/s.json" >/dev/null || fail "a stages row per process: $(jq -c .stages "$T/s.json")"
jq -e '.stages[0].process == "supervisor" and .stages[1].process == "p0"' "$T/s.json" >/dev/null ||
	fail "stages rows"
# Every process's shares add up to 100%.
jq -e '[.stages[] | [to_entries[] | select(.key | endswith("_pct")) | select(.key != "busy_pct" and .key != "hot_key_pct") | .value // 0] | add]
	| all(. > 99 and . < 101)' "$T/s.json" >/dev/null || fail "shares do not add up: $(jq -c .stages "$T/s.json")"
jq -e '[.stages[1:][] | .latency_p50_ms] | any(. != null and . > 0)' "$T/s.json" >/dev/null ||
	fail "no latency measured"
jq -e '.imbalance >= 1' "$T/s.json" >/dev/null || fail "imbalance: $(jq .imbalance "$T/s.json")"
jq -e '.verdict | startswith("bottleneck: ")' "$T/s.json" >/dev/null || fail "verdict: $(jq .verdict "$T/s.json")"
# The heaviest key over all partitions is the input's hottest.
top=$(jq -r '[.hot_keys[] | .[0] // empty] | max_by(.events) | .key' "$T/s.json")
assert_eq "hottest key in the summary" "$hottest" "$top"
grep -q "where the time went:" "$T/log" || fail "no stage table in the text summary"
grep -q "bottleneck: " "$T/log" || fail "no verdict in the text summary"
ok "summary: stages, latency, imbalance, hottest key $hottest first, verdict"

# Live: the same input again, followed (so the run stays up once it is
# read), with the scraping endpoint on a free port.
port=$((20000 + RANDOM % 20000))
rm -rf "$T/data" "$T/out" "$T/dead.tsv" "$T/.dead.tsv.owner"
write_config "$T/live.ini"
"$RINGMASTER" -c "$T/live.ini" -o source.follow=yes -o control.http=127.0.0.1:$port \
	2>"$T/live.log" &
BG_PIDS+=($!)
C="-c $T/live.ini"
processed() {
	kill -0 "${BG_PIDS[0]}" 2>/dev/null || { tail -3 "$T/live.log" >&2; exit 1; }
	[ "$("$RINGCTL" $C status --json | jq .processed)" -ge 60000 ]
}
wait_until 120 processed
# The workers publish their heaviest keys a few times a second.
hot_named() { [ "$("$RINGCTL" $C status --json | jq -r .hot_key)" = "$hottest" ]; }
wait_until 10 hot_named
"$RINGCTL" $C status --json >"$T/status.json"
assert_eq "hottest key in status" "$hottest" "$(jq -r .hot_key "$T/status.json")"
jq -e '.imbalance >= 1' "$T/status.json" >/dev/null || fail "status imbalance"
"$RINGCTL" $C stages --tsv >"$T/stages.tsv"
head -1 "$T/stages.tsv" | grep -q '^process	read_pct	' || fail "stages --tsv header"
[ "$(wc -l <"$T/stages.tsv")" -eq 6 ] || fail "stages rows: $(cat "$T/stages.tsv")"
"$RINGCTL" $C top -n 1 >"$T/top" || fail "top"
grep -q "where the time goes" "$T/top" || fail "top shows no stages: $(cat "$T/top")"
grep -q "$hottest" "$T/top" || fail "top does not name $hottest"
ok "status, stages and top name $hottest"

if command -v curl >/dev/null; then
	healthy() { curl -sf "http://127.0.0.1:$port/healthz" | grep -qx ok; }
	wait_until 20 healthy
	# the endpoint answers from a snapshot the loop publishes twice a
	# second: the workers' latest heavy hitters may take that long
	hot_metric() {
		curl -sf "http://127.0.0.1:$port/metrics" >"$T/metrics" &&
			grep -q "^ringmaster_worker_hot_key_ratio{partition=\"[0-9]\",key=\"$hottest\"} " "$T/metrics"
	}
	wait_until 10 hot_metric || fail "no hot key metric for $hottest"
	grep -q '^ringmaster_event_latency_seconds_bucket{partition="0",le="+Inf"} ' "$T/metrics" ||
		fail "no latency histogram"
	grep -q '^ringmaster_worker_outcomes_total{partition="0",outcome="accepted"} [1-9]' "$T/metrics" ||
		fail "no live outcome counters"
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nothing")
	assert_eq "unknown path" 404 "$code"
	if command -v promtool >/dev/null; then
		promtool check metrics <"$T/metrics" || fail "promtool check metrics"
	fi
	ok "/healthz and /metrics over HTTP"
fi
"$RINGCTL" $C stop >/dev/null
wait "${BG_PIDS[0]}" || true
BG_PIDS=()
