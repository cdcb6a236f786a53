# Lua handlers: etc/ledger.lua gives the built-in ledger's output, state
# and dead letters on the same events, TSV and JSON lines with bad ones;
# the sandbox refuses io, os.execute, require, bytecode and ffi (lua_unsafe
# lets them through); an error in process dead-letters its event as
# lua_error, with its effects undone, and the worker goes on; a runaway
# call is stopped as lua_timeout, a state grown past lua_memory refused as
# lua_memory; a script that does not compile is refused by -t and at start
# with file:line.
. "$(dirname "$0")/lib.sh"
PARTITIONS=3
"$RINGCTL" gen events --events 20000 --keys 3000 --seed 7 >"$T/events.tsv"
"$RINGCTL" gen events --events 5000 --keys 500 --seed 8 --format jsonl >"$T/events.jsonl"
# Bad and odd lines the ledger sees: malformed payloads of each kind, JSON
# fields of the wrong kind, an amount beyond int64, duplicate fields.
{
	printf 'acct00000001\tdeposit\t12x\n'
	printf 'acct00000001\tdeposit\n'
	printf 'acct00000001\t\t5\n'
	printf 'acct00000001\tdeposit\t+5\n'
	printf 'acct00000001\tdeposit\t99999999999999999999999\n'
	printf 'acct00000001\tdeposit\t-9223372036854775809\n'
	printf 'acct00000001\tdeposit\t0000000000000000000000005\n'
	printf 'acct00000001\tdeposit\t007\n'
	printf 'acct00000001\tdeposit\t-0\n'
	printf 'acct00000001\tdeposit\t0\n'
	printf 'acct00000001\tdeposit\t00\n'
	printf 'acct00000001\twithdrawal\t-07\n'
	printf 'acct00000001\twithdrawal\t30\n'
	printf 'acct00000001\t{"type":"deposit","amount":7}\n'
	printf 'acct00000001\t{"type":"deposit","amount":7.5}\n'
	printf 'acct00000001\t{"type":"deposit","amount":"7"}\n'
	printf 'acct00000001\t{"type":5,"amount":7}\n'
	printf 'acct00000001\t{"type":"deposit","amount":7,"to":{}}\n'
	printf 'acct00000001\t{"type":"deposit","amount":7,"x":{"type":1}}\n'
	printf 'acct00000001\t{"type":"withdrawal","type":"deposit","amount":9}\n'
	printf 'acct00000001\t{"type":"deposit","amount":99999999999999999999}\n'
	printf 'acct00000001\t[1]\n'
	printf 'nosuchacct\tdeposit\t5\n'
} >"$T/odd.tsv"
cat "$T/odd.tsv" >>"$T/events.tsv"

# run NAME HANDLER [ringmaster options...]: a run in $T/NAME.
run() {
	local name=$1 handler=$2; shift 2
	mkdir -p "$T/$name"
	HANDLER=$handler write_config "$T/$name.ini"
	"$RINGMASTER" -c "$T/$name.ini" -o ringmaster.data_dir="$T/$name/data" \
		-o output.dir="$T/$name/out" -o output.dead_letter="$T/$name/dead.tsv" "$@" \
		2>"$T/$name.log" || { cat "$T/$name.log"; fail "run $name"; }
	"$RINGCTL" -c "$T/$name.ini" -o ringmaster.data_dir="$T/$name/data" "$@" dump-state \
		>"$T/$name/state"
}

# ---- ledger.lua equals the C ledger ----------------------------------------
run c ledger
run lua "$TOP/etc/ledger.lua"
assert_same_file "state, C vs Lua" "$T/c/state" "$T/lua/state"
for p in 0 1 2; do
	assert_same_file "output p$p, C vs Lua" "$T/c/out/p$p.tsv" "$T/lua/out/p$p.tsv"
done
assert_same_file "dead letters, C vs Lua" "$T/c/dead.tsv" "$T/lua/dead.tsv"
[ -s "$T/c/dead.tsv" ] || fail "the odd lines gave no dead letter"
j="-o source.format=jsonl -o source.key=account -o source.path=$T/events.jsonl"
run cj ledger $j
run luaj "$TOP/etc/ledger.lua" $j
assert_same_file "JSON lines: state, C vs Lua" "$T/cj/state" "$T/luaj/state"
assert_same_file "JSON lines: output, C vs Lua" <(cat "$T/cj/out"/p*.tsv) <(cat "$T/luaj/out"/p*.tsv)
ok "ledger.lua: the C ledger's output, state and dead letters, TSV and JSON lines"

