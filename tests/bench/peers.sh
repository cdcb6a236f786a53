#!/usr/bin/env bash
# peers.sh - `make bench-peers` (issue 19): ringmaster against the limit of
# this machine and against what a user would build instead, on the same
# ledger events, in one run.
#
#   limit       tests/bench/limit.c: the ledger handler in one thread over
#               hash maps, nothing durable (and without its prefetching)
#   ringmaster  at each of PARTS partitions, etc/ringmaster.ini's defaults
#               (sync = periodic, every second)
#   sqlite      peers/peer_sqlite.c: the ledger handler over SQLite, WAL,
#               synchronous=NORMAL, a transaction per 4096 events
#   redis       peers/peer_redis.c: the ledger as a Redis Function, FCALL
#               pipelined, appendfsync everysec, on each of THREADS
#               connections
#   postgres    peers/peer_pg.c: the ledger in PL/pgSQL, synchronous_commit
#               off, a call a batch (on each of PG_THREADS connections) and
#               a pipelined call an event (one connection)
#
# Each durable one loses at most about a second on an OS crash, as
# ringmaster's default. redis-server and a PostgreSQL cluster (Debian's
# postgresql, initdb and pg_ctl run as the postgres user through runuser:
# it refuses root) are started here on free loopback ports, in a scratch
# directory, and stopped at the end.
#
# Before any timing, every configuration runs the same CHECK_EVENTS events
# and must leave the final balances of ringmaster at one partition
# (`ringctl dump-state`) and the same output lines (sorted by seq: the
# peers with several connections interleave them); otherwise nothing is
# timed. Then one EVENTS-event file (KEYS accounts, Zipf SKEW) goes through
# each configuration, REPEATS times in interleaved rounds, the median run
# (by events/s) kept. The peers stop starting new work after PEER_SECONDS
# and report the rate so far; the limit and ringmaster run the whole file.
# CPU is user + system of the whole design: ringmaster's supervisor and
# workers, a peer's client and its server (redis-server, or the postmaster
# and all its processes) over the timed part. Written: OUT/peers.csv,
# OUT/peers.png (gnuplot), OUT/peers.md. Figures, not a pass/fail timing
# test: it fails only if a check fails.
#
#   EVENTS (1000000) KEYS (100000) SKEW (0.99) CHECK_EVENTS (20000)
#   PARTS ("1 2 4") THREADS ("1 2 4") PG_THREADS ("1 2") PEER_SECONDS (10)
#   REPEATS (3) OUT (tests/bench/results) RUN_TIMEOUT (300)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
EVENTS=${EVENTS:-1000000} KEYS=${KEYS:-100000} SKEW=${SKEW:-0.99}
CHECK_EVENTS=${CHECK_EVENTS:-20000} PEER_SECONDS=${PEER_SECONDS:-10} REPEATS=${REPEATS:-3}
PARTS=${PARTS:-1 2 4} THREADS=${THREADS:-1 2 4} PG_THREADS=${PG_THREADS:-1 2}
OUT=${OUT:-tests/bench/results} RUN_TIMEOUT=${RUN_TIMEOUT:-300}
RINGMASTER=$B/bin/ringmaster RINGCTL=$B/bin/ringctl LIMIT=$B/tests/bench/limit
PEERS=$B/tests/bench/peers
SQLITE=$PEERS/peer_sqlite REDIS=$PEERS/peer_redis PG=$PEERS/peer_pg
REDIS_FN=tests/bench/peers/ledger_redis.lua PG_SQL=tests/bench/peers/ledger_pg.sql
PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)

die() { echo "peers.sh: $*" >&2; exit 1; }
for tool in "$RINGMASTER" "$RINGCTL" "$LIMIT" "$SQLITE" "$REDIS" "$PG" redis-server redis-cli \
	gnuplot /usr/bin/time timeout runuser "$PGBIN/initdb" "$PGBIN/pg_ctl"; do
	command -v "$tool" >/dev/null || die "$tool is missing; run it through make bench-peers"
