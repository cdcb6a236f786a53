# A worker that hangs on an event with events waiting is killed by the
# watchdog and restarted; after poison_after hangs the event is dead-lettered.
. "$(dirname "$0")/lib.sh"
{ printf 'acct00000001\tdeposit\t100\n'; printf 'acct00000001\tdeposit\t999\n'
  printf 'acct00000001\tdeposit\t200\n'; } >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so PARTITIONS=1 write_config "$T/t.ini" \
	"[handler]" "hang_payload = deposit	999" \
	"[restart]" "backoff_initial = 20ms" "poison_after = 2"
"$RINGMASTER" -c "$T/t.ini" -o worker.watchdog=500ms --summary "$T/s.json" 2>"$T/log" \
	|| { cat "$T/log"; fail "run"; }
log_has "$T/log" "made no progress" 2 || { cat "$T/log"; fail "the watchdog did not fire twice"; }
grep -q "	poison	acct00000001" "$T/dead.tsv" || fail "the hanging event was not dead-lettered"
assert_eq "processed" 3 "$(json_get "$T/s.json" processed)"
ok "watchdog killed the hung worker twice; event dead-lettered"