# Balances past 2^53 take ledger.lua's exact path: a rule with a huge
# maximum and an account with a huge overdraft.
printf 'big\t+1\t100000000000000\t7\nsmall\t-1\t100000000000000\t3\n' >"$T/rules_big.tsv"
printf 'acctbig\tactive\t100000000000000\n' >"$T/accounts_big.tsv"
chmod 0644 "$T/rules_big.tsv" "$T/accounts_big.tsv"
: >"$T/big.tsv"
for i in $(seq 1 120); do printf 'acctbig\tbig\t100000000000000\n' >>"$T/big.tsv"; done
for i in $(seq 1 5); do printf 'acctbig\tsmall\t99999999999999\n' >>"$T/big.tsv"; done
b="-o source.path=$T/big.tsv -o table.rules.path=$T/rules_big.tsv"
b="$b -o table.accounts.path=$T/accounts_big.tsv"
run cbig ledger $b
run luabig "$TOP/etc/ledger.lua" $b
assert_same_file "big balances: state" "$T/cbig/state" "$T/luabig/state"
assert_same_file "big balances: output" <(cat "$T/cbig/out"/p*.tsv) <(cat "$T/luabig/out"/p*.tsv)
ok "ledger.lua: balances past 2^53 are exact"

# ---- scripts that go wrong -------------------------------------------------
# One event per key, in one partition, so the order is the file's.
: >"$T/few.tsv"
for i in $(seq 1 40); do printf 'k%02d\tx\n' "$i" >>"$T/few.tsv"; done
few="-o ringmaster.partitions=1 -o source.path=$T/few.tsv"

cat >"$T/err.lua" <<'LUA'
function process(ev)
	rm.state_put(ev.key, "touched")
	rm.emit("line " .. ev.key)
	rm.count("seen")
	if ev.key == "k07" or ev.key == "k21" then
		local t = nil
		return t.field -- an error, after effects that must be undone
	end
	return rm.OK
end
LUA
chmod 0644 "$T/err.lua"
run err "$T/err.lua" $few
assert_eq "lua_error dead letters" "lua_error lua_error " "$(cut -f2 "$T/err/dead.tsv" | tr '\n' ' ')"
grep -qF 'k07\tx' "$T/err/dead.tsv" || fail "k07 is not dead-lettered"
assert_eq "the others went through" 38 "$(cat "$T/err/out"/p*.tsv | wc -l)"
grep -q "^k07" "$T/err/state" && fail "k07's state change was not undone"
grep -q "lua_error: .*err.lua:7: attempt to index.*traceback" "$T/err.log" \
	|| { cat "$T/err.log"; fail "no message with file:line and traceback in the log"; }
grep -q "seen=38" "$T/err.log" || { cat "$T/err.log"; fail "counts of failed events not undone"; }
ok "lua_error: the event dead-lettered without its effects, the worker goes on"

# A sandboxed script reaches none of these; each is an error in process.
cat >"$T/sandbox.lua" <<'LUA'
local tries = {
	k01 = function() return io.open("/etc/passwd") end,
	k02 = function() return os.execute("true") end,
	k03 = function() return require("ffi") end,
	k04 = function() return load(string.dump(function() end)) end,
	k05 = function() return loadstring("return 1") end,
	k06 = function() return dofile("/etc/passwd") end,
	k07 = function() return getfenv(0) end,
	k08 = function() return ("x"):dump() end,
	k09 = function() return debug.getinfo(1) end,
	k10 = function() return package.loadlib("libc.so.6", "system") end,
	k11 = function() return jit.off() end,
	k12 = function() return os.getenv("HOME") end,
}
function process(ev)
	local f = tries[ev.key]
	if f then
		if f() == nil then error("refused without an error") end
	end
	rm.emit(ev.key .. " " .. tostring(math.floor(2.5)) .. string.format("%s", os.time() > 0))
