# [output] type = kafka: each worker produces its output lines to a topic,
# keyed by the event's key (so murmur2 puts a line in the partition its
# event came from) with the event's seq in a "seq" header. At least once:
# with workers SIGKILLed during the run, every line of a file run is there
# (but for the seq column), in its partition, and the copies a crash makes
# are the same line with the same seq.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=20000
"$RINGCTL" gen events --events $N --keys 2000 --seed 12 --skew 0.9 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/file.log" || { cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"
kafka_start_mock "$T/events.tsv" out

HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=64 kafka_config s \
	"[handler]" "sleep_us = 400" "[restart]" "backoff_initial = 20ms"
sed -i 's|^\[output\]$|&\ntopic = out|; s|^type = file$|type = kafka|' "$T/s.ini"
kafka_run s
wait_until 120 reading s 4
kills=0
for i in 1 2 3; do
	sleep 0.4
	pid=$(worker_pid $((RANDOM % 4))) || true
	[ -z "$pid" ] || ! kill -KILL "$pid" || kills=$((kills + 1))
done
[ $kills -ge 2 ] || fail "only $kills workers killed"
wait_until 300 state_is s "$T/file.state"
kafka_stop s
[ ! -e "$T/s/out" ] || [ -z "$(ls "$T/s/out")" ] || fail "output files with [output] type = kafka"
kafka_dump out >"$T/out.tsv" || fail "cannot read the output topic"
[ "$(wc -l <"$T/out.tsv")" -ge $N ] || fail "only $(wc -l <"$T/out.tsv") output records for $N events"
# key = the account column, seq header = the seq column
awk -F'\t' '$2 != $5 || $3 != $4 { print; bad = 1 } END { exit bad }' "$T/out.tsv" | head -5 |
	grep . && fail "records whose key or seq header does not match their line"
for p in 0 1 2 3; do
	awk -F'\t' -v p=$p '$1 == p' "$T/out.tsv" | cut -f4- | LC_ALL=C sort -u |
		cut -f2- | LC_ALL=C sort >"$T/got"
	cut -f2- "$T/out/p$p.tsv" | LC_ALL=C sort >"$T/want"
	assert_same_file "partition $p of the output topic (but for seq, without copies)" \
		"$T/want" "$T/got"
done
ok "$(wc -l <"$T/out.tsv") records for $N events: every line, keyed, in its partition"
kafka_stop_mock
