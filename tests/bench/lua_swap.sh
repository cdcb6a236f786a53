#!/usr/bin/env bash
# lua_swap.sh - the dip of a live Lua swap under full load: a generate
# source runs through etc/ledger.lua while `ringctl status` samples the
# processed count about every 100 ms; a few seconds in, the script is
# changed (a new version: every worker compiles it and switches at its
# barrier) and SIGHUP sent. Prints the median throughput, and the longest
# stretch of samples below half of it (the dip). Figures, not a pass/fail
# test.   EVENTS (default 30000000), PARTS (4), B (build)
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
EVENTS=${EVENTS:-30000000} PARTS=${PARTS:-4}
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-luaswap.XXXXXX")
sup=
trap '[ -z "$sup" ] || kill -KILL $sup 2>/dev/null || true; rm -rf "$T"' EXIT
cp etc/ledger.lua "$T/ledger.lua"
chmod 644 "$T/ledger.lua"
cp etc/ringmaster.ini "$T/r.ini"
sed -i "s|^path = rules.tsv|path = $PWD/etc/rules.tsv|; s|^path = accounts.tsv|path = $PWD/etc/accounts.tsv|" "$T/r.ini"
o=(-o ringmaster.partitions=$PARTS -o ringmaster.data_dir="$T/data" -o ringmaster.run_dir="$T/run"
   -o output.dir="$T/out" -o output.dead_letter="$T/dead.tsv" -o source.type=generate
   -o source.events=$EVENTS -o worker.handler="$T/ledger.lua" -o store.sync=periodic
   -o ringmaster.log_level=info)
"$B/bin/ringmaster" -c "$T/r.ini" "${o[@]}" 2>"$T/log" </dev/null &
sup=$!
ctl() { "$B/bin/ringctl" -c "$T/r.ini" "${o[@]}" "$@"; }
until ctl status --tsv >/dev/null 2>&1; do sleep 0.05; done
col=$(ctl status --tsv | head -1 | tr '\t' '\n' | grep -n '^processed$' | cut -d: -f1)
start=$(date +%s.%N) hup_at="" done_at=""
while kill -0 $sup 2>/dev/null; do
	now=$(date +%s.%N)
	p=$(ctl status --tsv 2>/dev/null | sed -n 2p | cut -f"$col") || break
	[ -n "$p" ] && echo "$now $p" >>"$T/samples"
	el=$(awk -v a="$start" -v b="$now" 'BEGIN { print b - a }')
	if [ -z "$hup_at" ] && awk -v e="$el" 'BEGIN { exit !(e > 3) }'; then
		printf -- '-- version 2\n' >>"$T/ledger.lua"
		kill -HUP $sup
		hup_at=$now
	fi
	if [ -n "$hup_at" ] && [ -z "$done_at" ] &&
		[ "$(grep -c 'handler version .* -> ' "$T/log")" -ge "$PARTS" ]; then
		done_at=$now
	fi
	if [ -n "$done_at" ] && awk -v a="$done_at" -v b="$now" 'BEGIN { exit !(b - a > 3) }'; then
		break
	fi
	sleep 0.1
done
kill -TERM $sup 2>/dev/null
wait $sup 2>/dev/null || true
sup=
[ -n "$done_at" ] || { tail "$T/log"; echo "the swap did not finish on every partition"; exit 1; }
echo "live swap of etc/ledger.lua while $PARTS partitions process generated ledger events"
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%d)"
rates() { awk 'NR > 1 { printf "%s %s %.0f\n", t, $1, ($2 - p) / ($1 - t) } { t = $1; p = $2 }' "$T/samples"; }
med=$(rates | cut -d' ' -f3 | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
rates | awk -v h="$hup_at" -v d="$done_at" -v med="$med" '
	# the longest run of consecutive samples below half the median
	{ n++; if ($3 < med / 2) { if (!run) rs = $1; run = 1; len = $2 - rs
		if (len > worst) { worst = len; ws = rs } } else run = 0 }
	END {
		printf "median throughput       %12.0f events/s (%d samples)\n", med, n
		printf "swap (SIGHUP to the last partition switched) %.2f s\n", d - h
		printf "longest dip below half  %12.0f ms%s\n", worst * 1000,
			worst ? sprintf(" (starting %.2f s after the SIGHUP)", ws - h) : ""
	}'
