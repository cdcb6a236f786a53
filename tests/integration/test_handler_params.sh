# A [handler] setting the handler never reads (a typo: limt = 3) is warned
# about, naming its line, by ringmaster -t and at start, for a .so that
# declares what it reads (rm_handler_params), the built-in ledger (which
# reads none) and a Lua script's params table; not for a .so that does not
# say. The configuration is still ok (exit 0): it is a warning.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 100 --keys 10 >"$T/events.tsv"
cp "$TOP/etc/counter.lua" "$T/counter.lua"
chmod go-w "$T/counter.lua"
check() { # WHAT HANDLER WANT_LINES: -t warns exactly about WANT_LINES
	local what=$1 handler=$2 want=$3
	HANDLER=$handler write_config "$T/$what.ini" "[handler]" "prefix = p" "tag = t" "limt = 3"
	"$RINGMASTER" -c "$T/$what.ini" -t >"$T/$what.out" 2>"$T/$what.err" \
		|| { cat "$T/$what.err"; fail "$what: -t refused"; }
	assert_eq "$what: -t warnings" "$want" "$(cat "$T/$what.err")"
}
I=$T
check so "$HANDLER_DIR/example_counter.so" \
	"$I/so.ini:34: [handler] tag: the handler never reads it (it reads: prefix)
$I/so.ini:35: [handler] limt: the handler never reads it (it reads: prefix)"
check ledger ledger \
	"$I/ledger.ini:33: [handler] prefix: the handler never reads it (it reads: no [handler] setting)
$I/ledger.ini:34: [handler] tag: the handler never reads it (it reads: no [handler] setting)
$I/ledger.ini:35: [handler] limt: the handler never reads it (it reads: no [handler] setting)"
check lua "$T/counter.lua" \
	"$I/lua.ini:33: [handler] prefix: the handler never reads it (it reads: lua_unsafe lua_timeout lua_memory tag)
$I/lua.ini:35: [handler] limt: the handler never reads it (it reads: lua_unsafe lua_timeout lua_memory tag)"
check undeclared "$TEST_HANDLER_DIR/ctor.so" ""
ok "-t warns about each [handler] setting a declaring handler never reads, naming its line"
"$RINGMASTER" -c "$T/so.ini" 2>"$T/run.log" || { cat "$T/run.log"; fail "run"; }
log_has "$T/run.log" "level=warn proc=supervisor .*so.ini:35: \[handler\] limt: the handler never reads it" \
	|| { cat "$T/run.log"; fail "no warning at start"; }
ok "and so does a start, at warn level"
