#!/usr/bin/env bash
# reload_dip.sh - `make bench-reload`: how much a SIGHUP reload of a
# 1,000,000-row table costs the event flow. A generate source runs through
# the ledger while `ringctl status` samples the processed count every 100 ms;
# a few seconds in, a 1,000,000-row table is added to the config and SIGHUP
# sent. Prints the throughput before, during (SIGHUP to "reload done") and
# after, and the lowest 100 ms window. Figures, not a pass/fail test.
#   EVENTS (default 30000000), ROWS (1000000), PARTS (4)
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
EVENTS=${EVENTS:-30000000} ROWS=${ROWS:-1000000} PARTS=${PARTS:-4}
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-reload.XXXXXX")
trap 'kill -KILL $sup 2>/dev/null || true; rm -rf "$T"' EXIT
awk -v n="$ROWS" 'BEGIN { for (i = 0; i < n; i++) printf "ref%08d\tvalue %d\n", i, i }' >"$T/big.tsv"
printf 'x\t1\n' >"$T/small.tsv"
cp etc/ringmaster.ini "$T/r.ini"
sed -i "s|^path = rules.tsv|path = $PWD/etc/rules.tsv|; s|^path = accounts.tsv|path = $PWD/etc/accounts.tsv|" "$T/r.ini"
printf '\n[table.big]\npath = %s/small.tsv\n' "$T" >>"$T/r.ini"
o=(-o ringmaster.partitions=$PARTS -o ringmaster.data_dir="$T/data" -o ringmaster.run_dir="$T/run"
   -o output.dir="$T/out" -o output.dead_letter="$T/dead.tsv" -o source.type=generate
   -o source.events=$EVENTS -o ringmaster.log_level=info)
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
		sed -i "s|$T/small.tsv|$T/big.tsv|" "$T/r.ini"
		kill -HUP $sup; hup_at=$now
	fi
	if [ -n "$hup_at" ] && [ -z "$done_at" ] && grep -q "reload done" "$T/log"; then done_at=$now; fi
	if [ -n "$done_at" ] && awk -v a="$done_at" -v b="$now" 'BEGIN { exit !(b - a > 3) }'; then
		break
	fi
	sleep 0.1
done
kill -TERM $sup 2>/dev/null; wait $sup 2>/dev/null || true
[ -n "$done_at" ] || { tail "$T/log"; echo "the reload did not finish"; exit 1; }
echo "reload of a $ROWS-row table while $PARTS partitions process generated ledger events"
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%d)"
awk -v h="$hup_at" -v d="$done_at" '
	NR > 1 { dt = $1 - t; r = ($2 - p) / dt
		if ($1 <= h) { bn += $2 - p; bt += dt } else if ($1 <= d + 0.1) { dn += $2 - p; dt2 += dt; if (!m || r < min) { min = r; m = 1 } } else { an += $2 - p; at += dt } }
	{ t = $1; p = $2 }
	END { printf "before the reload   %12.0f events/s\n", bt ? bn / bt : 0
	      printf "during (%.2f s)     %12.0f events/s  (lowest 100 ms window %.0f)\n", d - h, dt2 ? dn / dt2 : 0, min
	      printf "after the reload    %12.0f events/s\n", at ? an / at : 0 }' "$T/samples"
