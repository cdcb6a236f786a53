# rm.emitf and rm.state_putf (ringmaster-lua(7)): they write what
# rm.emit(string.format(...)) and rm.state_put(key, string.format(...))
# would, %d exact up to 2^53 where rm.emit writes a number as `..` does; a
# bad argument or a newline is a lua_error naming the function and the
# script's line, with the event's effects undone. rm.emit's pieces still
# join as `..` would. The event table is refilled for every event.
. "$(dirname "$0")/lib.sh"
PARTITIONS=1
: >"$T/events.tsv"
for i in $(seq 1 8); do printf 'k%02d\tx%d\n' "$i" "$i" >>"$T/events.tsv"; done

cat >"$T/format.lua" <<'LUA'
local last
function process(ev)
	local k = ev.key
	if k == "k02" then rm.emitf("%d|%s", "x", "y") end
	if k == "k03" then rm.emitf("%d %d", 1) end
	if k == "k04" then rm.state_put(k, "kept?") rm.emitf("a%s", "x\ny") end
	if k == "k05" then rm.state_putf(k, "v=%d", {}) end
	if k == "k06" then rm.state_putf("", "v=%d", 1) end
	-- the same table every time, refilled
	local same = last == nil or last == ev
	last = ev
	rm.state_putf(k, "seq=%d big=%d %s", ev.seq, 2 ^ 53, ev.payload)
	rm.emitf("%s\t%d\t%5.2f\t%d\t%s", k, 2 ^ 53, 1 / 3, ev.partition, tostring(same))
	rm.emit(k, "\t", 2 ^ 53, "\t", 0.5)
end
LUA
chmod 0644 "$T/format.lua"
HANDLER="$T/format.lua" write_config "$T/format.ini"
"$RINGMASTER" -c "$T/format.ini" 2>"$T/format.log" || { cat "$T/format.log"; fail "run"; }
"$RINGCTL" -c "$T/format.ini" dump-state >"$T/state"

assert_eq "dead letters" "lua_error lua_error lua_error lua_error lua_error " \
	"$(cut -f2 "$T/dead.tsv" | tr '\n' ' ')"
for m in "format.lua:4: bad argument #2 to 'emitf' (number expected, got string)" \
	"format.lua:5: bad argument #3 to 'emitf' (value expected)" \
	"format.lua:6: rm.emitf: a line must not contain a newline" \
	"format.lua:7: bad argument #3 to 'state_putf' (number expected, got table)" \
	"format.lua:8: rm.state_putf: a key is 1..255 bytes, got 0"; do
	grep -qF "$m" "$T/format.log" || { cat "$T/format.log"; fail "no message '$m'"; }
done
grep -q "^k04" "$T/state" && fail "k04's state_put was not undone"
printf 'k01\t9007199254740992\t 0.33\t0\ttrue\nk01\t9.007199254741e+15\t0.5\n' >"$T/want"
grep "^k01" "$T/out/p0.tsv" >"$T/got"
cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got"; fail "k01's lines"; }
assert_eq "lines of the events that went through" 6 "$(grep -c . "$T/out/p0.tsv")"
grep -q "false" "$T/out/p0.tsv" && fail "a new event table for an event"
grep -qx "k07	seq=[0-9]* big=9007199254740992 x7" "$T/state" \
	|| { cat "$T/state"; fail "k07's state"; }
ok "rm.emitf, rm.state_putf: string.format's output without a Lua string; errors name them"
