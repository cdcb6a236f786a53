#!/usr/bin/env bash
# handler_instr.sh - instructions per event of one worker running each
# handler, counted by valgrind (cachegrind, no cache simulation): a figure
# that, unlike events/s, does not move with the load of a shared machine,
# for comparing versions of a handler or of the Lua runtime. One partition,
# generated events, sync = periodic, as in pipeline.sh; the worker's count
# includes its start (a few percent at 100000 events). Not a pass/fail test.
#   EVENTS (default 100000), KEYS (10000)
#   HANDLERS (default "ledger etc/ledger.lua"): built-in names or paths
#   INI (default etc/ringmaster.ini): an older build (B=/other/tree/build)
#   needs its own tree's, which knows only its settings
# The supervisor's count is printed too (the same run: generating,
# partitioning and copying the events, its start included).
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
EVENTS=${EVENTS:-100000} KEYS=${KEYS:-10000}
HANDLERS=${HANDLERS:-ledger etc/ledger.lua}
INI=${INI:-etc/ringmaster.ini}
command -v valgrind >/dev/null || { echo "handler_instr.sh: needs valgrind" >&2; exit 2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-instr.XXXXXX")
trap 'rm -rf "$T"' EXIT
printf 'instructions per event of the worker: %s events over %s keys, 1 partition\n\n' \
	"$EVENTS" "$KEYS"
printf '%-24s %14s %14s\n' handler instr/event supervisor
for handler in $HANDLERS; do
	h=$handler
	case $h in /*) ;; */*) h=$PWD/$h ;; esac
	rm -rf "$T/run"
	mkdir -p "$T/run"
	# JIT-compiled code is written at run time: --smc-check sees it.
	valgrind --tool=cachegrind --cache-sim=no --trace-children=yes \
		--smc-check=all-non-file --cachegrind-out-file="$T/run/cg.%p" \
		"$B/bin/ringmaster" -c "$INI" -o ringmaster.partitions=1 \
		-o worker.handler="$h" -o worker.watchdog=0 \
		-o ringmaster.data_dir="$T/run/data" -o ringmaster.run_dir="$T/run/run" \
		-o output.dir="$T/run/out" -o output.dead_letter="$T/run/dead.tsv" \
		-o source.type=generate -o source.events="$EVENTS" -o source.keys="$KEYS" \
		-o store.sync=periodic -o ringmaster.log_level=warn \
		2>"$T/log" </dev/null &
	sup=$!
	wait "$sup" || { cat "$T/log"; exit 1; }
	# The worker: of the supervisor's children (fork server, workers), the
	# one that ran the most instructions.
	sir=$(grep -h '^summary:' "$T/run/cg.$sup" | awk '{ print $2 }')
	rm -f "$T/run/cg.$sup"
	ir=$(grep -h '^summary:' "$T"/run/cg.* | awk '$2 > m { m = $2 } END { print m }')
	awk -v h="${handler##*/}" -v i="$ir" -v s="$sir" -v n="$EVENTS" \
		'BEGIN { printf "%-24s %14.0f %14.0f\n", h, i / n, s / n }'
done
