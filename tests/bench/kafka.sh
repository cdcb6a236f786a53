#!/usr/bin/env bash
# kafka.sh - `make bench-kafka` (issue 20): ringmaster's Kafka source against
# a plain librdkafka consumer (tests/bench/kafka_consume.c), on the same
# topic of librdkafka's mock cluster (tests/integration/kafka_mock.c: BROKERS
# brokers, one topic of PARTS partitions holding N generated ledger events,
# murmur2-partitioned).
#
# Each of ROUNDS rounds times, each with a fresh consumer group:
#   * the plain consumer, from its start to its last record (it reads the
#     partitions' high watermarks first);
#   * ringmaster with a fresh data_dir, from its start until `ringctl
#     status` says its workers have processed all N events (polled every
#     20 ms); then it is stopped (not timed).
# Both figures include connecting and the group join; the table also shows
# the time to the plain consumer's first record and to ringmaster's last
# "reading from offset" (joined, workers forked, fences written to the
# changelog: the rest is processing). Once, before the rounds, ringmaster
# runs the same events from the file (no Kafka), and every Kafka run's
# `ringctl dump-state` must equal that run's.
#
# Prints each round, the medians and the ratio of ringmaster's throughput
# to the plain consumer's (plain seconds / ringmaster seconds; the goal is
# 0.8 or more). Figures, not a pass/fail timing test: it fails only when a
# run fails or a state differs.
#   N (500000), KEYS (10000), PARTS (4), BROKERS (3), ROUNDS (3, at most 7:
#   each ringmaster round needs a changelog topic of its own, created by the
#   mock), RUN_TIMEOUT (180 s per run), KEEP (1: keep the scratch directory,
#   with every run's log), OPTS (more ringmaster options for the Kafka runs,
#   e.g. "-o worker.batch_max=16384 -o kafka.debug=eos")
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${B:-build}
N=${N:-500000} KEYS=${KEYS:-10000} PARTS=${PARTS:-4} BROKERS=${BROKERS:-3}
ROUNDS=${ROUNDS:-3} RUN_TIMEOUT=${RUN_TIMEOUT:-180} OPTS=${OPTS:-}
RINGMASTER=$B/bin/ringmaster RINGCTL=$B/bin/ringctl
MOCK=$B/tests/kafka_mock CONSUME=$B/tests/bench/kafka_consume TOPIC=events

die() { echo "kafka.sh: $*" >&2; exit 1; }
for f in "$RINGMASTER" "$RINGCTL" "$MOCK" "$CONSUME"; do
	[ -x "$f" ] || die "$f is missing; run it through make bench-kafka"
done
[[ $ROUNDS =~ ^[1-7]$ ]] || die "ROUNDS must be 1..7, got '$ROUNDS'"

