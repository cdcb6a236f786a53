# A handler that crashes on one event: after poison_after deaths that event
# is dead-lettered as `poison`, everything else is processed; the restart
# delays double until it is found (read from the log).
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 3000 --keys 500 --seed 9 >"$T/base.tsv"
{ head -n 1000 "$T/base.tsv"; printf 'acct00000007\tdeposit\t777\n'; tail -n +1001 "$T/base.tsv"; } >"$T/events.tsv"
poison_seq=$(head -n 1000 "$T/base.tsv" | wc -c)

HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so write_config "$T/t.ini" \
	"[handler]" "crash_payload = deposit	777" \
	"[restart]" "backoff_initial = 40ms" "backoff_max = 1s" "poison_after = 3"
"$RINGMASTER" -c "$T/t.ini" --summary "$T/s.json" 2>"$T/log" || { cat "$T/log"; fail "run"; }
grep -q "^$poison_seq	poison	acct00000007\\\\tdeposit\\\\t777$" "$T/dead.tsv" \
	|| { cat "$T/dead.tsv"; fail "the poison event is not in the dead-letter file"; }
assert_eq "processed (all events, the poison one dead-lettered)" 3001 "$(json_get "$T/s.json" processed)"

# The rest equals a run without the poison event.
SOURCE_PATH=$T/base.tsv write_config "$T/ref.ini"
"$RINGMASTER" -c "$T/ref.ini" -o ringmaster.data_dir="$T/ref" -o output.dir="$T/refout" -o output.dead_letter="$T/refdead.tsv" 2>"$T/ref.log" \
	|| { cat "$T/ref.log"; fail "reference run"; }
"$RINGCTL" -c "$T/ref.ini" -o ringmaster.data_dir="$T/ref" dump-state >"$T/ref.state"
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/got.state"
assert_same_file "state" "$T/ref.state" "$T/got.state"

delays=$(grep -o 'restarting it in [0-9]*ms' "$T/log" | grep -o '[0-9]*' | tr '\n' ' ')
# They double while the worker makes no progress, and start again from
# backoff_initial once the poison event is found (the next try will pass).
assert_eq "backoff delays" "40 80 40 " "$delays"
ok "poison event dead-lettered after 3 deaths; delays $delays"
