# The event's payload read in place (ringmaster-lua(7)): rm.payload_byte,
# rm.payload_sub and rm.payload_find give what string.byte, string.sub and
# string.find (plain) give on ev.payload, negative and out-of-range
# positions included, and rm.payload_len is #ev.payload; ev.key and
# ev.payload, made when first read, are the event's; outside process the
# payload is empty; a bad argument is a lua_error naming the function.
. "$(dirname "$0")/lib.sh"
PARTITIONS=1
{
	printf 'k1\tdeposit\t100\n'
	printf 'k2\tab\tcd\tab\n'
	printf 'k3\tx\n'
	printf 'k4\t{"type":"deposit"}\n'
	printf 'k5\tbad byte\n'
	printf 'k6\tbad find\n'
	printf 'k7\tlast\n'
} >"$T/events.tsv"

cat >"$T/payload.lua" <<'LUA'
local positions = {-100, -3, -1, 0, 1, 2, 3, 5, 8, 100}
local needles = {"\t", "ab", "deposit", "", "zz", "{", "d\t1"}
local function same(what, a, b, c, d)
	if a ~= c or b ~= d then
		error(string.format("%s: %s %s against %s %s", what, tostring(a), tostring(b),
			tostring(c), tostring(d)))
	end
end
function process(ev)
	if ev.key == "k5" then rm.payload_byte("x") end
	if ev.key == "k6" then rm.payload_find(nil) end
	local checked = 0
	for _, i in ipairs(positions) do
		same("byte " .. i, rm.payload_byte(i), nil, string.byte(ev.payload, i), nil)
		same("sub " .. i, rm.payload_sub(i), nil, string.sub(ev.payload, i), nil)
		for _, j in ipairs(positions) do
			same("sub " .. i .. " " .. j, rm.payload_sub(i, j), nil,
				string.sub(ev.payload, i, j), nil)
			checked = checked + 1
		end
		for _, s in ipairs(needles) do
			local a, b = rm.payload_find(s, i)
			local c, d = string.find(ev.payload, s, i, true)
			same("find " .. s .. " " .. i, a, b, c, d)
			checked = checked + 1
		end
	end
	same("find", rm.payload_find("\t"), nil, (string.find(ev.payload, "\t", 1, true)), nil)
	same("byte", rm.payload_byte(), nil, string.byte(ev.payload), nil)
	same("len", rm.payload_len(), nil, #ev.payload, nil)
	rm.emitf("%s\t%s\t%d\t%d", ev.key, ev.payload, rm.payload_len(), checked)
end
function fini()
	rm.log("warn", string.format("after: len=%d sub=[%s] byte=%s", rm.payload_len(),
		rm.payload_sub(1), tostring(rm.payload_byte(1))))
end
LUA
chmod 0644 "$T/payload.lua"
HANDLER="$T/payload.lua" write_config "$T/payload.ini"
"$RINGMASTER" -c "$T/payload.ini" 2>"$T/payload.log" || { cat "$T/payload.log"; fail "run"; }
printf '%s\n' "k1	deposit	100	11	170" "k2	ab	cd	ab	8	170" "k3	x	1	170" \
	'k4	{"type":"deposit"}	18	170' "k7	last	4	170" >"$T/want"
assert_same_file "the payload read in place against string.byte, sub and find" \
	"$T/want" "$T/out/p0.tsv"
assert_eq "dead letters (reason, key)" "lua_error k5 lua_error k6 " \
	"$(cut -f2,3 "$T/dead.tsv" | cut -c1-12 | tr '\t\n' '  ')"
for m in "payload.lua:10: bad argument #1 to 'payload_byte' (number expected, got string)" \
	"payload.lua:11: bad argument #1 to 'payload_find' (string expected, got nil)" \
	"after: len=0 sub=[] byte=nil"; do
	grep -qF "$m" "$T/payload.log" || { cat "$T/payload.log"; fail "no message '$m'"; }
done
ok "rm.payload_byte, sub, find and len agree with the string functions on ev.payload; bad arguments are lua_errors"
