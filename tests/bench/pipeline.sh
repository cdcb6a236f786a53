#!/usr/bin/env bash
# pipeline.sh - `make bench-pipeline`: the generate source through the ledger
# over 1, 2, 4, 8 and 16 partitions (sync = periodic), fresh data_dir each
# time. Prints events/s end to end and the share of the workers' time spent
# waiting for events versus processing them. Figures, not a pass/fail test.
#   EVENTS (default 2000000), KEYS (10000), PARTS ("1 2 4 8 16"), SKEW (0)
#   BASELINE=/path/to/an/older/ringmaster: run it too, interleaved with this
#   one, ROUNDS times (default 3) per partition count, and print the median
#   of each and their ratio (what a change costs, measured in one run); it
#   reads BASELINE_INI, by default its own tree's etc/ringmaster.ini (for a
#   build/bin/ringmaster) when there is one: an older build does not know
#   every setting of this one's. With perf(1) there, each side also gets
#   the CPU time of all its processes per event (task-clock, median), which
#   a loaded machine moves much less than events/s; HANDLER (default
#   ledger) is the handler both run (HANDLER=etc/ledger.lua: the Lua one)
#   HANDLERS (default "ledger etc/ledger.lua"): the C ledger and the same
#   logic in Lua, a row each per partition count, and Lua's share of C;
#   each row is the run with the median events/s of ROUNDS runs, the
#   handlers' runs interleaved (on a shared machine a burst of load then
#   hits one run, not all of one handler's)
#   FORMAT=tsv|jsonl: the same events written once by `ringctl gen events`
#   (--format jsonl for jsonl) and read by the file source instead of the
#   generate source, so that the two formats' ingest rates can be compared
#   STAGES (default tests/bench/results/stages): where the time went in the
#   C ledger's runs, from their summaries: STAGES.tsv, the share of each
#   stage for the supervisor and for the workers (their mean) at each
#   partition count, and STAGES.png, the same as stacked bars (gnuplot,
#   when it is installed: make seed-deps); STAGES= for none
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
EVENTS=${EVENTS:-2000000} KEYS=${KEYS:-10000} SKEW=${SKEW:-0}
PARTS=${PARTS:-1 2 4 8 16} ROUNDS=${ROUNDS:-3}
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
src="-o source.type=generate -o source.events=$EVENTS -o source.keys=$KEYS -o source.skew=$SKEW"
case "${FORMAT:-}" in
'') ;;
tsv | jsonl)
	"$B/bin/ringctl" gen events --events "$EVENTS" --keys "$KEYS" --skew "$SKEW" \
		--format "$FORMAT" >"$T/events"
	src="-o source.type=file -o source.path=$T/events -o source.format=$FORMAT"
	[ "$FORMAT" = tsv ] || src="$src -o source.key=account"
	;;
*) echo "FORMAT: tsv or jsonl" >&2 && exit 2 ;;
esac
printf '%s\n' "pipeline benchmark: $EVENTS ledger events over $KEYS accounts, skew $SKEW, sync=periodic" \
	"source: ${FORMAT:-generate}${FORMAT:+ file}" \
	"machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d)" ""

