# The Kafka source, against librdkafka's mock cluster (no broker): one
# instance consumes a topic of ledger events and ends with the state of a
# file run of the same events; SIGTERM commits the group's offsets, so a
# second start reads nothing again; a data directory that is gone is
# rebuilt from the changelog; a partition count other than the topic's is
# refused with a clear message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=20000
"$RINGCTL" gen events --events $N --keys 2000 --seed 8 --skew 0.9 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/file.log" || { cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"
kafka_start_mock "$T/events.tsv"
grep -qx "produced=$N" "$T/mock.out" || fail "the mock cluster holds $(cat "$T/mock.out")"

kafka_config one
kafka_run one
wait_until 180 processed_is one $N
# A savepoint is refused: the position is the group's offsets.
if "$RINGCTL" -c "$T/one.ini" savepoint "$T/sp" 2>"$T/sp.err"; then fail "a savepoint of a kafka source"; fi
grep -q "savepoint refused: a kafka source cannot be saved" "$T/sp.err" || { cat "$T/sp.err"; fail "kafka savepoint"; }
[ ! -e "$T/sp" ] || fail "a refused savepoint left its directory"
kafka_stop one
state_is one "$T/file.state" || fail "the state differs from the file run's"
log_has "$T/one.log" "kafka: partitions 0,1,2,3 revoked" || fail "no revocation at the stop"
ok "one instance: $N events, the state of a file run"

# Started again: every partition starts at the committed offset, where the
# shard is too, and nothing is processed twice.
kafka_run one
wait_until 120 reading one 8
sleep 1
processed_is one 0 || fail "a restart processed $(processed one) events again"
kafka_stop one
for p in 0 1 2 3; do
	grep "kafka: partition $p: reading from offset" "$T/one.log" | tail -1 |
		grep -q "offset [1-9]" || fail "partition $p did not start at its committed offset"
done
ok "a restart reads nothing again (committed offsets)"

# Without its data directory, the state comes back from the changelog. (A
# lost disk: its outputs and dead letters go with it, since a new data_dir
# never writes to files another one wrote.)
rm -rf "$T/one/data" "$T/one/out" "$T/one/dead.tsv" "$T/one/.dead.tsv.owner"
kafka_run one
wait_until 120 state_is one "$T/file.state"
wait_until 60 reading one 12
processed_is one 0 || fail "the restore processed $(processed one) events"
kafka_stop one
log_has "$T/one.log" "restoring state from $CHANGELOG" 4 || fail "no restore was logged"
ok "a lost data directory is rebuilt from the changelog"

# The topic has 4 partitions.
rc=0
"$RINGMASTER" -c "$T/one.ini" -o ringmaster.partitions=3 -o ringmaster.data_dir="$T/three" -o output.dir="$T/three.out" \
	-o output.dead_letter="$T/three.dead" \
	2>"$T/three.log" || rc=$?
[ $rc -ne 0 ] || fail "partitions = 3 on a topic of 4 was accepted"
log_has "$T/three.log" "topic $TOPIC has 4 partitions, and \[ringmaster\] partitions = 3" ||
	{ cat "$T/three.log"; fail "no clear message for a wrong partition count"; }
ok "partitions must equal the topic's partition count"
kafka_stop_mock
