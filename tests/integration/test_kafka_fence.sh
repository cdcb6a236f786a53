# An instance cut off from the group is fenced. Two instances share the
# topic; a is frozen (SIGSTOP to its process group: supervisor and workers)
# past its session timeout, so the group gives its partitions to b, which
# writes its fences to their changelogs and goes on. Then a's workers are
# let go first, while its supervisor still sleeps (the worst order: they
# write before anyone tells them), then the supervisor. a's workers must
# notice the fence and commit nothing, its supervisor must report the
# partitions lost, and whatever a wrote after b's fence must be skipped by
# every later restore: a's own when it takes everything over from b, and
# that of a new instance c, which rebuilds every shard from the changelog
# alone. Both end with the state of a single-instance run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=16000
"$RINGCTL" gen events --events $N --keys 2000 --seed 21 --skew 0.9 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" --summary "$T/file.json" 2>"$T/file.log" ||
	{ cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"
kafka_start_mock "$T/events.tsv"

# A frozen instance must not outlive a failed test, stopped for good.
eval "frozen_$(declare -f fail)"
fail() {
	[ -z "${PID_a:-}" ] || kill -CONT -- "-$PID_a" 2>/dev/null
	frozen_fail "$@"
}

# 2 ms per event, 4,000 events per partition: 8 s of work each, so that
# the freeze, the takeover and the thaw all happen mid-run.
for i in a b c; do
	SESSION_MS=4000 HEARTBEAT_MS=300 HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so \
		BATCH_MAX=32 kafka_config $i "[handler]" "sleep_us = 2000" \
		"[restart]" "backoff_initial = 50ms"
done
# last_assignment NAME: its latest "partitions generation", e.g. "0,1 7".
last_assignment() {
	sed -n 's/.*kafka: assigned partitions \([0-9,]*\) of .* (group generation \([0-9]*\)).*/\1 \2/p' \
		"$T/$1.log" | tail -1
}
# part_field NAME P FIELD: a figure of partition P from NAME's control socket.
part_field() { "$RINGCTL" -c "$T/$1.ini" --json workers 2>/dev/null | jq -e ".[$2].$3"; }
# settled: a and b hold two partitions each, of the same generation, and
# a's workers have events waiting in their rings (work for after the thaw).
settled() {
	local a b p
	a=$(last_assignment a) b=$(last_assignment b)
	[[ $a == [0-9],[0-9]\ * && $b == [0-9],[0-9]\ * && ${a#* } == "${b#* }" ]] || return 1
	a=${a%% *}
	for p in ${a/,/ }; do
		[ "$(part_field a $p state)" = '"running"' ] &&
			[ "$(part_field a $p lag_records)" -ge 300 ] || return 1
	done
}

SETSID=1 kafka_run a
[ "$(ps -o pgid= -p "$PID_a" | tr -d ' ')" = "$PID_a" ] || fail "a has no process group of its own"
wait_until 60 reading a 4
kafka_run b
wait_until 60 settled
a_parts=$(last_assignment a)
a_parts=${a_parts%% *}
ok "a and b split the partitions (a: $a_parts)"

# Freeze a, workers and all; b gets a's partitions once a's session ends.
kill -STOP -- "-$PID_a"
wait_until 60 log_has "$T/b.log" "kafka: assigned partitions 0,1,2,3 of"
# Take both bases at once, then wait for 100 more events on each (or for
# the partition's end: it may be nearly done by the time both fences are in).
declare -A base
for p in ${a_parts/,/ }; do
	wait_until 60 log_has "$T/b.log" "partition $p: fence of generation"
done
for p in ${a_parts/,/ }; do
	base[$p]=$(part_field b $p processed) || fail "b's control socket does not answer"
done
# went_on P TOTAL: b's partition P ran 100 events past its base, or to its
# end (seq is the offset; TOTAL events from the file run).
went_on() {
	[ "$(part_field b $1 processed)" -ge $((base[$1] + 100)) ] ||
		[ "$(part_field b $1 applied_seq)" -ge $(($2 - 1)) ]
}
for p in ${a_parts/,/ }; do
	total=$(jq -e ".per_partition[$p].processed" "$T/file.json") || fail "no total for partition $p"
	wait_until 60 went_on $p $total
done
ok "b took a's partitions $a_parts over, fenced their changelogs and went on"

# Thaw a's workers alone: they still hold events and do not know yet.
for pid in $(pgrep -g "$PID_a"); do
	[ "$pid" = "$PID_a" ] || kill -CONT "$pid" || true
done
wait_until 30 log_has "$T/a.log" "fenced: another writer's records are in"
kill -CONT -- "-$PID_a"
wait_until 30 log_has "$T/a.log" "kafka: partitions [0-9,]* lost"
! grep -E "error.*(Sanitizer|runtime error)" "$T/a.log" || fail "a: see above"
ok "a's workers saw the fence and committed nothing; a's supervisor saw the loss"

# a rejoins; when b stops, a takes every partition and restores b's work
# from the changelogs, skipping its own batches written after b's fences.
kafka_stop b
wait_until 60 log_has "$T/a.log" "kafka: assigned partitions 0,1,2,3 of"
wait_until 120 state_is a "$T/file.state"
log_has "$T/a.log" "skipping the batch seq=.* older than generation" ||
	fail "a restored its partitions without skipping its own fenced batches"
kafka_stop a
state_is a "$T/file.state" || fail "a's state differs after the stop"
ok "a ended with the single-run state, its fenced batches skipped"

# c, from nothing but the changelog: the same state.
kafka_run c
wait_until 60 reading c 4
wait_until 60 state_is c "$T/file.state"
log_has "$T/c.log" "skipping the batch seq=.* older than generation" ||
	fail "c restored without skipping a's fenced batches"
[ "$(processed c)" = 0 ] || fail "c processed events again: $(processed c)"
kafka_stop c
skipped=$(grep -c "skipping the batch seq=" "$T/c.log")
ok "a new instance rebuilt the single-run state from the changelog ($skipped fenced batches skipped)"
kafka_stop_mock