HANDLERS=${HANDLERS:-ledger etc/ledger.lua}
handler=${HANDLER:-ledger} # BASELINE runs'; the others run HANDLERS
perf= # set below for BASELINE runs
# run BINARY PARTITIONS [INI]: one run with $handler; leaves its summary in
# $T/s.json
run() {
	local h=$handler
	case $h in */*) h=$PWD/$h ;; esac
	rm -rf "$T/data" "$T/out" "$T/run" "$T/dead.tsv" "$T/.dead.tsv.owner" "$T/cpu"
	$perf "$1" -c "${3:-etc/ringmaster.ini}" -o ringmaster.partitions=$2 -o worker.handler="$h" \
		-o ringmaster.data_dir="$T/data" -o ringmaster.run_dir="$T/run" \
		-o output.dir="$T/out" -o output.dead_letter="$T/dead.tsv" \
		$src -o store.sync=periodic -o ringmaster.log_level=warn \
		--summary "$T/s.json" 2>"$T/log" </dev/null || { cat "$T/log"; exit 1; }
}
rate() { grep -o '"events_per_second":[0-9.]*' "$T/s.json" | cut -d: -f2; }
# CPU microseconds an event of the last run, all processes (0 without perf)
cpu() {
	[ -s "$T/cpu" ] || { echo 0 && return; }
	awk -F, -v n="$EVENTS" '$3 == "task-clock" { print $1 * 1000 / n }' "$T/cpu"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

if [ -n "${BASELINE:-}" ]; then
	base_tree=$(dirname "$BASELINE")/../..
	if [ -z "${BASELINE_INI:-}" ] && [ -f "$base_tree/etc/ringmaster.ini" ]; then
		BASELINE_INI=$(cd "$base_tree/etc" && pwd)/ringmaster.ini
	fi
	printf 'this build: %s, baseline: %s, median of %s interleaved runs each\n\n' \
		"$B/bin/ringmaster" "$BASELINE" "$ROUNDS"
	perf=
	if command -v perf >/dev/null && perf stat -e task-clock -o /dev/null true 2>/dev/null; then
		perf="perf stat -x, -e task-clock -o $T/cpu"
	fi
	printf '%-11s %14s %14s %8s %12s %12s %8s\n' partitions events/s baseline ratio \
		'cpu us/ev' baseline ratio
	for p in $PARTS; do
		: >"$T/new" && : >"$T/old" && : >"$T/newcpu" && : >"$T/oldcpu"
		for r in $(seq "$ROUNDS"); do
			run "$B/bin/ringmaster" "$p" && rate >>"$T/new" && cpu >>"$T/newcpu"
			run "$BASELINE" "$p" "${BASELINE_INI:-}" && rate >>"$T/old" &&
				cpu >>"$T/oldcpu"
		done
		awk -v p="$p" -v n="$(median <"$T/new")" -v o="$(median <"$T/old")" \
			-v nc="$(median <"$T/newcpu")" -v oc="$(median <"$T/oldcpu")" 'BEGIN {
			printf "%-11s %14.0f %14.0f %7.3fx %12.3f %12.3f %7.3fx\n", p, n, o,
				(o > 0 ? n / o : 0), nc, oc, (nc > 0 ? oc / nc : 0) }'
	done
	exit 0
fi

# stage_rows P FILE: the supervisor's and the workers' mean stage shares of
# the run whose summary is FILE, two lines of STAGE_COLS.
STAGE_COLS="read parse partition backpressure wait handler reads commit fsync output idle other"
stage_rows() {
	jq -r --arg p "$1" --arg cols "$STAGE_COLS" '($cols | split(" ")) as $c
		| .stages as $s
		| ([$s[1:][] | [$c[] as $k | .[$k + "_pct"] // 0]]) as $w
		| "p=\($p) supervisor\t" + ([$c[] as $k | $s[0][$k + "_pct"] // 0] | map(tostring) | join("\t")),
		  "p=\($p) workers\t" + ([range(0; $c | length) as $i | ([$w[][$i]] | add / length)]
			| map(tostring) | join("\t"))' "$2"
}
STAGES=${STAGES-tests/bench/results/stages}
[ -z "$STAGES" ] || printf 'process\t%s\n' "$(tr ' ' '\t' <<<"$STAGE_COLS")" >"$STAGES.tsv"

printf '%-11s %-15s %14s %10s %10s %10s %8s\n' partitions handler events/s seconds busy% wait% of-C
# One line per run in $T/runs: handler, events/s, wall seconds, busy, wait.
for p in $PARTS; do
	: >"$T/runs"
	for r in $(seq "$ROUNDS"); do
		for handler in $HANDLERS; do
			run "$B/bin/ringmaster" "$p"
			j=$(cat "$T/s.json")
			# the C ledger's first run stands for its stages
			[ "$handler$r" != ledger1 ] || cp "$T/s.json" "$T/stages.json"
			sum() { grep -o "\"$1\":[0-9.]*" <<<"$j" | cut -d: -f2 | awk '{ t += $1 } END { print t + 0 }'; }
			printf '%s %s %s %s %s\n' "$handler" "$(rate)" \
				"$(grep -o '"wall_seconds":[0-9.]*' <<<"$j" | cut -d: -f2)" \
				"$(sum busy_seconds)" "$(sum wait_seconds)" >>"$T/runs"
		done
	done
	c_rate=0
	for handler in $HANDLERS; do
		# the run with the median events/s stands for the handler
		m=$(awk -v h="$handler" '$1 == h' "$T/runs" | sort -k2,2n |
			awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }')
		read -r _ r secs busy wait <<<"$m"
		[ "$handler" = ledger ] && c_rate=$r
		[ "$handler" != ledger ] || [ -z "$STAGES" ] || stage_rows "$p" "$T/stages.json" >>"$STAGES.tsv"
		awk -v p="$p" -v h="${handler##*/}" -v r="$r" -v s="$secs" -v b="$busy" \
			-v w="$wait" -v c="$c_rate" 'BEGIN {
			t = b + w; if (t == 0) t = 1
			printf "%-11s %-15s %14.0f %10.2f %9.1f%% %9.1f%% %7.0f%%\n", p, h, r, s,
				100 * b / t, 100 * w / t, (c > 0 ? 100 * r / c : 0) }'
	done
done

# The picture: a stacked bar per process kind and partition count.
if [ -n "$STAGES" ] && command -v gnuplot >/dev/null; then
	gnuplot <<GP
set terminal pngcairo size 1100,560 noenhanced font ",10"
set output "$STAGES.png"
set title "Where the time goes: share of each stage, supervisor and workers (mean), by partition count"
set datafile separator "\t"
set style data histograms
set style histogram rowstacked gap 1
set style fill solid 0.85 border -1
set boxwidth 0.8
set ylabel "% of the process's time"
set yrange [0:100]
set xtics rotate by -40 left
set key outside right top vertical
# One colour a stage: the supervisor's blues, waiting reds, the workers'
# greens and purples, idle and other greys.
colors = "#1f77b4 #aec7e8 #17becf #d62728 #ff9896 #2ca02c #98df8a #9467bd #8c564b #e377c2 #c7c7c7 #7f7f7f"
plot for [i=2:13] "$STAGES.tsv" using i:xtic(1) title columnheader(i) lc rgb word(colors, i - 1)
GP
	echo "stages: $STAGES.tsv, $STAGES.png"
fi
