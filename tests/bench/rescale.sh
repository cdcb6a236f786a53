#!/usr/bin/env bash
# rescale.sh - `make bench-rescale`: how long a re-split takes. For each
# size in KEYS, a generate source runs KEYS * 2 events over KEYS keys through
# example_counter.so at FROM partitions (every key gets a state), then
# `ringmaster --rescale` re-splits the stopped data_dir to TO partitions;
# prints the keys the state held, its size on disk and the re-split's time
# (from its log line). Then the same live: the instance started again on
# more events, `ringctl rescale FROM` (back from TO) while they flow; the
# pause is the time from the request to the start with the new count (the
# source reads nothing in between: the workers stop at the cut, then
# re-split and start; stop_timeout is 600s there, as a zmq source would
# drain its rings instead).
# Figures, not a pass/fail test.
#   KEYS (default "100000 1000000"), FROM (4), TO (7); KEEP=1 keeps the logs
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
KEYS=${KEYS:-100000 1000000} FROM=${FROM:-4} TO=${TO:-7}
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-rescale.XXXXXX")
trap '[ -n "${KEEP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"' EXIT
chmod go-w "$B" "$B/handlers" "$B/handlers/"*.so 2>/dev/null || true
cp etc/ringmaster.ini "$T/r.ini"
sed -i "s|^path = rules.tsv|path = $PWD/etc/rules.tsv|; s|^path = accounts.tsv|path = $PWD/etc/accounts.tsv|" "$T/r.ini"
printf '| keys | from | to | state on disk (MB) | re-split seconds | keys/s | live: re-split s | live: source paused s |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n'
ts_of() { # LOG PATTERN: the time of the last record matching, in seconds
	grep -- "$2" "$1" | tail -1 | sed -E 's/^ts=([^ ]+) .*/\1/' | xargs -I{} date -d {} +%s.%N
}
for k in $KEYS; do
	rm -rf "$T/data" "$T/out" "$T/run" "$T/dead.tsv" "$T/.dead.tsv.owner"
	o=(-o ringmaster.data_dir="$T/data" -o ringmaster.run_dir="$T/run" -o output.type=none
	   -o output.dead_letter="$T/dead.tsv" -o source.type=generate -o source.events=$((k * 2))
	   -o source.keys="$k" -o worker.handler="$PWD/$B/handlers/example_counter.so"
	   -o store.map_size=4G -o ringmaster.log_level=info)
	"$B/bin/ringmaster" -c "$T/r.ini" "${o[@]}" -o ringmaster.partitions="$FROM" 2>"$T/run.log" ||
		{ tail "$T/run.log"; exit 1; }
	mb=$(du -sm "$T/data/state" | cut -f1)
	"$B/bin/ringmaster" -c "$T/r.ini" "${o[@]}" -o ringmaster.partitions="$TO" --rescale \
		2>"$T/rescale.log" || { tail "$T/rescale.log"; exit 1; }
	line=$(grep 're-split done' "$T/rescale.log")
	n=$(sed -E 's/.* keys=([0-9]+) .*/\1/' <<<"$line")
	s=$(sed -E 's/.* seconds=([0-9.]+).*/\1/' <<<"$line")
	# Live, back to FROM: more events after the watermark, rescaled while they flow.
	"$B/bin/ringmaster" -c "$T/r.ini" "${o[@]}" -o ringmaster.partitions="$TO" \
		-o source.events=$((k * 2 + 20000000)) -o ringmaster.stop_timeout=600s 2>"$T/live.log" &
	sup=$!
	"$B/bin/ringctl" -c "$T/r.ini" "${o[@]}" wait -t 60s
	sleep 2
	"$B/bin/ringctl" -c "$T/r.ini" "${o[@]}" rescale "$FROM" >/dev/null
	until grep -q "started partitions=$FROM \|rescale to $FROM abandoned" "$T/live.log"; do sleep 0.1; done
	kill -TERM $sup
	wait $sup || true
	ls=$(grep 're-split done' "$T/live.log" | sed -E 's/.* seconds=([0-9.]+).*/\1/')
	pause=$(awk -v a="$(ts_of "$T/live.log" 'rescale from')" \
		-v b="$(ts_of "$T/live.log" "started partitions=$FROM ")" 'BEGIN { printf "%.2f", b - a }')
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$FROM" "$TO" "$mb" "$s" \
		"$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')" "$ls" "$pause"
done
