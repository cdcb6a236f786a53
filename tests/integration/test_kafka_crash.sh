# Workers SIGKILLed at random points of a run on Kafka input: the state,
# and each partition's output file but for the seq column (an offset here,
# a byte offset in a file run), equal those of a file run of the same
# events: exactly once, as with files.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=20000
"$RINGCTL" gen events --events $N --keys 2000 --seed 11 --skew 0.9 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/file.log" || { cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"
kafka_start_mock "$T/events.tsv"

# 400 us per event: 2 s of work per partition, time for several kills.
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=64 kafka_config k \
	"[handler]" "sleep_us = 400" "[restart]" "backoff_initial = 20ms" "backoff_max = 200ms"
kafka_run k
wait_until 120 reading k 4
kills=0
for i in 1 2 3 4 5 6; do
	sleep "0.$((RANDOM % 3 + 2))"
	p=$((RANDOM % 4))
	pid=$(worker_pid $p) || true
	[ -n "$pid" ] || continue
	kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
done
wait_until 300 state_is k "$T/file.state"
kafka_stop k
[ $kills -ge 3 ] || fail "only $kills workers killed"
log_has "$T/k.log" "killed by signal 9" "$kills" || fail "the kills were not logged"
state_is k "$T/file.state" || fail "the state differs after $kills worker kills"
for f in "$T/out"/p*.tsv; do
	cut -f2- "$f" >"$T/want"
	cut -f2- "$T/k/out/${f##*/}" >"$T/got"
	assert_same_file "output ${f##*/} (but for seq)" "$T/want" "$T/got"
done
ok "$kills worker kills on Kafka input: state and outputs equal a file run's"
kafka_stop_mock
