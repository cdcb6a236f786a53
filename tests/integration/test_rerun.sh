# The same input twice over one data_dir: the second run applies nothing and
# changes no byte of the state or the outputs (exactly-once across runs).
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 50000 --keys 2000 --seed 7 >"$T/events.tsv"
write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" --summary "$T/s1.json" 2>"$T/log1" || { cat "$T/log1"; fail "first run"; }
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/state1"
all_output "$T/out" >"$T/out1"
cp "$T/dead.tsv" "$T/dead1"
[ "$(wc -l <"$T/out1")" -gt 40000 ] || fail "first run wrote too little output"

"$RINGMASTER" -c "$T/t.ini" --summary "$T/s2.json" 2>"$T/log2" || { cat "$T/log2"; fail "second run"; }
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/state2"
all_output "$T/out" >"$T/out2"
assert_same_file "state after the second run" "$T/state1" "$T/state2"
assert_same_file "output after the second run" "$T/out1" "$T/out2"
assert_same_file "dead letters after the second run" "$T/dead1" "$T/dead.tsv"
assert_eq "second run processed" 0 "$(json_get "$T/s2.json" processed)"
ok "a second run over the same data_dir changed nothing"
