# Power cuts under a Kafka source: the instance (supervisor and workers) is
# SIGKILLed and its directory replaced by what a power cut would leave (only
# what was fsynced: tests/powercut), while the cluster keeps the group's
# committed offsets. Offsets are stored only for what the workers synced,
# so a restart never starts past what the shards hold; the end state equals
# a file run of the same events, and so does each output file (but for
# the seq column).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
PCTOOL=$TOP/$B/tests/pctool
PCLIB=$TOP/$B/tests/libpowercut.so
N=20000
"$RINGCTL" gen events --events $N --keys 2000 --seed 41 --skew 0.9 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/file.log" || { cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"
kafka_start_mock "$T/events.tsv"

# 300 us per event: about 1.5 s of work per partition, time for the cuts.
# A commit of the offsets every 100 ms, a sync every 300 ms: offsets that
# ran ahead of the disk would be caught.
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=64 kafka_config k \
	"[handler]" "sleep_us = 300" "auto.commit.interval.ms = 100"
sed -i 's/^sync = periodic$/&\nsync_interval = 300ms/' "$T/k.ini"
mkdir -p "$T/k"
"$PCTOOL" init "$T/k" "$T/k.shadow" || fail "pctool init"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
cuts=0
for i in 1 2 3; do
	LD_PRELOAD=$PCLIB POWERCUT_ROOT=$T/k POWERCUT_SHADOW=$T/k.shadow kafka_run k
	wait_until 120 reading k $((4 * i))
	sleep "0.$((RANDOM % 6 + 3))"
	state_is k "$T/file.state" && break # done before the cut
	kill -KILL "$PID_k" $(pgrep -f "^ringmaster: worker [0-9]+ \($NAME\)") 2>/dev/null || true
	wait "$PID_k" 2>/dev/null || true
	wait_until 10 workers_gone
	"$PCTOOL" restore "$T/k" "$T/k.shadow" || fail "pctool restore"
	cuts=$((cuts + 1))
done
[ $cuts -ge 2 ] || fail "only $cuts power cuts: the runs were too short"
kafka_run k
wait_until 300 state_is k "$T/file.state"
kafka_stop k
for f in "$T/out"/p*.tsv; do
	cut -f2- "$f" >"$T/want"
	cut -f2- "$T/k/out/${f##*/}" >"$T/got"
	assert_same_file "output ${f##*/} (but for seq)" "$T/want" "$T/got"
done
ok "$cuts power cuts on Kafka input: the state and outputs equal a file run's"
kafka_stop_mock
