# ringctl for scripts: `wait` until a background instance answers (and
# exit 3 with the reason when none does); every control command has a
# --json form ({"ok", "command", "message"} for those that answer with a
# message), errors included; `state` and `dump-state` print a binary value
# as hex: never cut at a NUL, never split over lines.
. "$(dirname "$0")/lib.sh"
cat >"$T/bin.lua" <<'LUA'
function process(ev)
	if ev.payload == "bin" then
		rm.state_put(ev.key, "a\0b\n\255")
	else
		rm.state_put(ev.key, ev.payload)
	end
end
LUA
chmod go-w "$T/bin.lua"
printf 'k1\tbin\nk2\tplain text\nk3\tcaf\xc3\xa9\n' >"$T/events.tsv"
HANDLER=$T/bin.lua write_config "$T/t.ini"
rc=0
"$RINGCTL" -s "$T/nothing.sock" wait -t 300ms 2>"$T/wait.err" || rc=$?
assert_eq "wait with no instance" 3 $rc
grep -q "ringctl: wait: no answer within 300 ms: cannot connect: the control socket $T/nothing.sock is missing" "$T/wait.err" \
	|| { cat "$T/wait.err"; fail "wait: no reason given"; }
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log" &
BG_PIDS+=($!)
"$RINGCTL" -c "$T/t.ini" wait -t 20s || fail "wait: the instance did not answer"
"$RINGCTL" -c "$T/t.ini" status >/dev/null || fail "status right after wait"
ok "ringctl wait: until the instance answers; exit 3 with the reason when none does"

# top on an 80-column terminal keeps LAG and LAST EXIT (bars give way)
script -qc "stty cols 80; '$RINGCTL' -c '$T/t.ini' top -n 1" /dev/null | tr -d '\r' >"$T/top80"
grep -q "LAG  LAST EXIT$" "$T/top80" || { cat "$T/top80"; fail "top at 80 columns: no LAG and LAST EXIT"; }
[ "$(awk '{ if (length($0) > 80) n++ } END { print n + 0 }' "$T/top80")" = 0 ] \
	|| fail "top at 80 columns: a line is longer"
ok "top at 80 columns shows LAG and LAST EXIT"

for cmd in ping help metrics reload "restart-worker 1"; do
	"$RINGCTL" -c "$T/t.ini" --json $cmd >"$T/j.out" || fail "--json $cmd refused"
	jq -e --arg c "${cmd%% *}" '.ok == true and .command == $c and (.message | type) == "string"' \
		"$T/j.out" >/dev/null || { cat "$T/j.out"; fail "--json $cmd: not the JSON form"; }
done
rc=0
"$RINGCTL" -c "$T/t.ini" -s "$T/run/control.sock" --json restart-worker 9 >"$T/j.out" || rc=$?
assert_eq "--json of a refused command" 1 $rc
jq -e '.ok == false and (.message | test("partition"))' "$T/j.out" >/dev/null \
	|| { cat "$T/j.out"; fail "--json error: not the JSON form"; }
settled() { [ "$("$RINGCTL" -c "$T/t.ini" --json status | jq .processed)" = 3 ]; }
wait_until 20 settled
"$RINGCTL" -c "$T/t.ini" --json stop | jq -e '.ok and .message == "stopping"' >/dev/null || fail "--json stop"
wait_until 20 workers_gone
ok "--json: every command, errors included"

assert_eq "binary state" "$(printf 'k1\tpartition=%s\thex:6100620aff' \
	"$("$RINGCTL" -c "$T/t.ini" state k1 | cut -f2 | cut -d= -f2)")" "$("$RINGCTL" -c "$T/t.ini" state k1)"
assert_eq "text state" "plain text" "$("$RINGCTL" -c "$T/t.ini" state k2 | cut -f3)"
assert_eq "UTF-8 state" "$(printf 'caf\xc3\xa9')" "$("$RINGCTL" -c "$T/t.ini" state k3 | cut -f3)"
assert_eq "dump-state" "$(printf 'k1\thex:6100620aff\nk2\tplain text\nk3\tcaf\xc3\xa9')" \
	"$("$RINGCTL" -c "$T/t.ini" dump-state)"
ok "state and dump-state: text as it is, binary values as hex"
