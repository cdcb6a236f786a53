# Fresh starts on Kafka: workers forked while librdkafka's threads run in
# the supervisor used to hang (a glibc lock in getaddrinfo held at fork by
# one of those threads), so that at a fresh start 1 to 3 of 4 workers never
# had their first Kafka write acknowledged until the watchdog killed them.
# Workers are forked by the fork server now (supervisor/forksrv.h). With a
# 3-broker cluster and the default watchdog (30 s), several fresh starts in
# a row, each with its own group and data_dir: each processes every event
# into the state of a file run, within 25 s (a hang would take 30 s and
# more), with no "acknowledged nothing" and no watchdog kill in its log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=20000
STARTS=${STARTS:-4}
"$RINGCTL" gen events --events $N --keys 2000 --seed 3 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/file.log" || { cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"

changelogs=()
for i in $(seq "$STARTS"); do changelogs+=(-t "g$i-$NAME-changelog"); done
"$KAFKA_MOCK" -p 4 -n 3 -t $TOPIC "${changelogs[@]}" -e "$T/events.tsv" \
	>"$T/mock.out" 2>"$T/mock.err" &
MOCK_PID=$!
BG_PIDS+=($MOCK_PID)
wait_until 120 grep -q '^ready' "$T/mock.out" || { cat "$T/mock.err"; fail "the mock cluster did not start"; }
BROKERS=$(sed -n 's/^bootstrap=//p' "$T/mock.out")
[ "$(tr ',' '\n' <<<"$BROKERS" | wc -l)" -eq 3 ] || fail "expected 3 brokers, got $BROKERS"

for i in $(seq "$STARTS"); do
	GROUP=g$i kafka_config "s$i"
	t0=$SECONDS
	kafka_run "s$i"
	wait_until 25 processed_is "s$i" $N
	secs=$((SECONDS - t0))
	kafka_stop "s$i"
	state_is "s$i" "$T/file.state" || fail "start $i: the state differs from the file run's"
	! log_has "$T/s$i.log" "acknowledged nothing" ||
		{ grep "acknowledged nothing" "$T/s$i.log"; fail "start $i: a worker's writes hung"; }
	! log_has "$T/s$i.log" "made no progress for" || fail "start $i: the watchdog killed a worker"
	! log_has "$T/s$i.log" "worker [0-9]* (pid [0-9]*) ended" ||
		{ grep "ended" "$T/s$i.log"; fail "start $i: a worker died"; }
	echo "start $i: $N events in ${secs}s"
done
kafka_stop_mock
ok "$STARTS fresh starts on a 3-broker cluster: every event processed, no hung worker"
