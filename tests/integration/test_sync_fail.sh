# A failed fsync is never retried: the worker that saw it exits, its
# partition is marked failed (ringctl workers), is not restarted, its events
# are held back, the rest goes on, and the finite run exits 1 saying so.
# A restart once the disk is fine redoes the held events: nothing is lost.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 120000 --keys 3000 --seed 17 >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=128 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 30"
ref_run ref "$T/t.ini" -o handler.sleep_us=0

# The preloaded library is not built with the sanitizers.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
run_failing() { # what match: the run while fsync of files matching `match` fails
	local what=$1 match=$2
	rm -f "$T/arm"
	LD_PRELOAD=$B/tests/libfailsync.so FAILSYNC_MATCH=$match FAILSYNC_ARM=$T/arm \
		"$RINGMASTER" -c "$T/t.ini" -o store.sync_interval=50ms --summary "$T/$what.json" \
		2>"$T/$what.log" &
	local sup=$!; BG_PIDS+=($sup)
	wait_until 20 log_has "$T/$what.log" "started partitions"
	sleep 0.5
	touch "$T/arm"
	wait_until 20 log_has "$T/$what.log" "partition 1 failed"
	"$RINGCTL" -c "$T/t.ini" workers >"$T/$what.workers" 2>&1 || true
	local rc=0
	wait $sup || rc=$?
	rm -f "$T/arm"
	assert_eq "$what: exit status of a run with a failed partition" 1 $rc
	grep -E "^ *1 .*failed" "$T/$what.workers" >/dev/null ||
		{ cat "$T/$what.workers"; fail "$what: ringctl workers does not show partition 1 failed"; }
	log_has "$T/$what.log" "$match.*fsync failed: Input/output error" ||
		{ grep error "$T/$what.log"; fail "$what: the failure does not name the file"; }
	! log_has "$T/$what.log" "worker 1 (pid [0-9]*) ended: .*restarting" ||
		fail "$what: the failed worker was restarted"
	log_has "$T/$what.log" "held back" || fail "$what: the summary does not say events were held"
}

run_failing shard "/state/p1"
# p1's events were held back; every other partition finished its own.
for p in 0 2 3; do
	cmp -s "$T/ref/out/p$p.tsv" "$T/out/p$p.tsv" || fail "partition $p did not go on to the end"
done
ok "a failed fsync of shard p1: partition failed, not restarted, the others finished"

# The disk is fine again: a restart redoes what was held back.
"$RINGMASTER" -c "$T/t.ini" -o handler.sleep_us=0 2>"$T/rerun.log" ||
	{ cat "$T/rerun.log"; fail "the restart after the failure"; }
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/got.state"
assert_same_file "state after the restart" "$T/ref.state" "$T/got.state"
same_outputs "$T/ref/out" "$T/out"
ok "restarted: state and outputs equal an uninterrupted run"

# The same for the output file.
rm -rf "$T/data" "$T/out" "$T/dead.tsv" "$T/.dead.tsv.owner"
run_failing output "/out/p1.tsv"
"$RINGMASTER" -c "$T/t.ini" -o handler.sleep_us=0 2>"$T/rerun2.log" ||
	{ cat "$T/rerun2.log"; fail "the restart after the output failure"; }
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/got2.state"
assert_same_file "state after the output failure and a restart" "$T/ref.state" "$T/got2.state"
same_outputs "$T/ref/out" "$T/out"
ok "a failed fsync of out/p1.tsv: the same, and a restart completes it"
