#!/usr/bin/env bash
# seed.sh - `make bench-seed` (issue 6): the naive design against ringmaster,
# same events, same ledger, side by side, with a plot.
#
# The naive design (tests/bench/naive/naive.c) is one process with a pool of
# threads and a round trip to Redis for every lookup; its variant caches the
# reference tables in memory and keeps only the state in Redis. Redis is
# started here, on a free loopback port, without persistence, and stopped at
# the end. Before any timing, every configuration of both designs runs the
# same CHECK_EVENTS-event file and its final balances must equal ringmaster's
# at one partition (`ringctl dump-state`); otherwise nothing is timed.
#
# Then one EVENTS-event file (KEYS accounts, Zipf SKEW) goes through
# ringmaster at each of PARTS partitions, and through the naive designs at
# each of THREADS threads, each naive run stopped after NAIVE_SECONDS (the
# rate so far is reported). Every configuration runs REPEATS times, in
# interleaved rounds, and the median run (by events/s) is kept, so a
# neighbour's burst of work on a shared machine spoils one run, not the
# figure, and falls on both designs alike. Printed: events/s, CPU
# seconds (for the naive designs, the process plus redis-server), peak
# memory (the sum of the PSS of every process of the design, redis-server
# included for the naive designs), and the ratio of ringmaster's best to
# the naive design's best. Written: OUT/seed.csv,
# OUT/seed.png (gnuplot), OUT/seed.md. Figures, not a pass/fail timing
# test: it fails only if a check fails.
#
#   EVENTS (1000000) KEYS (100000) SKEW (0.99) CHECK_EVENTS (50000)
#   PARTS ("1 2 4 8 16 64") THREADS ("1 8 50 100 300 500")
#   NAIVE_SECONDS (7) REPEATS (3) OUT (tests/bench/results)
#   RUN_TIMEOUT (120: seconds before a run counts as hung)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
EVENTS=${EVENTS:-1000000} KEYS=${KEYS:-100000} SKEW=${SKEW:-0.99}
CHECK_EVENTS=${CHECK_EVENTS:-50000} NAIVE_SECONDS=${NAIVE_SECONDS:-7}
PARTS=${PARTS:-1 2 4 8 16 64} THREADS=${THREADS:-1 8 50 100 300 500}
OUT=${OUT:-tests/bench/results} RUN_TIMEOUT=${RUN_TIMEOUT:-120} REPEATS=${REPEATS:-3}
RINGMASTER=$B/bin/ringmaster RINGCTL=$B/bin/ringctl NAIVE=$B/tests/bench/naive/naive
TARGET=30

