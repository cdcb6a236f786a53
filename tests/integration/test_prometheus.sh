# A real Prometheus (Debian's) scrapes a running ringmaster through
# [control] http (issue 16): after two scrapes, its HTTP API says that
# rate(ringmaster_events_processed_total) is positive and that
# histogram_quantile(0.99, ...) of the commit latency is a number; and
# promtool accepts what /metrics serves. Not under the sanitizers: a
# timing-bound run with a second server beside it, for no more coverage.
. "$(dirname "$0")/lib.sh"

if [ "${ASAN:-}" = 1 ] || ldd "$RINGMASTER" 2>/dev/null | grep -q libasan; then
	echo "skip: not under the sanitizers"
	exit 0
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null ||
	fail "prometheus and promtool are needed (make deps-prometheus)"

# Two free ports (a listener that cannot bind makes the run fail, and says so).
rm_port=$((20000 + RANDOM % 20000))
prom_port=$((rm_port + 1))

SOURCE=generate write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" -o source.events=1000000000000 -o source.keys=1000 \
	-o control.http=127.0.0.1:$rm_port 2>"$T/log" &
BG_PIDS+=($!)
up() { curl -sf "http://127.0.0.1:$rm_port/healthz" | grep -qx ok; }
wait_until 30 up

curl -sf "http://127.0.0.1:$rm_port/metrics" >"$T/metrics" || fail "GET /metrics"
promtool check metrics <"$T/metrics" || fail "promtool check metrics"
ok "promtool accepts /metrics"

cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ringmaster
    static_configs:
      - targets: ['127.0.0.1:$rm_port']
YML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
	--web.listen-address="127.0.0.1:$prom_port" --log.level=warn 2>"$T/prom.log" &
BG_PIDS+=($!)

# query EXPR: the value of the first sample of an instant query, or "".
query() {
	curl -sf --get "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
		jq -r '.data.result[0].value[1] // empty'
}
scraped_twice() { [ "$(query 'count_over_time(up{job="ringmaster"}[1m])')" -ge 2 ] 2>/dev/null; }
wait_until 60 scraped_twice
up=$(query 'up{job="ringmaster"}')
assert_eq "the target is up" 1 "$up"

rate_positive() {
	awk -v r="$(query 'rate(ringmaster_events_processed_total[30s])')" 'BEGIN { exit !(r + 0 > 0) }'
}
wait_until 30 rate_positive
ok "rate(ringmaster_events_processed_total[30s]) = $(query 'rate(ringmaster_events_processed_total[30s])')"

q='histogram_quantile(0.99, sum by (le) (rate(ringmaster_worker_commit_duration_seconds_bucket[30s])))'
p99_number() { awk -v v="$(query "$q")" 'BEGIN { exit !(v ~ /^[0-9.eE+-]+$/) }'; }
wait_until 30 p99_number
ok "p99 commit latency: $(query "$q") s"

kill -TERM "${BG_PIDS[1]}" && wait "${BG_PIDS[1]}" 2>/dev/null || true
"$RINGCTL" -c "$T/t.ini" stop >/dev/null
wait "${BG_PIDS[0]}" || true