end
LUA
chmod 0644 "$T/sandbox.lua"
run sandbox "$T/sandbox.lua" $few
assert_eq "every sandbox escape refused" 12 "$(grep -c 'lua_error' "$T/sandbox/dead.tsv")"
grep -q "refused without an error" "$T/sandbox.log" && fail "a refusal without an error"
assert_eq "the rest ran" 28 "$(cat "$T/sandbox/out"/p*.tsv | wc -l)"
# lua_unsafe = yes lets io through.
cat >"$T/unsafe.lua" <<'LUA'
function process(ev) rm.emit(ev.key .. " " .. type(io.open) .. " " .. type(require("ffi").C)) end
LUA
chmod 0644 "$T/unsafe.lua"
run unsafe "$T/unsafe.lua" $few -o handler.lua_unsafe=yes
grep -q "^k01 function userdata$" "$T/unsafe/out/p0.tsv" || fail "lua_unsafe = yes: no io or ffi"
ok "sandbox: io, os.execute, require, bytecode, debug, ffi refused; lua_unsafe = yes allows them"

# A runaway call: the interpreter's hook stops it, or (a loop LuaJIT has
# compiled) the guard ends the worker and the next dead-letters the event.
cat >"$T/loop.lua" <<'LUA'
function process(ev)
	if ev.key == "k05" then local n = 0 while true do n = n + 1 end end
	if ev.key == "k09" then
		local function f(i) if i > 0 then return f(i - 1) end return f(10) end
		f(10)
	end
	rm.emit(ev.key)
end
LUA
chmod 0644 "$T/loop.lua"
run loop "$T/loop.lua" $few -o handler.lua_timeout=200ms
assert_eq "lua_timeout dead letters" "lua_timeout lua_timeout " \
	"$(sort -n "$T/loop/dead.tsv" | cut -f2 | tr '\n' ' ')"
assert_eq "the rest ran" 38 "$(cat "$T/loop/out"/p*.tsv | wc -l)"
ok "lua_timeout: runaway calls stopped, their events dead-lettered"

# A state that grows without bound is refused at lua_memory.
cat >"$T/mem.lua" <<'LUA'
local keep = {}
function process(ev)
	if ev.key == "k03" then
		local t = {}
		for i = 1, 1e9 do t[i] = string.rep("x", 64) .. i end
	end
	rm.emit(ev.key)
end
LUA
chmod 0644 "$T/mem.lua"
run mem "$T/mem.lua" $few -o handler.lua_memory=16M
assert_eq "lua_memory dead letter" "lua_memory " "$(cut -f2 "$T/mem/dead.tsv" | tr '\n' ' ')"
grep -q "lua_memory: the Lua state would grow past lua_memory (16777216 bytes" "$T/mem.log" \
	|| { cat "$T/mem.log"; fail "no clear lua_memory message"; }
assert_eq "the rest ran" 39 "$(cat "$T/mem/out"/p*.tsv | wc -l)"
ok "lua_memory: the state is capped, the event dead-lettered with a clear message"

# ---- compile errors --------------------------------------------------------
printf 'function process(ev)\n\trm.emit(ev.key)\n\tlocal = 3\nend\n' >"$T/bad.lua"
chmod 0644 "$T/bad.lua"
HANDLER="$T/bad.lua" write_config "$T/bad.ini"
if "$RINGMASTER" -c "$T/bad.ini" -t 2>"$T/bad_t.log"; then fail "-t passed a broken script"; fi
grep -q "bad.lua:3: .*near '='" "$T/bad_t.log" || { cat "$T/bad_t.log"; fail "-t: no file:line"; }
grep -q "bad.ini:[0-9]*: \[worker\] handler" "$T/bad_t.log" || fail "-t: the setting's line"
if "$RINGMASTER" -c "$T/bad.ini" 2>"$T/bad_run.log"; then fail "started with a broken script"; fi
grep -q "bad.lua:3:" "$T/bad_run.log" || { cat "$T/bad_run.log"; fail "start: no file:line"; }
printf 'function proces(ev) end\n' >"$T/noproc.lua"
chmod 0644 "$T/noproc.lua"
HANDLER="$T/noproc.lua" write_config "$T/noproc.ini"
if "$RINGMASTER" -c "$T/noproc.ini" -t 2>"$T/noproc.log"; then fail "-t passed a script without process"; fi
grep -q "defines no function process" "$T/noproc.log" || fail "-t: no word about process"
# strict_modes: a script others can write is refused, as a .so is.
chmod 0666 "$T/err.lua"
HANDLER="$T/err.lua" write_config "$T/w.ini"
if "$RINGMASTER" -c "$T/w.ini" -t 2>"$T/w.log"; then fail "-t passed a writable script"; fi
grep -q "err.lua.*writable" "$T/w.log" || { cat "$T/w.log"; fail "no word about modes"; }
ok "compile errors: -t and start name file:line; a writable script is refused"