for tool in "$RINGMASTER" "$RINGCTL" "$NAIVE" redis-server redis-cli gnuplot /usr/bin/time timeout; do
	command -v "$tool" >/dev/null || { echo "seed.sh: $tool is missing; run it through make bench-seed" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-seed.XXXXXX")
REDIS_PID='' MEASURE_PID=''
cleanup() {
	# timeout(1) passes the signal on to the run it watches.
	[ -z "$MEASURE_PID" ] || kill "$MEASURE_PID" 2>/dev/null || true
	if [ -n "$REDIS_PID" ]; then
		kill "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
START=$SECONDS

die() { echo "seed.sh: $*" >&2; exit 1; }

# ---- measuring ----------------------------------------------------------------

# Sampling runs beside the benchmark on the same two cores, so it forks
# nothing: bash builtins only, and `read -t` on a silent pipe for a sleep.
exec {SLEEP_FD}<> <(:)

# sample_pss PID...: PSS_KB = the summed proportional set size of the pids
# and all their descendants, so pages shared between processes (ringmaster's
# rings) count once. Processes that are gone by now count nothing.
PSS_KB=0
sample_pss() {
	local queue=("$@") p k v rest kids
	PSS_KB=0
	while [ ${#queue[@]} -gt 0 ]; do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		kids=()
		{ read -r -a kids <"/proc/$p/task/$p/children"; } 2>/dev/null || true
		queue+=("${kids[@]}")
		{ while read -r k v rest; do
			[ "$k" = Pss: ] && PSS_KB=$((PSS_KB + v))
		done <"/proc/$p/smaps_rollup"; } 2>/dev/null || true
	done
}

# children PID: KIDS = its child pids.
children() {
	KIDS=()
	{ read -r -a KIDS <"/proc/$1/task/$1/children"; } 2>/dev/null || true
}

# measure DIR SAMPLE "EXTRA_PIDS" CMD...: run CMD under GNU time, killed
# after RUN_TIMEOUT seconds (status 124). DIR/cpu gets the user + system
# seconds of CMD and its children. Unless SAMPLE is "no", DIR/peak_mb gets
# the highest sum of PSS over CMD's process tree and EXTRA_PIDS, sampled
# every SAMPLE seconds (0: back to back, which costs a core; for runs too
# short for anything slower to see their peak). Returns CMD's status.
measure() {
	local dir=$1 sample=$2 extra=$3 pid kids peak=0 rc=0
	shift 3
	timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%U %S' -o "$dir/time" "$@" &
	pid=$!
	MEASURE_PID=$pid
	while [ "$sample" != no ] && kill -0 "$pid" 2>/dev/null; do
		# timeout, then time, then CMD.
		children "$pid"
		kids=()
		[ ${#KIDS[@]} -gt 0 ] && children "${KIDS[0]}" && kids=("${KIDS[@]}")
		# shellcheck disable=SC2086 # a list of pids
		sample_pss "${kids[@]}" $extra
		[ "$PSS_KB" -gt "$peak" ] && peak=$PSS_KB
		[ "$sample" = 0 ] || read -r -t "$sample" -u "$SLEEP_FD" _ || true
	done
	wait "$pid" || rc=$?
	MEASURE_PID=
	[ $rc -ne 124 ] || echo "seed.sh: killed after $RUN_TIMEOUT s: $*" >&2
	tail -n 1 "$dir/time" | awk '{ printf "%.2f\n", $1 + $2 }' >"$dir/cpu"
	awk -v k="$peak" 'BEGIN { printf "%.0f\n", k / 1024 }' >"$dir/peak_mb"
	return $rc
}

# CPU seconds redis-server has used so far (all its threads).
redis_cpu() {
	sed 's/^.*) //' "/proc/$REDIS_PID/stat" |
		awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($12 + $13) / hz }'
}

# kv FILE KEY: the value of KEY=... or "KEY":... in FILE.
kv() { grep -o "\"\?$2\"\?[=:][^ ,}]*" "$1" | head -n 1 | sed 's/^[^=:]*[=:]//'; }

# ---- Redis --------------------------------------------------------------------

# Start redis-server on a free loopback port: REDIS_PID and REDIS_PORT.
start_redis() {
	local port tries
	for tries in $(seq 20); do
		port=$((20000 + RANDOM % 40000))
		# Something answers there already: not ours to use.
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
		redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
			--dir "$T" --logfile "$T/redis.log" --daemonize no &
		REDIS_PID=$!
		for _ in $(seq 50); do
			kill -0 "$REDIS_PID" 2>/dev/null || break
			if redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' |
				grep -qx "process_id:$REDIS_PID"; then
				REDIS_PORT=$port
				return 0
			fi
			sleep 0.1
		done
		kill "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
		REDIS_PID=
	done
	cat "$T/redis.log" >&2 2>/dev/null || true
	die "could not start redis-server on a loopback port (tried $tries)"
}

# ---- the two designs ----------------------------------------------------------

# ringmaster on FILE with P partitions, in $T/TAG: TAG/rate, cpu, events,
# seconds, TAG/state (dump-state), and with SAMPLE (see measure; default no)
# TAG/peak_mb.
rm_run() {
	local p=$1 file=$2 tag=$3 sample=${4:-no} d=$T/$3 args
	rm -rf "$d"
	mkdir -p "$d"
	args=(-c etc/ringmaster.ini -o ringmaster.partitions="$p" -o ringmaster.log_level=warn
		-o ringmaster.data_dir="$d/data" -o ringmaster.run_dir="$d/run"
		-o output.type=file -o output.dir="$d/out" -o output.dead_letter="$d/dead.tsv"
		-o source.type=file -o source.path="$file"
		-o table.rules.path="$T/rules.tsv" -o table.accounts.path="$T/accounts.tsv")
	measure "$d" "$sample" "" "$RINGMASTER" "${args[@]}" --summary "$d/summary.json" \
		</dev/null 2>"$d/log" || { cat "$d/log" >&2; die "ringmaster failed ($tag)"; }
	[ "$(kv "$d/summary.json" ok)" = true ] || die "ringmaster reports a failure ($tag): $(cat "$d/summary.json")"
	kv "$d/summary.json" processed >"$d/events"
	kv "$d/summary.json" wall_seconds >"$d/seconds"
	kv "$d/summary.json" events_per_second >"$d/rate"
	echo 0 >"$d/redis_cpu"
	[ "$(cat "$d/events")" = "$(wc -l <"$file")" ] || die "ringmaster processed $(cat "$d/events") of $(wc -l <"$file") events ($tag)"
	echo yes >"$d/complete"
	"$RINGCTL" "${args[@]}" dump-state >"$d/state" || die "ringctl dump-state failed ($tag)"
}

# The naive design on FILE with N threads (CACHED yes|no), stopped after
# SECONDS (0: the whole file), in $T/TAG, with the same files as rm_run.
naive_run() {
	local n=$1 cached=$2 file=$3 secs=$4 tag=$5 d=$T/$5 cpu0 cpu1 proc_cpu opt=()
	rm -rf "$d"
	mkdir -p "$d"
	[ "$cached" = yes ] && opt=(-c)
	"$NAIVE" load -p "$REDIS_PORT" rules="$T/rules.tsv" accounts="$T/accounts.tsv" >/dev/null ||
		die "loading the tables into Redis failed ($tag)"
	cpu0=$(redis_cpu)
	measure "$d" 0.1 "$REDIS_PID" "$NAIVE" run -p "$REDIS_PORT" -t "$n" "${opt[@]}" -d "$secs" \
		-o "$d/out.tsv" "$file" >"$d/result" 2>"$d/log" ||
		{ cat "$d/log" >&2; die "the naive design failed ($tag)"; }
	cpu1=$(redis_cpu)
	awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f\n", b - a }' >"$d/redis_cpu"
	proc_cpu=$(cat "$d/cpu")
	awk -v a="$proc_cpu" -v r="$(cat "$d/redis_cpu")" 'BEGIN { printf "%.2f\n", a + r }' >"$d/cpu"
	kv "$d/result" events >"$d/events"
	kv "$d/result" seconds >"$d/seconds"
	kv "$d/result" events_per_second >"$d/rate"
	kv "$d/result" complete >"$d/complete"
	"$NAIVE" dump -p "$REDIS_PORT" >"$d/state" || die "reading the state back from Redis failed ($tag)"
}

# ---- the run ------------------------------------------------------------------

CPU_MODEL=$(grep -m 1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
MACHINE="$(nproc) cores ($CPU_MODEL), ${MEM_GB} GB RAM, Linux $(uname -r), $(redis-server --version | grep -o 'v=[^ ]*' | sed 's/v=/Redis /'), $(date -u +%Y-%m-%d)"
echo "seed benchmark: $EVENTS ledger events over $KEYS accounts (Zipf $SKEW); checks on $CHECK_EVENTS"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine: $MACHINE; load average before the run: $LOAD"
echo

"$RINGCTL" gen events --events "$EVENTS" --keys "$KEYS" --skew "$SKEW" >"$T/events.tsv"
"$RINGCTL" gen accounts --keys "$KEYS" >"$T/accounts.tsv"
"$RINGCTL" gen rules >"$T/rules.tsv"
head -n "$CHECK_EVENTS" "$T/events.tsv" >"$T/check.tsv"
start_redis
echo "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT (no persistence)"

echo "checking final balances on $CHECK_EVENTS events against ringmaster at 1 partition ..."
rm_run 1 "$T/check.tsv" expected
cp "$T/expected/state" "$T/expected.state"
[ -s "$T/expected.state" ] || die "ringmaster at 1 partition left no state at all"
bad=0
check() { # TAG LABEL
	local d=$T/$1
	if [ "$(cat "$d/complete")" != yes ]; then
		echo "  FAIL $2: did not finish the file" >&2
		bad=1
	elif ! cmp -s "$T/expected.state" "$d/state"; then
		echo "  FAIL $2: final balances differ from the ledger's:" >&2
		diff "$T/expected.state" "$d/state" | head -n 10 >&2 || true
		bad=1
	else
		echo "  ok   $2 ($(wc -l <"$d/state") accounts)"
	fi
}
for p in $PARTS; do
	rm_run "$p" "$T/check.tsv" "check-rm-$p"
	check "check-rm-$p" "ringmaster partitions=$p"
done
for cached in no yes; do
	for n in $THREADS; do
		naive_run "$n" "$cached" "$T/check.tsv" 0 "check-naive-$cached-$n"
		check "check-naive-$cached-$n" "naive$([ "$cached" = yes ] && echo +cache) threads=$n"
	done
done
[ "$bad" = 0 ] || die "a configuration does not reproduce the ledger's balances: no timing, no ratio"
echo

echo "timing ..."
mkdir -p "$OUT"
CSV=$T/seed.csv
echo "design,parameter,value,events,seconds,events_per_second,cpu_seconds,redis_cpu_seconds,peak_rss_mb,complete" >"$CSV"
row() { # DESIGN PARAMETER VALUE TAG
	local d=$T/$4
	echo "$1,$2,$3,$(cat "$d/events"),$(cat "$d/seconds"),$(cat "$d/rate"),$(cat "$d/cpu"),$(cat "$d/redis_cpu"),$(cat "$d/peak_mb"),$(cat "$d/complete")" >>"$CSV"
	printf '  %-13s %-14s %12.0f events/s\n' "$1" "$2=$3" "$(cat "$d/rate")"
}
# median TAG: the number of TAG's median run (by events/s) of REPEATS.
median() {
	local i
	for i in $(seq "$REPEATS"); do echo "$(cat "$T/$1-$i/rate") $i"; done |
		sort -n | awk '{ run[NR] = $2 } END { print run[int((NR + 1) / 2)] }'
}

# The runs are interleaved: each round runs every configuration of every
# design once, so what a neighbour does to the machine falls on both
# designs alike, and a configuration's runs are minutes apart.
read -r -a parts <<<"$PARTS"
read -r -a threads <<<"$THREADS"
rounds=$((${#parts[@]} > ${#threads[@]} ? ${#parts[@]} : ${#threads[@]}))
for i in $(seq "$REPEATS"); do
	echo "  round $i of $REPEATS"
	for k in $(seq 0 $((rounds - 1))); do
		[ "$k" -ge ${#parts[@]} ] || rm_run "${parts[k]}" "$T/events.tsv" "rm-${parts[k]}-$i"
		[ "$k" -ge ${#threads[@]} ] && continue
		for cached in no yes; do
			naive_run "${threads[k]}" "$cached" "$T/events.tsv" "$NAIVE_SECONDS" \
				"naive-$cached-${threads[k]}-$i"
		done
	done
done
# ringmaster's runs are timed without sampling (it would take a good part
# of a core from them); one more run per configuration, sampled back to
# back, gives the peak memory.
for p in $PARTS; do
	rm_run "$p" "$T/events.tsv" "rm-$p-memory" 0
	keep=rm-$p-$(median "rm-$p")
	cp "$T/rm-$p-memory/peak_mb" "$T/$keep/peak_mb"
	row ringmaster partitions "$p" "$keep"
done
for cached in no yes; do
	for n in $THREADS; do
		row "$([ "$cached" = yes ] && echo naive_cached || echo naive)" threads "$n" \
			"naive-$cached-$n-$(median "naive-$cached-$n")"
	done
done
echo

# The table, the ratios, and the same as markdown for the README.
REPORT=$(awk -F, -v target="$TARGET" -v md="$T/seed.md" '
NR == 1 { next }
{
	name = $1 == "ringmaster" ? "ringmaster" : $1 == "naive" ? "naive" : "naive + cache"
	cfg = $2 "=" $3
	us = $4 > 0 ? 1e6 * $7 / $4 : 0
	rows[++n] = sprintf("%-15s %-14s %10d %8.2f %12.0f %8.2f %9.1f %9d", name, cfg, $4, $5, $6, $7, us, $9)
	mrows[n] = sprintf("| %s | %s | %d | %.2f | %.0f | %.2f | %.1f | %d |", name, cfg, $4, $5, $6, $7, us, $9)
	if ($6 > best[$1]) { best[$1] = $6; bestcfg[$1] = cfg }
}
END {
	hdr = sprintf("%-15s %-14s %10s %8s %12s %8s %9s %9s", "design", "config", "events", "seconds", "events/s", "CPU s", "CPU us/ev", "peak MB")
	print hdr
	for (i = 1; i <= n; i++) print rows[i]
	r = best["naive"] > 0 ? best["ringmaster"] / best["naive"] : 0
	rc = best["naive_cached"] > 0 ? best["ringmaster"] / best["naive_cached"] : 0
	l1 = sprintf("ringmaster best %.0f events/s (%s); naive best %.0f events/s (%s): %.1fx (target %dx: %s)",
		best["ringmaster"], bestcfg["ringmaster"], best["naive"], bestcfg["naive"], r, target,
		r >= target ? "met" : "NOT met")
	l2 = sprintf("naive + cache best %.0f events/s (%s): ringmaster best is %.1fx that",
		best["naive_cached"], bestcfg["naive_cached"], rc)
	print ""
	print l1
	print l2
	print "| design | config | events | seconds | events/s | CPU s | CPU µs/event | peak MB |" >md
	print "|---|---|--:|--:|--:|--:|--:|--:|" >md
	for (i = 1; i <= n; i++) print mrows[i] >md
	print "" >md
	print l1 >md
	print "" >md
	print l2 >md
	printf "RATIO %.1f\n", r
}' "$CSV")
RATIO=$(sed -n 's/^RATIO //p' <<<"$REPORT")
sed '/^RATIO /d' <<<"$REPORT"
NOTES="CPU s: user + system seconds of the whole run (naive designs: the process
plus redis-server); CPU us/event is that over the events done. peak MB: the
highest sum of PSS over the design's processes (naive designs: redis-server
included, sampled every 0.1 s; ringmaster: sampled back to back in one more
run, as its runs are short). Each row is the median of $REPEATS runs.
ringmaster's seconds include its start (loading the tables into LMDB,
forking the workers); naive runs stop after ${NAIVE_SECONDS} s and report the
rate so far."
echo
echo "$NOTES"

# The figure: events/s against threads (naive) or partitions (ringmaster).
for design in ringmaster naive naive_cached; do
	awk -F, -v d="$design" '$1 == d { print $3, $6 }' "$CSV" >"$T/$design.dat"
done
# shellcheck disable=SC2086 # lists of numbers
XTICS=$(printf '%s\n' $PARTS $THREADS | sort -n -u | paste -sd, -)
gnuplot <<GP || die "gnuplot failed"
set terminal pngcairo size 960,600 noenhanced font ",11"
set output "$T/seed.png"
set title "Ledger, $EVENTS events over $KEYS accounts (Zipf $SKEW) on $(nproc) cores: ringmaster best = ${RATIO}x naive best"
set logscale xy
set autoscale xfix
set offsets graph 0.03, graph 0.03, 0, 0
set xlabel "threads (naive designs)  /  partitions (ringmaster)"
set ylabel "events per second"
set xtics ($XTICS)
set format y "%.0s%c"
set grid xtics ytics mytics
set key bottom right box opaque
set yrange [1000:*]
plot "$T/ringmaster.dat" using 1:2 with linespoints lw 2 pt 7 title "ringmaster: LMDB on local disk, one worker per partition", \
     "$T/naive_cached.dat" using 1:2 with linespoints lw 2 pt 5 title "naive, tables cached in memory: GET + SET state in Redis", \
     "$T/naive.dat" using 1:2 with linespoints lw 2 pt 9 title "naive: GET rule, account, state + SET state in Redis"
GP
cp "$CSV" "$T/seed.png" "$OUT/"
{
	echo "![ringmaster against the naive design](seed.png)"
	echo
	cat "$T/seed.md"
	echo
	echo "$NOTES"
	echo
	echo "Command: \`make bench-seed\` (naive runs stopped after $NAIVE_SECONDS s, median of $REPEATS runs)."
	echo "Machine: $MACHINE; load average before the run: $LOAD, after: $(cut -d' ' -f1-3 /proc/loadavg)."
} >"$OUT/seed.md"
echo
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrote $OUT/seed.csv, $OUT/seed.png and $OUT/seed.md in $((SECONDS - START)) s"
