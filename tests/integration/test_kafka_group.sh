# Two instances in one consumer group split the topic's partitions; one is
# killed (SIGKILL) in the middle of the run; the other takes its partitions
# over, rebuilds their state from the changelog, and ends with the state of
# a single-instance run (here: a file run of the same events).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=20000
"$RINGCTL" gen events --events $N --keys 2000 --seed 9 --skew 0.9 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/file.log" || { cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"
kafka_start_mock "$T/events.tsv"

# 2 ms per event: one instance alone would need 10 s per partition, so the
# second joins, and the kill comes, while there is work left.
for i in a b; do
	HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=64 kafka_config $i \
		"[handler]" "sleep_us = 2000"
done
kafka_run a
wait_until 120 eval '[ "$(processed a)" -ge 400 ]'
kafka_run b
# The group rebalances: a gives every partition up, then each gets two.
wait_until 120 log_has "$T/b.log" "kafka: assigned partitions [0-9],[0-9] of"
wait_until 120 reading b 2
assigned_b=$(grep -o "assigned partitions [0-9,]* of" "$T/b.log" | tail -1)
wait_until 120 log_has "$T/a.log" "kafka: assigned partitions [0-9],[0-9] of"
a_then=$(processed a)
ok "two instances split the partitions (b: $assigned_b)"

# Both at work (a two batches or more into its new partitions, so that the
# changelog holds something of them for b to restore); then a dies,
# workers and all.
wait_until 120 eval '[ "$(processed b)" -ge 200 ]'
wait_until 120 eval '[ "$(processed a)" -ge $((a_then + 128)) ]'
done_before=$(( $(processed a) + $(processed b) ))
# (none yet when a had committed nothing of b's partitions before b joined)
restores=$(grep -c "restoring state from" "$T/b.log" || true)
sup_a=$(cat "$T/a/run/ringmaster.pid")
pkill -KILL -P "$sup_a" || true
kill -KILL "$sup_a"
wait "$PID_a" 2>/dev/null || true
[ "$done_before" -lt $N ] || fail "the run was over before the kill: nothing to take over"
ok "a killed after $done_before of $N events"

# After a's session times out, b owns all four, restores a's two from the
# changelog and finishes the topic.
wait_until 120 log_has "$T/b.log" "kafka: assigned partitions 0,1,2,3 of"
wait_until 300 state_is b "$T/file.state"
[ "$(grep -c "restoring state from" "$T/b.log")" -gt $restores ] ||
	fail "b did not restore the partitions it took from a"
kafka_stop b
state_is b "$T/file.state" || fail "the state differs after the stop"
ok "b took a's partitions over, restored them, and ended with the single-run state"
kafka_stop_mock
