# Restores under failure: a worker killed (SIGKILL) while it rebuilds its
# shard from the changelog is restarted, restores again and the instance
# ends with the state of a file run; a restart whose shards are current
# restores nothing and is ready at once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/kafka_lib.sh"
N=40000
"$RINGCTL" gen events --events $N --keys 20000 --seed 51 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/file.log" || { cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"
# Every broker answers 20 ms late, and restores read 16 KiB at a time: a
# restore takes seconds, long enough to catch a worker in it.
MOCK_RTT=20 kafka_start_mock "$T/events.tsv"
kafka_config one
kafka_run one
wait_until 180 processed_is one $N
kafka_stop one

# Shards current: no restore, every partition read at once.
kafka_run one
wait_until 60 reading one 8
kafka_stop one
[ "$(grep -c "restoring state from" "$T/one.log")" = 0 ] || fail "a restart with current shards restored"
ok "a restart with current shards restores nothing"

# A lost data directory: every worker restores; kill one while it does.
rm -rf "$T/one/data" "$T/one/out" "$T/one/dead.tsv" "$T/one/.dead.tsv.owner"
kafka_run one -o kafka.fetch.max.bytes=16384 -o kafka.max.partition.fetch.bytes=16384 \
	-o kafka.message.max.bytes=16384
# restoring: "PARTITION PID" of a worker that has begun to apply the
# changelog (its log says so) and is still at it, or false.
restoring() {
	local p pid
	read -r p pid < <(sed -n 's/.* proc=worker\/\([0-9]*\) pid=\([0-9]*\) msg="partition [0-9]*: restoring state from .*/\1 \2/p' "$T/one.log" | head -1) &&
		[ -n "$pid" ] && ! log_has "$T/one.log" "proc=worker/$p pid=$pid msg=\"partition $p: restored" &&
		kill -0 "$pid" 2>/dev/null && echo "$p $pid"
}
got=
for _ in $(seq 1200); do got=$(restoring) && break || sleep 0.02; done
[ -n "$got" ] || fail "no worker was seen restoring"
read -r p pid <<<"$got"
kill -KILL "$pid"
wait_until 60 log_has "$T/one.log" "worker $p (pid $pid) ended: killed by signal 9"
wait_until 180 state_is one "$T/file.state"
wait_until 60 reading one 12
processed_is one 0 || fail "the restores processed $(processed one) events"
kafka_stop one
[ "$(grep -c "worker/$p .*partition $p: restoring state from" "$T/one.log")" -ge 2 ] ||
	fail "partition $p did not restore again after its worker was killed"
ok "worker $p killed while restoring: restored again, state of the file run"
kafka_stop_mock
