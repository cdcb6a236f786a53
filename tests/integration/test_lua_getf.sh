# rm.state_getf (ringmaster-lua(7)): a state's numbers read by a format,
# nil for a key without state, true for a matching format without %d, false
# for a value the format does not match or a number a double cannot hold
# exactly; a bad format or argument is a lua_error naming it, with the
# event's effects undone. rm.table_get keeps the rows it read, but a reload
# that changes a table is seen from the next batch on, and a row that is not
# there stays nil.
. "$(dirname "$0")/lib.sh"
PARTITIONS=1
: >"$T/events.tsv"
for i in $(seq 1 14); do printf 'k%02d\tx\n' "$i" >>"$T/events.tsv"; done

cat >"$T/getf.lua" <<'LUA'
local values = {
	k02 = "a=5 b=-7", k03 = "a=5 b=x", k04 = "a=9007199254740992 b=0",
	k05 = "a=9007199254740993 b=0", k06 = "a=0007 b=-0", k07 = "a=5 b=7 ",
	k08 = "100%", k09 = "a=1 b=2", k13 = "plain",
}
local formats = {k08 = "%d%%", k09 = "a=%s", k10 = "%d%d%d%d%d%d%d%d%d", k13 = "plain",
	k14 = "a=%d\0"}
local function show(...)
	local out = {}
	for i = 1, select("#", ...) do
		local v = select(i, ...)
		out[i] = type(v) == "number" and string.format("%d", v) or tostring(v)
	end
	return table.concat(out, " ")
end
function process(ev)
	local k = ev.key
	if values[k] then rm.state_put(k, values[k]) end
	if k == "k11" then rm.state_getf({}, "%d") end
	if k == "k12" then rm.state_getf(k) end
	rm.emit(k, "\t", show(rm.state_getf(k, formats[k] or "a=%d b=%d")))
end
LUA
chmod 0644 "$T/getf.lua"
HANDLER="$T/getf.lua" write_config "$T/getf.ini"
"$RINGMASTER" -c "$T/getf.ini" 2>"$T/getf.log" || { cat "$T/getf.log"; fail "run"; }
cat >"$T/want" <<'OUT'
k01	nil
k02	5 -7
k03	false
k04	9007199254740992 0
k05	false
k06	7 0
k07	false
k08	100
k13	true
OUT
assert_same_file "rm.state_getf's values" "$T/want" "$T/out/p0.tsv"
assert_eq "dead letters (seq, reason)" "48 lua_error 54 lua_error 60 lua_error 66 lua_error 78 lua_error " \
	"$(cut -f1,2 "$T/dead.tsv" | tr '\t\n' '  ')"
for m in "getf.lua:21: rm.state_getf: bad format 'a=%s': only %d and %% convert" \
	"getf.lua:21: rm.state_getf: at most 8 %d" \
	"getf.lua:21: rm.state_getf: a format has no NUL" \
	"getf.lua:19: bad argument #1 to 'state_getf' (string expected, got table)" \
	"getf.lua:20: bad argument #2 to 'state_getf' (string expected, got nil)"; do
	grep -qF "$m" "$T/getf.log" || { cat "$T/getf.log"; fail "no message '$m'"; }
done
"$RINGCTL" -c "$T/getf.ini" dump-state >"$T/state"
grep -q "^k09" "$T/state" && fail "k09's state_put was not undone"
grep -q "^k08	100%$" "$T/state" || { cat "$T/state"; fail "k08's state"; }
ok "rm.state_getf: numbers, nil, false; a bad format or argument is a lua_error naming it"

# A table changed by a reload: the rows read before are not served after.
cp "$TOP/etc/rules.tsv" "$T/rules.tsv"
chmod 0644 "$T/rules.tsv"
cat >"$T/rows.lua" <<'LUA'
function process(ev)
	local missing = rm.table_get("rules", "no such type")
	rm.emit(ev.seq, "\t", rm.table_get("rules", "deposit") or "none", "\t",
		tostring(missing), tostring(rm.table_get("rules", "no such type")))
end
LUA
chmod 0644 "$T/rows.lua"
printf 'k01\tx\nk02\tx\n' >"$T/rows.tsv"
HANDLER="$T/rows.lua" RULES="$T/rules.tsv" SOURCE_PATH="$T/rows.tsv" write_config "$T/rows.ini"
"$RINGMASTER" -c "$T/rows.ini" -o source.follow=yes -o ringmaster.data_dir="$T/rows" \
	-o output.dir="$T/rows_out" -o output.dead_letter="$T/rows_dead.tsv" 2>"$T/rows.log" &
sup=$!
BG_PIDS+=($sup)
lines() { cat "$T"/rows_out/p*.tsv 2>/dev/null | wc -l; }
have_lines() { [ "$(lines)" -ge "$1" ]; }
wait_until 30 have_lines 2
sed -i 's/^deposit\t.*/deposit\t+1\t42\t0/' "$T/rules.tsv"
"$RINGCTL" -c "$T/rows.ini" reload >"$T/reload" 2>&1 || { cat "$T/reload"; fail "reload"; }
printf 'k03\tx\n' >>"$T/rows.tsv"
wait_until 30 have_lines 3
kill -TERM $sup
wait $sup || fail "exit status after SIGTERM"
printf '%s\n' "0	+1	1000000	0	nilnil" "6	+1	1000000	0	nilnil" "12	+1	42	0	nilnil" >"$T/want"
assert_same_file "rows before and after the reload" "$T/want" "$T/rows_out/p0.tsv"
ok "rm.table_get: a reloaded table is read anew; a missing row stays nil"
