#!/usr/bin/env bash
# supervisor.sh - `make bench-supervisor`: how many events a second one
# supervisor core can read, parse, partition and copy into the rings, with
# nothing behind it: the null handler (tests/handlers/null.c), no output,
# sync = periodic. For the throughput model in README.md (Figures: "The
# supervisor alone"). Figures, not a pass/fail test.
#
# Two sources: a file of EVENTS ledger lines written once by `ringctl gen
# events` (read, split at the tab, keyed, partitioned, copied: the work of
# a real ingest), and the generate source (no reading or parsing; the
# generator's own cost instead). For each source and partition count, the
# median of ROUNDS runs of:
#   events/s      end to end, from the first event read to the last commit
#   sup busy      the supervisor's share of that time not spent waiting for
#                 room in the rings (its stages; the rest is backpressure)
#   per core      events/s / sup busy: what the supervisor alone would do
#                 with a core to itself and workers that keep up
#   sup ns/event  1e9 / per core
# With valgrind, and INSTR unset or 1, it also counts the supervisor's
# instructions per event with the file source (cachegrind, 1 partition; the
# difference between INSTR_EVENTS and 4 * INSTR_EVENTS events, so the start
# does not count), which the load of a shared machine does not move.
#   EVENTS (default 2000000), KEYS (10000), PARTS ("1 2 4"), ROUNDS (3),
#   INSTR_EVENTS (100000)
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
EVENTS=${EVENTS:-2000000} KEYS=${KEYS:-10000} PARTS=${PARTS:-1 2 4} ROUNDS=${ROUNDS:-3}
INSTR_EVENTS=${INSTR_EVENTS:-100000}
null=$PWD/$B/test-handlers/null.so
[ -f "$null" ] || { echo "supervisor.sh: $null is not built (make $B/test-handlers/null.so)" >&2; exit 2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-sup.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$B/bin/ringctl" gen events --events "$EVENTS" --keys "$KEYS" >"$T/events"

# run PARTITIONS SOURCE-OPTIONS...: one run; its summary in $T/s.json
run() {
	local p=$1
	shift
	rm -rf "$T/data" "$T/run" "$T/out" "$T/dead.tsv" "$T/.dead.tsv.owner"
	"$B/bin/ringmaster" -c etc/ringmaster.ini -o ringmaster.partitions="$p" \
		-o worker.handler="$null" -o output.type=none -o ringmaster.data_dir="$T/data" \
		-o ringmaster.run_dir="$T/run" -o output.dir="$T/out" \
		-o output.dead_letter="$T/dead.tsv" -o store.sync=periodic \
		-o ringmaster.log_level=warn "$@" --summary "$T/s.json" 2>"$T/log" </dev/null ||
		{ cat "$T/log"; exit 1; }
}
# events/s and the supervisor's busy share of the last run
figures() {
	jq -r '"\(.events_per_second) \(.stages[0].busy_pct)"' "$T/s.json"
}

printf 'supervisor alone: %s events over %s keys, null handler, no output\n' "$EVENTS" "$KEYS"
printf 'machine: %s cores, %s, %s, load %s\n\n' "$(nproc)" "$(uname -m)" "$(date -u +%Y-%m-%d)" \
	"$(cut -d' ' -f1 /proc/loadavg)"
printf '%-9s %-11s %12s %9s %14s %13s\n' source partitions events/s 'sup busy' 'per core' \
	'sup ns/event'
for source in file generate; do
	case $source in
	file) opts=(-o source.type=file -o source.path="$T/events") ;;
	generate) opts=(-o source.type=generate -o source.events="$EVENTS" -o source.keys="$KEYS") ;;
	esac
	for p in $PARTS; do
		: >"$T/runs"
		for _ in $(seq "$ROUNDS"); do
			run "$p" "${opts[@]}"
			figures >>"$T/runs"
		done
		# the run with the median events/s stands for the row
		sort -n "$T/runs" | awk -v s="$source" -v p="$p" '{ l[NR] = $0 } END {
			split(l[int((NR + 1) / 2)], f, " "); busy = f[2] > 0 ? f[2] / 100 : 1
			printf "%-9s %-11s %12.0f %8.1f%% %14.0f %13.0f\n", s, p, f[1], 100 * busy,
				f[1] / busy, 1e9 * busy / f[1] }'
	done
done

if [ "${INSTR:-1}" = 1 ] && command -v valgrind >/dev/null; then
	count() { # EVENTS: the supervisor's instructions with the file source
		head -n "$1" "$T/events" >"$T/part"
		rm -rf "$T/data" "$T/run" "$T/out" "$T/dead.tsv" "$T/.dead.tsv.owner" "$T"/cg.*
		valgrind --tool=cachegrind --cache-sim=no --trace-children=yes \
			--cachegrind-out-file="$T/cg.%p" "$B/bin/ringmaster" -c etc/ringmaster.ini \
			-o ringmaster.partitions=1 -o worker.handler="$null" -o output.type=none \
			-o worker.watchdog=0 -o ringmaster.data_dir="$T/data" \
			-o ringmaster.run_dir="$T/run" -o output.dir="$T/out" \
			-o output.dead_letter="$T/dead.tsv" -o source.type=file \
			-o source.path="$T/part" -o store.sync=periodic \
			-o ringmaster.log_level=warn 2>"$T/log" </dev/null &
		local sup=$!
		wait "$sup" || { cat "$T/log"; exit 1; }
		grep -h '^summary:' "$T/cg.$sup" | awk '{ print $2 }'
	}
	n1=$INSTR_EVENTS n4=$((4 * INSTR_EVENTS))
	[ "$n4" -le "$EVENTS" ] || n4=$EVENTS
	i1=$(count "$n1") i4=$(count "$n4")
	awk -v a="$i1" -v b="$i4" -v n1="$n1" -v n4="$n4" 'BEGIN {
		printf "\nsupervisor, file source, 1 partition: %.0f instructions an event (%d to %d events)\n",
			(b - a) / (n4 - n1), n1, n4 }'
fi
