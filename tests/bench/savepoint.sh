#!/usr/bin/env bash
# savepoint.sh - `make bench-savepoint`: what a savepoint costs. First an
# idle instance (a file of five events per account, followed once read):
# the savepoint's time is its copies'. Then a generate source runs through
# the ledger over KEYS accounts; once every account has
# had about five events, `ringctl savepoint` is taken under full load while
# `ringctl status` samples the processed count every 100 ms. Prints the
# savepoint's size and time, the supervisor's pause (its loop held while the
# barriers go in and the config environment is copied), and the throughput
# before and while the workers copy their shards. Then the time of
# `ringmaster --from-savepoint` to build a data_dir from it (to its first
# event). Figures, not a pass/fail test.
#   KEYS (default 100000), PARTS (4)
set -eu
cd "$(dirname "$0")/../.."
B=${B:-build}
KEYS=${KEYS:-100000} PARTS=${PARTS:-4}
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-savepoint.XXXXXX")
trap 'kill -KILL $sup 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
cp etc/ringmaster.ini "$T/r.ini"
"$B/bin/ringctl" gen accounts --keys "$KEYS" >"$T/accounts.tsv"
sed -i "s|^path = rules.tsv|path = $PWD/etc/rules.tsv|; s|^path = accounts.tsv|path = $T/accounts.tsv|" "$T/r.ini"
# Idle: every event read and applied, the source waiting for more.
"$B/bin/ringctl" gen events --events $((KEYS * 5)) --keys "$KEYS" --seed 9 >"$T/events.tsv"
oi=(-o ringmaster.partitions=$PARTS -o ringmaster.data_dir="$T/idata" -o ringmaster.run_dir="$T/irun"
	-o output.dir="$T/iout" -o output.dead_letter="$T/idead.tsv" -o source.type=file -o source.path="$T/events.tsv"
	-o source.follow=yes -o ringmaster.log_level=info -o store.map_size=4G)
"$B/bin/ringmaster" -c "$T/r.ini" "${oi[@]}" 2>"$T/ilog" </dev/null &
sup=$!
ictl() { "$B/bin/ringctl" -c "$T/r.ini" "${oi[@]}" "$@"; }
until ictl status --tsv >/dev/null 2>&1; do sleep 0.05; done
col=$(ictl status --tsv | head -1 | tr '\t' '\n' | grep -n '^processed$' | cut -d: -f1)
while [ "$(ictl status --tsv | tail -1 | cut -f"$col")" -lt $((KEYS * 5)) ]; do kill -0 $sup || { tail "$T/ilog"; exit 1; }; sleep 0.2; done
s=$(date +%s.%N)
ictl savepoint "$T/isp" >"$T/isp.out"
echo "idle: keys=$KEYS partitions=$PARTS: ringctl savepoint took $(echo "$(date +%s.%N) - $s" | bc) s, $(du -sb "$T/isp" | cut -f1) bytes"
cat "$T/isp.out"
kill -TERM $sup
wait $sup || true

o=(-o ringmaster.partitions=$PARTS -o ringmaster.data_dir="$T/data" -o ringmaster.run_dir="$T/run"
	-o output.dir="$T/out" -o output.dead_letter="$T/dead.tsv" -o source.type=generate
	-o source.events=1000000000 -o source.keys=$KEYS -o ringmaster.log_level=info
	-o store.map_size=4G)
"$B/bin/ringmaster" -c "$T/r.ini" "${o[@]}" 2>"$T/log" </dev/null &
sup=$!
ctl() { "$B/bin/ringctl" -c "$T/r.ini" "${o[@]}" "$@"; }
until ctl status --tsv >/dev/null 2>&1; do sleep 0.05; done
col=$(ctl status --tsv | head -1 | tr '\t' '\n' | grep -n '^processed$' | cut -d: -f1)
processed() { ctl status --tsv | tail -1 | cut -f"$col"; }
while [ "$(processed)" -lt $((KEYS * 5)) ]; do sleep 0.2; done
# The rate for 2 s before, then while the savepoint is taken.
p0=$(processed) t0=$(date +%s.%N)
sleep 2
p1=$(processed) t1=$(date +%s.%N)
ctl savepoint "$T/sp" >"$T/sp.out" &
spc=$!
min=""
prev=$p1 prev_t=$t1
while kill -0 $spc 2>/dev/null; do
	sleep 0.1
	p=$(processed) t=$(date +%s.%N)
	r=$(echo "($p - $prev) / ($t - $prev_t)" | bc)
	[ -z "$min" ] || [ "$r" -lt "$min" ] && min=$r
	prev=$p prev_t=$t
done
wait $spc
p2=$(processed) t2=$(date +%s.%N)
kill -TERM $sup
wait $sup || true
size=$(du -sb "$T/sp" | cut -f1)
echo "under load: keys=$KEYS partitions=$PARTS savepoint bytes=$size"
cat "$T/sp.out"
grep -o 'shard copied after seq=[0-9]*, [0-9]* bytes in [0-9.]* s' "$T/log" | sed 's/^/  worker: /'
echo "events/s before: $(echo "($p1 - $p0) / ($t1 - $t0)" | bc)"
echo "events/s while it was taken: $(echo "($p2 - $p1) / ($t2 - $t1)" | bc) (lowest 100 ms window: ${min:-n/a})"
# A new data_dir from it.
o2=(-o ringmaster.partitions=$PARTS -o ringmaster.data_dir="$T/data2" -o ringmaster.run_dir="$T/run2"
	-o output.dir="$T/out2" -o output.dead_letter="$T/dead2.tsv" -o source.type=generate
	-o source.events=1000000000 -o source.keys=$KEYS -o ringmaster.log_level=info
	-o store.map_size=4G)
s=$(date +%s.%N)
"$B/bin/ringmaster" -c "$T/r.ini" "${o2[@]}" --from-savepoint "$T/sp" 2>"$T/log2" </dev/null &
sup=$!
until "$B/bin/ringctl" -c "$T/r.ini" "${o2[@]}" status --tsv >/dev/null 2>&1; do sleep 0.02; done
echo "--from-savepoint to a running instance: $(echo "$(date +%s.%N) - $s" | bc) s"
kill -TERM $sup
wait $sup || true
