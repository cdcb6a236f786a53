# Files others could have changed are refused (like sshd's StrictModes):
# the config, a table, a handler .so; a run_dir open to others is closed.
# strict_modes = no relaxes it.
. "$(dirname "$0")/lib.sh"
printf 'acct00000001\tdeposit\t100\n' >"$T/events.tsv"
cp "$TOP/etc/rules.tsv" "$T/rules.tsv"
RULES=$T/rules.tsv write_config "$T/t.ini"
refused() { # what, then the ringmaster arguments
	local what=$1; shift
	set +e
	"$RINGMASTER" "$@" >"$T/out.txt" 2>&1; local rc=$?
	set -e
	[ $rc -ne 0 ] || fail "$what was accepted"
	grep -q "writable by group or others" "$T/out.txt" || { cat "$T/out.txt"; fail "$what: no clear message"; }
	grep -q "chmod go-w" "$T/out.txt" || fail "$what: the message does not say how to fix it"
}
chmod 0666 "$T/t.ini"
refused "a world-writable config (-t)" -t -c "$T/t.ini"
refused "a world-writable config" -c "$T/t.ini"
chmod 0644 "$T/t.ini"; chmod 0664 "$T/rules.tsv"
refused "a group-writable table" -c "$T/t.ini"
chmod 0644 "$T/rules.tsv"
cp "$HANDLER_DIR/example_counter.so" "$T/h.so"; chmod 0777 "$T/h.so"
refused "a world-writable handler" -t -c "$T/t.ini" -o worker.handler="$T/h.so"
chmod 0755 "$T/h.so"
"$RINGMASTER" -t -c "$T/t.ini" -o worker.handler="$T/h.so" >/dev/null || fail "a safe handler was refused"
chmod 0666 "$T/t.ini"
"$RINGMASTER" -t -c "$T/t.ini" -o ringmaster.strict_modes=no >/dev/null || fail "strict_modes = no"
chmod 0644 "$T/t.ini"
ok "unsafe files refused, with the fix in the message"

mkdir -p "$T/run"; chmod 0755 "$T/run"
"$RINGMASTER" -c "$T/t.ini" 2>"$T/log" || { cat "$T/log"; fail "run"; }
assert_eq "run_dir mode after start" 700 "$(stat -c %a "$T/run")"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	chown nobody "$T/run"
	set +e; "$RINGMASTER" -c "$T/t.ini" 2>"$T/log2"; rc=$?; set -e
	[ $rc -ne 0 ] || fail "a run_dir of another user was accepted"
	grep -q "belongs to uid" "$T/log2" || { cat "$T/log2"; fail "message for run_dir owner"; }
	ok "a run_dir owned by another user is refused"
fi

# a reload with a now-unsafe table keeps the old config
printf 'acct00000001\tdeposit\t100\n' >"$T/events2.tsv"
"$RINGMASTER" -c "$T/t.ini" -o source.path="$T/events2.tsv" -o source.follow=yes \
	-o ringmaster.data_dir="$T/d2" -o output.dir="$T/out2" -o output.dead_letter="$T/d2.dead" -o ringmaster.run_dir="$T/r2" 2>"$T/log3" &
BG_PIDS+=($!)
wait_until 10 log_has "$T/log3" "started partitions"
chmod 0666 "$T/rules.tsv"
kill -HUP "${BG_PIDS[0]}"
wait_until 10 log_has "$T/log3" "reload failed: .*rules.tsv is writable by group or others"
kill -TERM "${BG_PIDS[0]}"; wait "${BG_PIDS[0]}" || fail "exit after SIGTERM"
ok "a reload with an unsafe table is refused"