done
id postgres >/dev/null 2>&1 || die "no postgres user: install Debian's postgresql (make peers-deps)"

T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-peers.XXXXXX")
REDIS_PID='' PG_UP=''
cleanup() {
	if [ -n "$REDIS_PID" ]; then
		kill "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
	fi
	[ -z "$PG_UP" ] || runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg/data" -m immediate \
		stop >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
START=$SECONDS

# A loopback port nothing answers on.
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
	done
}

start_redis() {
	mkdir -p "$T/redis"
	REDIS_PORT=$(free_port)
	redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly yes \
		--appendfsync everysec --dir "$T/redis" --logfile "$T/redis.log" --daemonize no &
	REDIS_PID=$!
	for _ in $(seq 100); do
		redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
		kill -0 "$REDIS_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/redis.log" >&2 || true
	die "redis-server did not start on 127.0.0.1:$REDIS_PORT"
}

# The cluster belongs to postgres, in a directory it can reach: $T is
# opened to others for traversal only.
start_pg() {
	chmod 711 "$T"
	mkdir -p "$T/pg"
	chown postgres "$T/pg"
	PG_PORT=$(free_port)
	runuser -u postgres -- "$PGBIN/initdb" -D "$T/pg/data" --auth=trust -U postgres \
		-E UTF8 --locale=C >"$T/pg/initdb.log" 2>&1 ||
		{ cat "$T/pg/initdb.log" >&2; die "initdb failed"; }
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/log" -w -o \
		"-c listen_addresses=127.0.0.1 -p $PG_PORT -k $T/pg -c synchronous_commit=off" \
		start >/dev/null || { cat "$T/pg/log" >&2; die "the PostgreSQL cluster did not start"; }
	PG_UP=yes
	PG_CONN="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres"
}

# ---- one run of each kind: $T/TAG/{result,state,out} -----------------------------

# The result line of a program (limit, peers) as the run's figures.
from_result() { # DIR
	local d=$1 line
	line=$(grep -E '^[a-z_0-9]+: events=' "$d/result" | tail -n 1)
	for k in events seconds events_per_second cpu_seconds complete; do
		sed -n "s/.* $k=\([^ ]*\).*/\1/p" <<<" ${line#*:}" >"$d/$k"
	done
}

# run_prog TAG CMD...: a limit or peer run; with CHECK set, OUTPUT and STATE.
run_prog() {
	local tag=$1 d=$T/$1
	shift
	rm -rf "$d"
	mkdir -p "$d"
	timeout -k 10 "$RUN_TIMEOUT" "$@" >"$d/result" 2>"$d/log" ||
		{ cat "$d/log" >&2; die "$tag failed: $*"; }
	from_result "$d"
}

# rm_run P FILE TAG: ringmaster, its figures from --summary and GNU time.
rm_run() {
	local p=$1 file=$2 tag=$3 d=$T/$3 args
	rm -rf "$d"
	mkdir -p "$d"
	args=(-c etc/ringmaster.ini -o ringmaster.partitions="$p" -o ringmaster.log_level=warn
		-o ringmaster.data_dir="$d/data" -o ringmaster.run_dir="$d/run"
		-o output.type=file -o output.dir="$d/outdir" -o output.dead_letter="$d/dead.tsv"
		-o source.type=file -o source.path="$file"
		-o table.rules.path="$T/rules.tsv" -o table.accounts.path="$T/accounts.tsv")
	timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -f '%U %S' -o "$d/time" "$RINGMASTER" "${args[@]}" \
		--summary "$d/summary.json" </dev/null 2>"$d/log" ||
		{ cat "$d/log" >&2; die "ringmaster failed ($tag)"; }
	grep -q '"ok":true' "$d/summary.json" || die "ringmaster reports a failure ($tag)"
	sum() { grep -o "\"$1\":[^,}]*" "$d/summary.json" | head -n 1 | cut -d: -f2; }
	sum processed >"$d/events"
	sum wall_seconds >"$d/seconds"
	sum events_per_second >"$d/events_per_second"
	tail -n 1 "$d/time" | awk '{ printf "%.2f\n", $1 + $2 }' >"$d/cpu_seconds"
	[ "$(cat "$d/events")" = "$(wc -l <"$file")" ] && echo yes >"$d/complete" || echo no >"$d/complete"
	if [ -n "${CHECK:-}" ]; then
		"$RINGCTL" "${args[@]}" dump-state >"$d/state" || die "ringctl dump-state failed ($tag)"
		cat "$d"/outdir/p*.tsv >"$d/out"
	fi
}