umask 022 # ringmaster refuses a config that others can write
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-kbench.XXXXXX")
NAME=kb${T##*.} # the instance name: its workers are "ringmaster: worker N (NAME)"
MOCK_PID='' RM_PID='' KEEP=${KEEP:-}
cleanup() {
	set +e
	[ -z "$RM_PID" ] || kill -KILL "$RM_PID" 2>/dev/null
	pkill -KILL -f "^ringmaster: worker [0-9]+ \($NAME\)" 2>/dev/null
	if [ -n "$MOCK_PID" ]; then
		kill -TERM "$MOCK_PID" 2>/dev/null
		wait "$MOCK_PID" 2>/dev/null
	fi
	[ -z "$KEEP" ] && rm -rf "$T" || echo "kafka.sh: kept $T for a look" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() { KEEP=1; die "$@"; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# log_epoch LINE: the epoch seconds of a ringmaster log line's timestamp
log_epoch() { date -d "${1%% *}" +%s.%N; }

"$RINGCTL" gen events --events "$N" --keys "$KEYS" --seed 20 >"$T/events.tsv"
cat >"$T/bench.ini" <<INI
[ringmaster]
name = $NAME
partitions = $PARTS
log_level = info

[source]
type = file
path = $T/events.tsv

[output]
type = file

[store]
sync = periodic

[table.rules]
path = $PWD/etc/rules.tsv

[table.accounts]
path = $PWD/etc/accounts.tsv
INI
# dirs NAME: the options that give run NAME its own directories in $T
dirs() {
	printf '%s\n' -o "ringmaster.data_dir=$T/$1/data" -o "ringmaster.run_dir=$T/$1/run" \
		-o "output.dir=$T/$1/out" -o "output.dead_letter=$T/$1/dead.tsv"
}

# The file run: the reference state, and a figure without Kafka.
mapfile -t o < <(dirs file)
t0=$(now)
"$RINGMASTER" -c "$T/bench.ini" "${o[@]}" 2>"$T/file.log" </dev/null || { tail -20 "$T/file.log"; fail "the file run failed"; }
file_secs=$(elapsed "$t0" "$(now)")
"$RINGCTL" -c "$T/bench.ini" "${o[@]}" dump-state >"$T/file.state"

# The cluster, with a changelog topic for each ringmaster round's group.
topics=(-t $TOPIC)
for r in $(seq "$ROUNDS"); do topics+=(-t "rm$r-$NAME-changelog"); done
"$MOCK" -p "$PARTS" -n "$BROKERS" "${topics[@]}" -e "$T/events.tsv" >"$T/mock.out" 2>"$T/mock.err" &
MOCK_PID=$!
until grep -q '^ready' "$T/mock.out"; do
	kill -0 $MOCK_PID 2>/dev/null || { cat "$T/mock.err"; fail "the mock cluster did not start"; }
	sleep 0.1
done
grep -qx "produced=$N" "$T/mock.out" || fail "the mock cluster holds $(cat "$T/mock.out")"
BOOTSTRAP=$(sed -n 's/^bootstrap=//p' "$T/mock.out")

# mock_alive: fails, saying so, if the mock cluster has ended
mock_alive() {
	local rc=0
	kill -0 "$MOCK_PID" 2>/dev/null && return 0
	wait "$MOCK_PID" || rc=$?
	MOCK_PID=''
	cat "$T/mock.err" >&2
	fail "the mock cluster ended (exit status $rc)"
}

# run_plain ROUND: one run of the plain consumer; sets SECS and JOIN (to its
# first record)
run_plain() {
	"$CONSUME" -b "$BOOTSTRAP" -t $TOPIC -g "plain$1" >"$T/plain$1.out" 2>"$T/plain$1.err" ||
		{ cat "$T/plain$1.err"; mock_alive; fail "the plain consumer failed"; }
	grep -qx "messages=$N" "$T/plain$1.out" || fail "the plain consumer read $(cat "$T/plain$1.out")"
	SECS=$(sed -n 's/^seconds=//p' "$T/plain$1.out")
	JOIN=$(sed -n 's/^first_seconds=//p' "$T/plain$1.out")
}

# run_ringmaster ROUND: one Kafka run of ringmaster, checked against the file
# run; sets SECS, JOIN (to the last partition's "reading from offset") and
# RESTARTS (workers restarted during the run)
run_ringmaster() {
	local r=$1 t0 t1 p log=$T/rm$1.log
	mapfile -t o < <(dirs "rm$r")
	o+=(-o source.type=kafka -o source.brokers="$BOOTSTRAP" -o source.topic=$TOPIC
		-o source.group="rm$r" $OPTS)
	t0=$(now)
	"$RINGMASTER" -c "$T/bench.ini" "${o[@]}" 2>"$log" </dev/null &
	RM_PID=$!
	until p=$("$RINGCTL" -c "$T/bench.ini" "${o[@]}" status --json 2>/dev/null |
		grep -o '"processed":[0-9]*') && [ "${p#*:}" = "$N" ]; do
		kill -0 $RM_PID 2>/dev/null || { tail -20 "$log" >&2; fail "ringmaster (round $r) exited"; }
		mock_alive
		[ "$(elapsed "$t0" "$(now)" | cut -d. -f1)" -lt "$RUN_TIMEOUT" ] ||
			{ tail -20 "$log" >&2; fail "ringmaster (round $r) processed ${p#*:} of $N in ${RUN_TIMEOUT}s"; }
		sleep 0.02
	done
	t1=$(now)
	kill -TERM $RM_PID
	wait $RM_PID || { tail -20 "$log" >&2; fail "ringmaster (round $r) did not stop cleanly"; }
	RM_PID=''
	"$RINGCTL" -c "$T/bench.ini" "${o[@]}" dump-state | cmp -s - "$T/file.state" ||
		fail "round $r: the Kafka run's state differs from the file run's"
	SECS=$(elapsed "$t0" "$t1") JOIN=-
	p=$(grep 'kafka: partition [0-9]*: reading from offset' "$log" | sed -n "${PARTS}p")
	[ -z "$p" ] || JOIN=$(elapsed "$t0" "$(log_epoch "$p")")
	RESTARTS=$(grep -c 'restarting it in' "$log" || true)
}

printf '%s\n' "kafka benchmark: $N ledger events ($KEYS accounts), a topic of $PARTS partitions" \
	"on librdkafka's mock cluster of $BROKERS brokers; each run a fresh group (join included)" \
	"machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d), load average $(cut -d' ' -f1-3 /proc/loadavg)" \
	"" "ringmaster on the events file, no Kafka: $file_secs s" ""
printf '%-7s %10s %12s %14s %12s %9s\n' round "plain s" "(1st record)" "ringmaster s" "(reading)" \
	restarts
: >"$T/plain.times" && : >"$T/rm.times"
for r in $(seq "$ROUNDS"); do
	run_plain "$r"
	echo "$SECS" >>"$T/plain.times"
	line=$(printf '%-7s %10s %12s' "$r" "$SECS" "$JOIN")
	run_ringmaster "$r"
	echo "$SECS $RESTARTS" >>"$T/rm.times"
	printf '%s %14s %12s %9s\n' "$line" "$SECS" "$JOIN" "$RESTARTS"
done
# A worker restart (a watchdog kill) costs a minute or so; the rounds
# without one are summed up too, so that both figures are in sight.
clean=$(awk '$2 == 0 { print $1 }' "$T/rm.times" | median)
awk -v n="$N" -v rounds="$ROUNDS" -v p="$(median <"$T/plain.times")" \
	-v r="$(cut -d' ' -f1 "$T/rm.times" | median)" -v c="$clean" \
	-v nc="$(awk '$2 == 0' "$T/rm.times" | wc -l)" 'BEGIN {
	printf "\nmedian of %s rounds:\n", rounds
	printf "  plain consumer  %8.3f s %10.0f events/s\n", p, n / p
	printf "  ringmaster      %8.3f s %10.0f events/s\n", r, n / r
	printf "  ratio ringmaster / plain (throughput): %.2f (goal 0.8)\n", p / r
	if (nc > 0 && nc < rounds)
		printf "  ringmaster, the %d rounds without a worker restart: %.3f s, %.0f events/s, ratio %.2f\n",
		       nc, c, n / c, p / c }'
echo "state: equal to the file run (every round)"
# What ringmaster complained about, if anything: where its time went.
if grep -h -E '^[^ ]+ (warn|error) ' "$T"/rm*.log >"$T/complaints"; then
	n=$(wc -l <"$T/complaints")
	printf '\n%s\n' "ringmaster's warnings and errors$([ "$n" -le 10 ] || echo " (the first 10 of $n)"):"
	head -10 "$T/complaints"
fi
