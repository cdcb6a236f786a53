# SIGKILL workers at random points of a file run, several times: the final
# state and every output file equal an uninterrupted run's, byte for byte.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 200000 --keys 5000 --seed 3 >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=128 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 10" "[restart]" "backoff_initial = 20ms" "backoff_max = 200ms"

# the uninterrupted run
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/ref/data" -o output.dir="$T/ref/out" \
	-o output.dead_letter="$T/ref/dead.tsv" -o handler.sleep_us=0 2>"$T/ref.log" \
	|| { cat "$T/ref.log"; fail "reference run"; }
"$RINGCTL" -c "$T/t.ini" -o ringmaster.data_dir="$T/ref/data" dump-state >"$T/ref.state"

"$RINGMASTER" -c "$T/t.ini" 2>"$T/run.log" &
sup=$!
kills=0
for i in 1 2 3 4 5 6; do
	sleep "0.$((RANDOM % 4 + 2))"
	p=$((RANDOM % 4))
	pid=$(worker_pid $p) || true
	[ -n "$pid" ] || continue
	kill -KILL "$pid" 2>/dev/null && kills=$((kills + 1))
done
wait $sup || { tail -20 "$T/run.log"; fail "the run did not exit 0"; }
[ $kills -ge 3 ] || fail "only $kills workers killed: the run was too short"
log_has "$T/run.log" "killed by signal 9" "$kills" || fail "restarts not logged"
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/run.state"
assert_same_file "state after $kills worker kills" "$T/ref.state" "$T/run.state"
same_outputs "$T/ref/out" "$T/out"
ok "$kills workers killed; state and outputs equal the uninterrupted run"