# The configurations: NAME CONFIG, and how to run one on FILE as TAG.
CONFIGS=()
for p in $PARTS; do CONFIGS+=("ringmaster partitions=$p"); done
CONFIGS+=("limit prefetch" "limit no_prefetch" "sqlite txn=4096")
for t in $THREADS; do CONFIGS+=("redis connections=$t"); done
for t in $PG_THREADS; do CONFIGS+=("postgres batch:connections=$t"); done
CONFIGS+=("postgres event:connections=1")

run_config() { # NAME CONFIG FILE TAG [SECONDS]
	local name=$1 cfg=$2 file=$3 tag=$4 secs=${5:-} v=${2#*=} dl=() io=()
	[ -z "$secs" ] || dl=(-d "$secs")
	[ -z "${CHECK:-}" ] || io=(-o "$T/$tag/out" -s "$T/$tag/state")
	local tables=(rules="$T/rules.tsv" accounts="$T/accounts.tsv")
	case $name in
	ringmaster) rm_run "$v" "$file" "$tag" ;;
	limit)
		local flags=()
		[ "$cfg" = no_prefetch ] && flags=(-P)
		run_prog "$tag" "$LIMIT" "${flags[@]}" "${io[@]}" "${tables[@]}" "$file" ;;
	sqlite) run_prog "$tag" "$SQLITE" "${dl[@]}" "${io[@]}" "$T/sqlite.db" "${tables[@]}" "$file" ;;
	redis) run_prog "$tag" "$REDIS" -p "$REDIS_PORT" -f "$REDIS_FN" -t "$v" "${dl[@]}" \
		"${io[@]}" "${tables[@]}" "$file" ;;
	postgres)
		local mode=${cfg%%:*}
		run_prog "$tag" "$PG" -c "$PG_CONN" -f "$PG_SQL" -m "$mode" -t "$v" "${dl[@]}" \
			"${io[@]}" "${tables[@]}" "$file" ;;
	esac
}
tag_of() { echo "$1" | tr ' =:' '___'; }

# ---- the run -----------------------------------------------------------------------

