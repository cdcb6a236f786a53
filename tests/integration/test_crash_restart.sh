# SIGKILL the whole process group (supervisor and workers) at random points
# and start again, in a loop: the final state and outputs equal an
# uninterrupted run's, byte for byte.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 200000 --keys 5000 --seed 5 --skew 0.9 >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=128 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 10"
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/ref/data" -o output.dir="$T/ref/out" \
	-o output.dead_letter="$T/ref/dead.tsv" -o handler.sleep_us=0 2>"$T/ref.log" \
	|| { cat "$T/ref.log"; fail "reference run"; }
"$RINGCTL" -c "$T/t.ini" -o ringmaster.data_dir="$T/ref/data" dump-state >"$T/ref.state"

crashes=0
for round in $(seq 1 30); do
	# a sync every 100 ms: runs killed within a second still move the resume
	# position (it never passes what a sync made durable)
	setsid "$RINGMASTER" -c "$T/t.ini" -o store.sync_interval=100ms 2>>"$T/run.log" &
	sup=$!
	sleep "0.$((RANDOM % 7 + 3))"
	if kill -0 $sup 2>/dev/null; then
		kill -KILL -- -$sup 2>/dev/null || true
		wait $sup 2>/dev/null || true
		crashes=$((crashes + 1))
		# the workers die with their group; wait until none is left
		wait_until 10 workers_gone
		continue
	fi
	wait $sup || { tail -20 "$T/run.log"; fail "the last run failed"; }
	break
done
[ $crashes -ge 2 ] || fail "only $crashes crashes: the run was too short to test anything"
log_has "$T/run.log" "resuming the source at seq=" || fail "no resume was logged"
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/run.state"
assert_same_file "state after $crashes crashes" "$T/ref.state" "$T/run.state"
same_outputs "$T/ref/out" "$T/out"
ok "$crashes whole-group SIGKILLs and restarts; state and outputs equal the uninterrupted run"
