# SIGTERM while busy exits 0 and loses nothing: a second run over the same
# data_dir processes the rest, and the totals and state equal one whole run.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 300000 --keys 4000 --seed 21 >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=256 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 5"
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/ref" -o output.dir="$T/refout" -o output.dead_letter="$T/refdead.tsv" \
	-o handler.sleep_us=0 2>"$T/ref.log" || { cat "$T/ref.log"; fail "reference run"; }
"$RINGCTL" -c "$T/t.ini" -o ringmaster.data_dir="$T/ref" dump-state >"$T/ref.state"

"$RINGMASTER" -c "$T/t.ini" --summary "$T/s1.json" 2>"$T/log1" &
sup=$!
sleep 0.5
kill -TERM $sup
wait $sup || { tail "$T/log1"; fail "SIGTERM while busy did not exit 0"; }
first=$(json_get "$T/s1.json" processed)
[ "$first" -lt 300000 ] || fail "the first run finished before SIGTERM: make it longer"
log_has "$T/log1" "stopping: letting the workers drain" || fail "no stop message"

"$RINGMASTER" -c "$T/t.ini" -o handler.sleep_us=0 --summary "$T/s2.json" 2>"$T/log2" \
	|| { cat "$T/log2"; fail "second run"; }
second=$(json_get "$T/s2.json" processed)
assert_eq "events processed over both runs" 300000 $((first + second))
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/got.state"
assert_same_file "state" "$T/ref.state" "$T/got.state"
same_outputs "$T/refout" "$T/out"
ok "SIGTERM after $first events; the rerun did the other $second"
