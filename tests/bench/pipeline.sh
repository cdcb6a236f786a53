#!/usr/bin/env bash
# pipeline.sh - `make bench-pipeline`: the generate source through the ledger
# over 1, 2, 4, 8 and 16 partitions (sync = periodic), fresh data_dir each
# time. Prints events/s end to end and the share of the workers' time spent
# waiting for events versus processing them. Figures, not a pass/fail test.
#   EVENTS (default 2000000), KEYS (10000), PARTS ("1 2 4 8 16"), SKEW (0)
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
EVENTS=${EVENTS:-2000000} KEYS=${KEYS:-10000} SKEW=${SKEW:-0}
PARTS=${PARTS:-1 2 4 8 16}
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
printf '%s\n' "pipeline benchmark: $EVENTS ledger events over $KEYS accounts, skew $SKEW, sync=periodic" \
	"machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d)" ""
printf '%-11s %14s %10s %10s %10s\n' partitions events/s seconds busy% wait%
for p in $PARTS; do
	rm -rf "$T/data" "$T/out" "$T/run" "$T/dead.tsv"
	"$B/bin/ringmaster" -c etc/ringmaster.ini -o ringmaster.partitions=$p \
		-o ringmaster.data_dir="$T/data" -o ringmaster.run_dir="$T/run" \
		-o output.dir="$T/out" -o output.dead_letter="$T/dead.tsv" \
		-o source.type=generate -o source.events=$EVENTS -o source.keys=$KEYS \
		-o source.skew=$SKEW -o store.sync=periodic -o ringmaster.log_level=warn \
		--summary "$T/s.json" 2>"$T/log" </dev/null || { cat "$T/log"; exit 1; }
	j=$(cat "$T/s.json")
	sum() { grep -o "\"$1\":[0-9.]*" <<<"$j" | cut -d: -f2 | awk '{ t += $1 } END { print t + 0 }'; }
	busy=$(sum busy_seconds) wait=$(sum wait_seconds)
	rate=$(grep -o '"events_per_second":[0-9.]*' <<<"$j" | cut -d: -f2)
	secs=$(grep -o '"wall_seconds":[0-9.]*' <<<"$j" | cut -d: -f2)
	awk -v p="$p" -v r="$rate" -v s="$secs" -v b="$busy" -v w="$wait" 'BEGIN {
		t = b + w; if (t == 0) t = 1
		printf "%-11s %14.0f %10.2f %9.1f%% %9.1f%%\n", p, r, s, 100 * b / t, 100 * w / t }'
done
