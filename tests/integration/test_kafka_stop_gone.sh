# A stop with the brokers gone ends within stop_timeout + a few seconds,
# says which offsets were not committed, and exits 75 (EX_TEMPFAIL): the
# cluster is killed (SIGKILL, as a lost network would leave it) under a
# running instance, then the instance is stopped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=20000
"$RINGCTL" gen events --events $N --keys 2000 --seed 31 >"$T/events.tsv"
kafka_start_mock "$T/events.tsv"
kafka_config a
STOP=3
kafka_run a -o ringmaster.stop_timeout=${STOP}s
wait_until 60 processed_is a $N
kill -KILL "$MOCK_PID"
wait "$MOCK_PID" 2>/dev/null || true
sleep 1
start=$(date +%s%N)
kill -TERM "$PID_a"
# Bounded: stop_timeout, the 3 s the client gets to shut down, and slack
# for a loaded machine. Before the fix a stop took 40 s and more.
wait_until $((STOP + 8)) eval '! kill -0 "$PID_a" 2>/dev/null'
took_ms=$((($(date +%s%N) - start) / 1000000))
wait "$PID_a" && rc=0 || rc=$?
assert_eq "exit status (offsets not committed)" 75 "$rc"
log_has "$T/a.log" "kafka: offsets not committed for partitions\|kafka: partition [0-9]* was not revoked before the stop gave up" ||
	{ tail -20 "$T/a.log"; fail "the log does not say what was not committed"; }
wait_until 10 workers_gone
ok "stop with the brokers gone: ended in ${took_ms} ms (stop_timeout ${STOP} s), exit 75, uncommitted offsets logged"
