# log_file for logrotate: opened at start; SIGUSR1 (as nginx) and SIGHUP
# reopen it at its path, in the supervisor at once and in every worker
# before its next record, so nothing is written to the renamed file after
# the signal.
. "$(dirname "$0")/lib.sh"
cat >"$T/say.lua" <<'LUA'
function process(ev)
	rm.log(rm.LOG_WARN, "event " .. ev.key)
end
LUA
chmod go-w "$T/say.lua"
mkdir -p "$T/in"
printf 'first\tx\n' >"$T/in/1.tsv"
HANDLER=$T/say.lua write_config "$T/t.ini"
L=$T/rm.log
"$RINGMASTER" -c "$T/t.ini" -o source.type=spool -o source.dir="$T/in" -o source.follow=yes \
	-o ringmaster.log_file="$L" 2>"$T/stderr" &
pid=$!
BG_PIDS+=($pid)
wait_until 20 log_has "$L" "proc=worker/.*event first"
log_has "$L" "level=info proc=supervisor .*started partitions=" || fail "log_file not opened at start"
put() { printf '%s\tx\n' "$1" >"$T/in/.n" && mv "$T/in/.n" "$T/in/$1.tsv"; }
rotate() { # SIGNAL N: rename the log, signal, a worker logs
	mv "$L" "$L.$2"
	kill -"$1" $pid
	wait_until 10 log_has "$L" "level=info proc=supervisor .*log file reopened: $L"
	put "after-$1"
	wait_until 20 log_has "$L" "proc=worker/.*event after-$1"
	! grep -q "after-$1" "$L.$2" || fail "$1: written to the renamed file"
}
rotate USR1 1
rotate HUP 2
log_has "$L.1" "proc=worker/.*event first" || fail "the first file lost its records"
kill -TERM $pid
wait $pid || fail "exit status after SIGTERM"
# stderr holds the end-of-run summary, and no record
! grep -Eq "^[0-9-]+T[0-9:.]+Z " "$T/stderr" || { cat "$T/stderr"; fail "records on stderr with log_file set"; }
ok "log_file opened at start; SIGUSR1 and SIGHUP reopen it in the supervisor and the workers"

# log_format = json: one JSON object a record, the same names
rm -rf "$T/in"/*.tsv
printf 'j1\tx\n' >"$T/in/j.tsv"
"$RINGMASTER" -c "$T/t.ini" -o source.type=spool -o source.dir="$T/in" -o ringmaster.log_format=json \
	-o ringmaster.data_dir="$T/j/data" -o ringmaster.run_dir="$T/j/run" -o output.dir="$T/j/out" -o output.dead_letter="$T/j/dead.tsv" -o ringmaster.log_level=debug 2>"$T/json.log" || { cat "$T/json.log"; fail "json run"; }
records=$(grep -c '^{' "$T/json.log")
[ "$records" -gt 5 ] || { cat "$T/json.log"; fail "json: too few records"; }
grep '^{' "$T/json.log" | jq -s -e 'all(.[]; (.ts | type) == "string" and (.level | type) == "string"
	and (.proc | type) == "string" and (.pid | type) == "number" and (.msg | type) == "string")' >/dev/null \
	|| fail "json: a record without ts, level, proc, pid or msg"
[ "$(grep '^{' "$T/json.log" | jq -c . | wc -l)" = "$records" ] || fail "json: a record jq cannot parse"
grep '^{' "$T/json.log" | jq -s -e 'any(.[]; (.proc | startswith("worker/")) and .msg == "event j1")' >/dev/null \
	|| fail "json: the worker's record"
ok "log_format = json: every record a JSON object with ts, level, proc, pid, msg"
