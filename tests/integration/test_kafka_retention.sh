# Events deleted by the topic's retention before the group processed them
# are never lost silently: the mock cluster keeps about 140,000 messages per
# partition, so producing 200,000 more behind a stopped instance moves the
# log start past its position. The partition is then failed (error log,
# workers, metrics); `ringctl restart-worker` accepts the loss and goes on
# from the log start, and the state is that of the events Kafka still had.
# With on_data_loss = continue the instance goes on by itself. A new group
# with no position starts at the log start and says so. (And the changelog
# topic: the mock cannot create it, which is a warning.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
export PARTITIONS=1
"$RINGCTL" gen events --events 10000 --keys 500 --seed 41 >"$T/first.tsv"
"$RINGCTL" gen events --events 200000 --keys 500 --seed 42 >"$T/more.tsv"
kafka_start_mock "$T/first.tsv"
kafka_config a
kafka_run a
wait_until 60 processed_is a 10000
log_has "$T/a.log" "partition 0: no committed offset and nothing applied: starting at its log start, offset 0" ||
	fail "a new group did not say where it starts"
# The mock cluster implements no CreateTopics: a warning, and the topic as it is.
log_has "$T/a.log" "level=warn proc=supervisor .*kafka: the cluster cannot \(create\|describe\) topics (.*): .*changelog topic $CHANGELOG .*as it is" ||
	fail "no warning that the changelog topic could not be created"
kafka_stop a

"$KAFKA_MOCK" -P $TOPIC -b "$BROKERS" -e "$T/more.tsv" >/dev/null || fail "producing more"
low=$("$KAFKA_MOCK" -p 1 -L $TOPIC -b "$BROKERS" | cut -d' ' -f2)
[ "$low" -gt 10000 ] || fail "the mock's retention kept everything (log start $low): the test needs more events"
lost=$((low - 10000))

ask() { # WHAT FILTER: jq -e on ringctl --json WHAT, false if it does not answer
	local out
	out=$("$RINGCTL" -c "$T/a.ini" --json "$1") && jq -e "$2" <<<"$out"
}
kafka_run a
wait_until 60 log_has "$T/a.log" "kafka: partition 0: offsets 10000\.\.$((low - 1)) were deleted by the topic's retention before this group processed them: $lost events lost"
log_has "$T/a.log" "level=error proc=supervisor .*kafka: partition 0 failed" || fail "no error saying the partition failed"
wait_until 30 ask workers '.[0].state == "failed"'
"$RINGCTL" -c "$T/a.ini" metrics | grep -q "^ringmaster_kafka_offsets_lost_total{partition=\"0\"} $lost\$" ||
	fail "the metrics do not count $lost lost offsets"
ask status '.processed == 0' >/dev/null || fail "a failed partition processed events"
ok "resume position 10000 below the log start $low: $lost events lost, logged, counted, partition failed"

msg=$("$RINGCTL" -c "$T/a.ini" restart-worker 0) || fail "restart-worker: $msg"
wait_until 60 log_has "$T/a.log" "going on from its log start, offset $low (ringctl restart-worker accepted the loss)"
wait_until 120 processed_is a $((210000 - low))
kafka_stop a
# The state: the first 10,000 events, then what Kafka still had.
{ cat "$T/first.tsv"; tail -n +$((lost + 1)) "$T/more.tsv"; } >"$T/kept.tsv"
SOURCE_PATH=$T/kept.tsv write_config "$T/ref.ini"
ref_run ref "$T/ref.ini"
state_is a "$T/ref.state" || fail "the state after accepting the loss is not that of the events Kafka kept"
ok "restart-worker accepted the loss: went on from offset $low, state of the events Kafka kept"

# on_data_loss = continue: no stop.
"$KAFKA_MOCK" -P $TOPIC -b "$BROKERS" -e "$T/more.tsv" >/dev/null || fail "producing more"
low2=$("$KAFKA_MOCK" -p 1 -L $TOPIC -b "$BROKERS" | cut -d' ' -f2)
high2=$("$KAFKA_MOCK" -p 1 -L $TOPIC -b "$BROKERS" | cut -d' ' -f3)
[ "$low2" -gt 210000 ] || fail "the log start did not pass 210000 ($low2)"
kafka_run a -o source.on_data_loss=continue
wait_until 60 log_has "$T/a.log" "going on from its log start, offset $low2 (\[source\] on_data_loss = continue)"
wait_until 120 processed_is a $((high2 - low2))
ask workers '.[0].state == "running"' >/dev/null || fail "the partition is not running"
kafka_stop a
ok "on_data_loss = continue: $((low2 - 210000)) events lost, logged, and the instance went on"
kafka_stop_mock
