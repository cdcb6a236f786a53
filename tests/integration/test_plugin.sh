# The example plugin, loaded with dlopen: counts per key, a [handler]
# parameter, and a clear refusal for a .so that is not a handler.
. "$(dirname "$0")/lib.sh"
so="$HANDLER_DIR/example_counter.so"
[ -f "$so" ] || fail "$so was not built"
printf 'a\tx\nb\tx\na\tx\nc\tx\na\tx\n' >"$T/events.tsv"
HANDLER=$so write_config "$T/t.ini" "[handler]" "prefix = cnt"
"$RINGMASTER" -c "$T/t.ini" --summary "$T/s.json" 2>"$T/log" || { cat "$T/log"; fail "run"; }
printf 'a\t3\nb\t1\nc\t1\n' >"$T/want_state"
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/got_state"
assert_same_file "plugin state" "$T/want_state" "$T/got_state"
all_output "$T/out" >"$T/got_out"
printf 'cnt a\t1\ncnt a\t2\ncnt a\t3\ncnt b\t1\ncnt c\t1\n' >"$T/want_out"
assert_same_file "plugin output" "$T/want_out" "$T/got_out"
assert_eq "counted" 5 "$(json_get "$T/s.json" counted)"
ok "example plugin"

# A shared object without rm_handler_entry is refused, by -t and at start.
cp "$so" "$T/copy.so"
printf 'int not_a_handler;\n' >"$T/bad.c"
if command -v cc >/dev/null; then
	cc -shared -fPIC -o "$T/bad.so" "$T/bad.c"
	set +e
	"$RINGMASTER" -t -c "$T/t.ini" -o worker.handler="$T/bad.so" 2>"$T/err"; rc=$?
	set -e
	assert_eq "bad plugin exit status" 78 $rc
	grep -q "no symbol 'rm_handler_entry'" "$T/err" || { cat "$T/err"; fail "message"; }
	ok "a .so without a handler is refused"
fi
