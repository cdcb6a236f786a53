#!/usr/bin/env bash
# soak.sh - `make soak`: chaos against a running ringmaster, for
# SOAK_MINUTES (default 5). Not part of `make test`.
#
# Rounds of: a file source of EVENTS (default 3,000,000) ledger events run
# while a driver, at random moments, SIGKILLs a worker, SIGKILLs the whole
# process group and starts it again, sends SIGHUP with a valid changed config
# (batch_max and log_level change, the tables are reloaded unchanged, so the
# expected result stays that of an uninterrupted run), sends SIGHUP with a
# broken config, SIGSTOPs a worker until the watchdog kills it, and asks
# `ringctl workers` and `ringctl metrics` all along. Each round ends by
# comparing state and every output file with an uninterrupted run, and
# counting lost and duplicated events by seq. Prints a table at the end.
set -u
cd "$(dirname "$0")/.."
B=${B:-build}
MINUTES=${SOAK_MINUTES:-5} EVENTS=${EVENTS:-3000000}
RM=$PWD/$B/bin/ringmaster CTL=$PWD/$B/bin/ringctl
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-soak.XXXXXX")
NAME=soak${T##*.}
declare -A faults=() recovered=()
lost_total=0 dup_total=0 processed_total=0 rounds=0 failed=0
cleanup() { pkill -KILL -f "^ringmaster: .*\\($NAME\\)" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

"$CTL" gen events --events "$EVENTS" --keys 20000 --seed 77 --skew 0.8 >"$T/events.tsv"
"$CTL" gen accounts --keys 20000 >"$T/accounts.tsv"
"$CTL" gen rules >"$T/rules.tsv"
config() { # FILE DIR BATCH LEVEL
	cat >"$1" <<INI
[ringmaster]
name = $NAME
partitions = 4
data_dir = $2/data
run_dir = $2/run
log_level = $4
stop_timeout = 30s
[worker]
batch_max = $3
ring_size = 1M
handler = $PWD/$B/test-handlers/faulty_ledger.so
watchdog = 2s
[source]
type = file
path = $T/events.tsv
[output]
dir = $2/out
dead_letter = $2/dead.tsv
[restart]
backoff_initial = 50ms
backoff_max = 1s
[handler]
sleep_us = 2
[table.rules]
path = $T/rules.tsv
[table.accounts]
path = $T/accounts.tsv
INI
}
config "$T/ref.ini" "$T/ref" 512 warn
echo "soak: reference run of $EVENTS events" >&2
"$RM" -c "$T/ref.ini" -o handler.sleep_us=0 2>"$T/ref.log" || { cat "$T/ref.log"; exit 1; }
"$CTL" -c "$T/ref.ini" dump-state >"$T/ref.state"
cut -f1 "$T"/ref/out/p*.tsv | sort -n >"$T/ref.seqs"

pid_of_worker() { pgrep -f "^ringmaster: worker $1 \\($NAME\\)" | head -1; }
supervisor() { pgrep -f "^ringmaster: supervisor \\($NAME\\)" | head -1; }
start() { setsid "$RM" -c "$R/run.ini" 2>>"$R/log" & }
fault() { faults[$1]=$((${faults[$1]:-0} + 1)); }

end=$((SECONDS + MINUTES * 60))
while [ $SECONDS -lt $end ]; do
	rounds=$((rounds + 1))
	R=$T/r$rounds; mkdir -p "$R"
	config "$R/run.ini" "$R" 512 info
	cp "$R/run.ini" "$R/good.ini"
	start
	sleep 1
	while :; do
		sup=$(supervisor)
		[ -n "$sup" ] || break
		"$CTL" -c "$R/run.ini" workers >/dev/null 2>&1 && "$CTL" -c "$R/run.ini" metrics >/dev/null 2>&1 \
			&& fault "ringctl queries"
		sleep "0.$((RANDOM % 9 + 1))"
		case $((RANDOM % 6)) in
		0) p=$(pid_of_worker $((RANDOM % 4))); [ -n "$p" ] && kill -KILL "$p" && fault "kill a worker" ;;
		1) kill -KILL -- -"$sup" 2>/dev/null; fault "kill the process group"
		   while [ -n "$(supervisor)" ] || pgrep -f "^ringmaster: worker .*\\($NAME\\)" >/dev/null; do sleep 0.05; done
		   start; sleep 0.5 ;;
		2) config "$R/run.ini" "$R" $((RANDOM % 2000 + 64)) debug; kill -HUP "$sup"; fault "reload, valid change"
		   sleep 0.3; cp "$R/good.ini" "$R/run.ini" ;;
		3) printf '[worker]\nbatch_max = none\n' >>"$R/run.ini"; kill -HUP "$sup"; fault "reload, broken config"
		   sleep 0.3; cp "$R/good.ini" "$R/run.ini" ;;
		4) p=$(pid_of_worker $((RANDOM % 4))); [ -n "$p" ] && kill -STOP "$p" && fault "SIGSTOP a worker (watchdog)"
		   sleep 3; [ -n "$p" ] && kill -CONT "$p" 2>/dev/null ;;
		5) ;;
		esac
	done
	# the last start may have been killed: finish the round
	[ -z "$(supervisor)" ] && "$RM" -c "$R/good.ini" 2>>"$R/finish.log"
	# a worker killed by the watchdog also ends "killed by signal 9"
	restarted=$(( $(grep -c 'killed by signal 9.*restarting it' "$R/log") - $(grep -c 'made no progress' "$R/log") ))
	recovered["kill a worker"]=$(( ${recovered["kill a worker"]:-0} + restarted ))
	# every start after the first resumed from the watermark
	recovered["kill the process group"]=$(( ${recovered["kill the process group"]:-0} + $(grep -c 'resuming the source' "$R/log") ))
	recovered["reload, valid change"]=$(( ${recovered["reload, valid change"]:-0} + $(grep -c 'reload done' "$R/log") ))
	recovered["reload, broken config"]=$(( ${recovered["reload, broken config"]:-0} + $(grep -c 'reload failed: the running' "$R/log") ))
	recovered["SIGSTOP a worker (watchdog)"]=$(( ${recovered["SIGSTOP a worker (watchdog)"]:-0} + $(grep -c 'made no progress' "$R/log") ))
	"$CTL" -c "$R/good.ini" dump-state >"$R/state"
	cut -f1 "$R"/out/p*.tsv | sort -n >"$R/seqs"
	lost=$(comm -23 "$T/ref.seqs" <(uniq "$R/seqs") | wc -l)
	dups=$(uniq -d "$R/seqs" | wc -l)
	lost_total=$((lost_total + lost)) dup_total=$((dup_total + dups))
	processed_total=$((processed_total + $(uniq "$R/seqs" | wc -l)))
	same=yes
	cmp -s "$T/ref.state" "$R/state" || same=no
	for f in "$T"/ref/out/p*.tsv; do cmp -s "$f" "$R/out/${f##*/}" || same=no; done
	[ $same = yes ] || failed=$((failed + 1))
	echo "soak: round $rounds: state and outputs equal the uninterrupted run: $same (lost $lost, duplicates $dups)" >&2
	rm -rf "$R/data" "$R/out" "$R/dead.tsv" "$R/.dead.tsv.owner"
done

printf '\n%-30s %8s %11s\n' "fault" injected "recoveries"
for k in "kill a worker" "kill the process group" "reload, valid change" "reload, broken config" \
	"SIGSTOP a worker (watchdog)" "ringctl queries"; do
	printf '%-30s %8d %11s\n' "$k" "${faults[$k]:-0}" "${recovered[$k]:--}"
done
printf '\nrounds %d (%d min), events processed %d, events lost %d, duplicates %d, rounds differing %d\n' \
	$rounds "$MINUTES" $processed_total $lost_total $dup_total $failed
[ $lost_total -eq 0 ] && [ $dup_total -eq 0 ] && [ $failed -eq 0 ]