CPU_MODEL=$(grep -m 1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
VERSIONS="$(redis-server --version | grep -o 'v=[^ ]*' | sed 's/v=/Redis /'), PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'), SQLite $(dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null || echo '?')"
MACHINE="$(nproc) cores ($CPU_MODEL), ${MEM_GB} GB RAM, Linux $(uname -r), $VERSIONS, $(date -u +%Y-%m-%d)"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "peers benchmark: $EVENTS ledger events over $KEYS accounts (Zipf $SKEW); checks on $CHECK_EVENTS"
echo "machine: $MACHINE; load average before the run: $LOAD"

"$RINGCTL" gen events --events "$EVENTS" --keys "$KEYS" --skew "$SKEW" >"$T/events.tsv"
"$RINGCTL" gen accounts --keys "$KEYS" >"$T/accounts.tsv"
"$RINGCTL" gen rules >"$T/rules.tsv"
head -n "$CHECK_EVENTS" "$T/events.tsv" >"$T/check.tsv"
start_redis
start_pg
echo "redis-server on 127.0.0.1:$REDIS_PORT (appendfsync everysec); PostgreSQL on 127.0.0.1:$PG_PORT (synchronous_commit off)"
echo

echo "checking final balances and output on $CHECK_EVENTS events against ringmaster at 1 partition ..."
CHECK=yes
rm_run 1 "$T/check.tsv" expected
[ -s "$T/expected/state" ] || die "ringmaster at 1 partition left no state at all"
sort -n "$T/expected/out" >"$T/expected.out"
bad=0
for c in "${CONFIGS[@]}"; do
	tag=check-$(tag_of "$c")
	# shellcheck disable=SC2086 # NAME CONFIG
	run_config $c "$T/check.tsv" "$tag"
	d=$T/$tag
	sort -n "$d/out" >"$d/out.sorted"
	if [ "$(cat "$d/complete")" != yes ]; then
		echo "  FAIL $c: did not finish the file" >&2
		bad=1
	elif ! cmp -s "$T/expected/state" "$d/state"; then
		echo "  FAIL $c: final balances differ from ringmaster's:" >&2
		diff "$T/expected/state" "$d/state" | head -n 10 >&2 || true
		bad=1
	elif ! cmp -s "$T/expected.out" "$d/out.sorted"; then
		echo "  FAIL $c: output lines differ from ringmaster's:" >&2
		diff "$T/expected.out" "$d/out.sorted" | head -n 10 >&2 || true
		bad=1
	else
		echo "  ok   $c ($(wc -l <"$d/state") accounts, $(wc -l <"$d/out") lines)"
	fi
done
[ "$bad" = 0 ] || die "a configuration does not reproduce ringmaster's balances and output: no timing"
CHECK=
echo

echo "timing ($REPEATS interleaved rounds; peers stopped after $PEER_SECONDS s) ..."
for i in $(seq "$REPEATS"); do
	echo "  round $i of $REPEATS"
	for c in "${CONFIGS[@]}"; do
		name=${c%% *}
		secs=
		case $name in ringmaster | limit) ;; *) secs=$PEER_SECONDS ;; esac
		# shellcheck disable=SC2086 # NAME CONFIG
		run_config $c "$T/events.tsv" "$(tag_of "$c")-$i" "$secs"
	done
done
echo

mkdir -p "$OUT"
CSV=$T/peers.csv
echo "system,config,events,seconds,events_per_second,cpu_seconds,cpu_us_per_event,complete" >"$CSV"
for c in "${CONFIGS[@]}"; do
	tag=$(tag_of "$c")
	keep=$(for i in $(seq "$REPEATS"); do echo "$(cat "$T/$tag-$i/events_per_second") $i"; done |
		sort -n | awk '{ run[NR] = $2 } END { print run[int((NR + 1) / 2)] }')
	d=$T/$tag-$keep
	awk -v s="${c%% *}" -v cfg="${c#* }" -v e="$(cat "$d/events")" -v sec="$(cat "$d/seconds")" \
		-v r="$(cat "$d/events_per_second")" -v cpu="$(cat "$d/cpu_seconds")" \
		-v done="$(cat "$d/complete")" 'BEGIN {
		printf "%s,%s,%d,%.3f,%.0f,%.3f,%.3f,%s\n", s, cfg, e, sec, r, cpu, (e > 0 ? 1e6 * cpu / e : 0), done
	}' >>"$CSV"
done

