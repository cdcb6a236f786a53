# One stop signalled twice at once is one stop: timeout(1) sends SIGTERM to
# ringmaster and then to its whole process group (ringmaster and its
# workers), and a stop signal within a second of the first is the same
# request. So `timeout -s TERM 2 ringmaster ...` drains, commits and exits
# 0, and a second run finishes the input with the state of one whole run.
# A stop signal more than a second after the first still kills the workers
# at once (exit 1), as ringmaster(8) says.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 300000 --keys 4000 --seed 5 >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=256 PARTITIONS=2 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 20"
ref_run ref "$T/t.ini" -o handler.sleep_us=0

# ---- timeout(1): two SIGTERMs at once, one stop ----
rc=0
timeout --preserve-status -s TERM 2 "$RINGMASTER" -c "$T/t.ini" --summary "$T/s1.json" \
	2>"$T/log1" || rc=$?
assert_eq "exit status after timeout's SIGTERMs" 0 $rc
log_has "$T/log1" "stopping: letting the workers drain" || { tail "$T/log1"; fail "no stop message"; }
! log_has "$T/log1" "stop requested twice" || { tail "$T/log1"; fail "timeout's stop became a kill"; }
! log_has "$T/log1" "killed by signal" || { tail "$T/log1"; fail "a worker was killed"; }
first=$(json_get "$T/s1.json" processed)
[ "$first" -lt 300000 ] || fail "the run finished before timeout stopped it: make it longer"
"$RINGMASTER" -c "$T/t.ini" -o handler.sleep_us=0 --summary "$T/s2.json" 2>"$T/log2" \
	|| { cat "$T/log2"; fail "second run"; }
second=$(json_get "$T/s2.json" processed)
assert_eq "events processed over both runs" 300000 $((first + second))
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/got.state"
assert_same_file "state" "$T/ref.state" "$T/got.state"
same_outputs "$T/ref/out" "$T/out"
ok "timeout -s TERM 2: exit 0 after $first events, all committed; the rerun did the other $second"

# ---- SIGINT then SIGTERM 0.2 s apart: still one stop ----
own="-o ringmaster.data_dir=$T/b/data -o output.dir=$T/b/out -o output.dead_letter=$T/b/dead.tsv"
"$RINGMASTER" -c "$T/t.ini" $own 2>"$T/log3" &
sup=$!
BG_PIDS+=($sup)
wait_until 10 log_has "$T/log3" "started partitions"
sleep 0.5
kill -INT $sup
sleep 0.2
kill -TERM $sup
rc=0
wait $sup || rc=$?
assert_eq "exit status after SIGINT and SIGTERM 0.2 s apart" 0 $rc
! log_has "$T/log3" "stop requested twice" || { tail "$T/log3"; fail "the second signal killed"; }
ok "SIGINT then SIGTERM within a second: one graceful stop"

# ---- a second SIGTERM later than that forces the stop ----
own="-o ringmaster.data_dir=$T/c/data -o output.dir=$T/c/out -o output.dead_letter=$T/c/dead.tsv"
"$RINGMASTER" -c "$T/t.ini" $own -o handler.sleep_us=300 2>"$T/log4" &
sup=$!
BG_PIDS+=($sup)
wait_until 10 log_has "$T/log4" "started partitions"
sleep 0.5
kill -TERM $sup
sleep 1.5 # the workers are still draining their rings (300 us an event)
kill -TERM $sup
rc=0
wait $sup || rc=$?
assert_eq "exit status after a second SIGTERM 1.5 s later" 1 $rc
log_has "$T/log4" "stop requested twice: killing it" || { tail "$T/log4"; fail "no kill"; }
ok "a second SIGTERM after a second kills the workers (exit 1)"
