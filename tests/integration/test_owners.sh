# One owner per data_dir, per shard and per output file: a second instance
# on a data_dir refuses (73, naming the holder); a supervisor SIGKILLed alone
# and restarted at once waits for its orphaned workers instead of writing
# beside them (results equal an uninterrupted run); files another data_dir
# wrote are neither truncated nor appended to.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 200000 --keys 5000 --seed 9 --skew 0.9 >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=128 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 20"
ref_run ref "$T/t.ini" -o handler.sleep_us=0

# ---- a second instance on the same data_dir (another run_dir) refuses
"$RINGMASTER" -c "$T/t.ini" 2>"$T/first.log" &
first=$!; BG_PIDS+=($first)
wait_until 10 log_has "$T/first.log" "started partitions"
rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.run_dir="$T/run2" 2>"$T/second.log" || rc=$?
assert_eq "exit status of a second instance on one data_dir" 73 $rc
log_has "$T/second.log" "another ringmaster (pid $first) is running on data_dir $T/data" ||
	{ cat "$T/second.log"; fail "the refusal does not name the holder"; }
ok "a second instance on the data_dir exits 73 naming pid $first"

# ---- the supervisor SIGKILLed alone, restarted at once, again and again:
# its workers go on draining their rings; the new supervisor waits for them.
kill -KILL $first
wait $first 2>/dev/null || true
restarts=0 waited=0
for round in $(seq 1 6); do
	"$RINGMASTER" -c "$T/t.ini" 2>>"$T/run.log" &
	sup=$!; BG_PIDS+=($sup)
	sleep "0.$((RANDOM % 5 + 4))"
	kill -0 $sup 2>/dev/null || break
	kill -KILL $sup
	wait $sup 2>/dev/null || true
	restarts=$((restarts + 1))
done
"$RINGMASTER" -c "$T/t.ini" -o handler.sleep_us=0 2>>"$T/run.log" ||
	{ tail -20 "$T/run.log"; fail "the last run failed"; }
wait_until 20 workers_gone
waited=$(grep -c "waiting for worker pid [0-9]* of a previous instance to exit" "$T/run.log" || true)
[ "$waited" -ge 1 ] || { tail -30 "$T/run.log"; fail "no supervisor waited for orphaned workers"; }
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/run.state"
assert_same_file "state after $restarts supervisor kills" "$T/ref.state" "$T/run.state"
same_outputs "$T/ref/out" "$T/out"
ok "$((restarts + 1)) supervisor SIGKILLs with immediate restarts ($waited waits for orphans): state and outputs equal"

# ---- another data_dir on the same output directory: refused, untouched
cp -a "$T/out" "$T/out.before"
rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/other" -o output.dead_letter="$T/other.dead" \
	2>"$T/foreign.log" || rc=$?
assert_eq "exit status with another data_dir's output files" 73 $rc
log_has "$T/foreign.log" "out/p0.tsv belongs to data_dir $T/data" ||
	{ cat "$T/foreign.log"; fail "the refusal does not say whose the file is"; }
for f in "$T"/out.before/p*.tsv; do
	cmp -s "$f" "$T/out/${f##*/}" || fail "${f##*/} was changed by the refused instance"
done
ok "output files of another data_dir: exit 73, not one byte changed"

# ---- the same for the dead-letter file
rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/other2" -o output.dir="$T/other2out" \
	2>"$T/foreign2.log" || rc=$?
assert_eq "exit status with another data_dir's dead-letter file" 73 $rc
log_has "$T/foreign2.log" "dead.tsv belongs to data_dir $T/data" ||
	{ cat "$T/foreign2.log"; fail "no clear message for a foreign dead-letter file"; }
ok "a dead-letter file of another data_dir: exit 73"

# ---- a non-empty file nobody marked (a file of the user's): refused
mkdir -p "$T/mine"
printf 'precious\n' >"$T/mine/p1.tsv"
rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/third" -o output.dir="$T/mine" \
	-o output.dead_letter="$T/third.dead" 2>"$T/unmarked.log" || rc=$?
assert_eq "exit status with an unmarked output file" 73 $rc
log_has "$T/unmarked.log" "mine/p1.tsv exists and was not written by data_dir" ||
	{ cat "$T/unmarked.log"; fail "no clear message for an unmarked file"; }
assert_eq "the unmarked file" "precious" "$(cat "$T/mine/p1.tsv")"
ok "an unmarked non-empty output file: exit 73, left as it was"