REPORT=$(awk -F, -v md="$T/peers.md" '
NR == 1 { next }
{
	rows[++n] = sprintf("%-11s %-24s %9d %8.2f %11.0f %8.2f %10.2f", $1, $2, $3, $4, $5, $6, $7)
	mrows[n] = sprintf("| %s | %s | %d | %.2f | %.0f | %.2f | %.2f |", $1, $2, $3, $4, $5, $6, $7)
	if ($1 == "ringmaster" && $5 > rm) { rm = $5; rmcfg = $2; rmus = $7 }
	if ($1 == "limit" && $2 == "prefetch") lim = $7
	if ($1 == "limit" && $2 == "no_prefetch") limnp = $7
	if ($1 != "ringmaster" && $1 != "limit" && $5 > peer) { peer = $5; peercfg = $1 " " $2 }
}
END {
	print sprintf("%-11s %-24s %9s %8s %11s %8s %10s", "system", "config", "events", "seconds", "events/s", "CPU s", "CPU us/ev")
	for (i = 1; i <= n; i++) print rows[i]
	l1 = sprintf("ringmaster best %.0f events/s (%s); best peer %.0f events/s (%s): ringmaster is %.1fx the best peer.",
		rm, rmcfg, peer, peercfg, (peer > 0 ? rm / peer : 0))
	l2 = sprintf("ringmaster CPU per event there: %.2f us, %.1fx the limit (%.2f us; %.2f us without prefetching: %.1fx).",
		rmus, (lim > 0 ? rmus / lim : 0), lim, limnp, (limnp > 0 ? rmus / limnp : 0))
	print ""
	print l1
	print l2
	print "| system | config | events | seconds | events/s | CPU s | CPU µs/event |" >md
	print "|---|---|--:|--:|--:|--:|--:|" >md
	for (i = 1; i <= n; i++) print mrows[i] >md
	print "" >md
	print l1 >md
	print "" >md
	print l2 >md
	printf "RATIO %.1f\n", (peer > 0 ? rm / peer : 0)
}' "$CSV")
RATIO=$(sed -n 's/^RATIO //p' <<<"$REPORT")
sed '/^RATIO /d' <<<"$REPORT"
NOTES="events/s: events done over the run's wall clock (ringmaster: its summary,
start and table load included; the limit and the peers: the timed part, from
reading the file to the last commit, tables loaded before it). CPU s: user +
system seconds of the whole design over that time (ringmaster: supervisor and
workers, from GNU time; a peer: its client plus redis-server, or the
postmaster and all its processes; the limit: itself). Peers stop after
${PEER_SECONDS} s and report the rate so far. Each row is the median of
$REPEATS interleaved runs."
echo
echo "$NOTES"

# Two panels, events/s and CPU per event, log scales, one bar per row.
awk -F, 'NR > 1 {
	cfg = $2
	gsub(":", "\\n", cfg)
	sub("connections", "conn", cfg)
	sub("partitions", "parts", cfg)
	printf "%d \"%s\\n%s\" %s %s\n", NR - 2, $1, cfg, $5, $7
}' "$CSV" >"$T/peers.dat"
gnuplot <<GP || die "gnuplot failed"
set terminal pngcairo size 1300,900 noenhanced font ",10"
set output "$T/peers.png"
set multiplot layout 2,1 title "Ledger, $EVENTS events over $KEYS accounts (Zipf $SKEW), $(nproc) cores: ringmaster best = ${RATIO}x the best peer"
set style fill solid 0.6 border -1
set boxwidth 0.7
set logscale y
set grid ytics mytics
set xtics rotate by 0 font ",8"
set xrange [-0.6:*]
set bmargin 5
set format y "%.0s%c"
set yrange [1000:*]
set ylabel "events per second"
plot "$T/peers.dat" using 1:3:xtic(2) with boxes notitle lc rgb "#4477aa", \
     "" using 1:3:(sprintf("%.0f", \$3)) with labels offset 0,0.7 font ",8" notitle
set format y "%g"
set yrange [0.1:300]
set ylabel "CPU microseconds per event (lower is better)"
plot "$T/peers.dat" using 1:4:xtic(2) with boxes notitle lc rgb "#cc6677", \
     "" using 1:4:(sprintf("%.2f", \$4)) with labels offset 0,0.7 font ",8" notitle
unset multiplot
GP
cp "$CSV" "$T/peers.png" "$OUT/"
{
	echo "![ringmaster against the limit and the peers](peers.png)"
	echo
	cat "$T/peers.md"
	echo
	echo "$NOTES"
	echo
	echo "Command: \`make bench-peers\` (EVENTS=$EVENTS, peers stopped after $PEER_SECONDS s, median of $REPEATS runs)."
	echo "Machine: $MACHINE; load average before the run: $LOAD, after: $(cut -d' ' -f1-3 /proc/loadavg)."
} >"$OUT/peers.md"
echo
echo "load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrote $OUT/peers.csv, $OUT/peers.png and $OUT/peers.md in $((SECONDS - START)) s"
