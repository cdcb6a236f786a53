# A short run under valgrind's memcheck, the supervisor, its fork server and
# its workers alike: workers are forked without exec, so valgrind follows
# each one into its own log ($T/vg.PID). 20,000 generated events and a few malformed lines
# go through 2 partitions from a followed file; while it runs, ringctl asks
# for status, workers and metrics, a SIGHUP reloads the config, and SIGTERM
# stops it. Every process must end with "ERROR SUMMARY: 0 errors" (leaks of
# definitely and possibly lost memory count as errors), no worker may have
# died (valgrind makes a process with errors exit 1, which the supervisor
# would see as a crash), and the output must equal a run without valgrind.
# Suppressions: tests/valgrind.supp, each entry justified there. Skipped in
# the ASan build: valgrind cannot run a binary built with ASan, and ASan
# checks the same things there.
. "$(dirname "$0")/lib.sh"
if [ "${ASAN:-}" = 1 ]; then
	ok "skipped under ASan (the ASan build runs every test under its own checks)"
	exit 0
fi
command -v valgrind >/dev/null || fail "valgrind is not installed: run 'make deps'"

EVENTS=20000
"$RINGCTL" gen events --events $EVENTS --keys 2000 --seed 7 >"$T/events.tsv"
printf 'no delimiter\n\tempty key\nacct1\tdeposit\t12x\n' >>"$T/events.tsv"
lines=$((EVENTS + 3))

# The reference: the same file without valgrind.
mkdir "$T/ref"
PARTITIONS=2 write_config "$T/t.ini"
ref="-o ringmaster.data_dir=$T/ref/data -o output.dir=$T/ref/out -o output.dead_letter=$T/ref/dead.tsv"
"$RINGMASTER" -c "$T/t.ini" $ref -o ringmaster.run_dir="$T/ref/run" 2>"$T/ref.log" \
	|| { cat "$T/ref.log"; fail "reference run"; }

valgrind --tool=memcheck --leak-check=full --error-exitcode=1 --trace-children=no \
	--child-silent-after-fork=no --num-callers=30 \
	--suppressions="$TOP/tests/valgrind.supp" --log-file="$T/vg.%p" \
	"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log" &
vg_pid=$!
BG_PIDS+=("$vg_pid")
sock=$T/run/control.sock

# A worker that ends (valgrind found errors, or it crashed) would be
# restarted for ever: stop waiting and fail at once.
worker_died() { grep -q "worker [0-9]* (pid [0-9]*) ended: " "$T/log"; }
no_worker_died() {
	! worker_died || { cat "$T/log" "$T"/vg.* >&2; fail "a worker died"; }
}
all_taken_or_died() {
	local s
	worker_died && return 0
	s=$("$RINGCTL" -s "$sock" status --json) || return 1
	jq -e ".events_read == $lines and .processed == .dispatched" <<<"$s" >/dev/null
}
wait_until 120 all_taken_or_died
no_worker_died
"$RINGCTL" -s "$sock" workers >/dev/null || fail "ringctl workers"
"$RINGCTL" -s "$sock" metrics | grep -q '^ringmaster_' || fail "ringctl metrics"
kill -HUP "$vg_pid"
wait_until 60 log_has "$T/log" "reload done generation=2"
kill -TERM "$vg_pid"
rc=0
wait "$vg_pid" || rc=$?
no_worker_died
[ $rc -eq 0 ] || { cat "$T/log"; grep -h -A30 "HEAP SUMMARY\|Invalid\|uninitialised" "$T"/vg.* >&2 || :
	fail "ringmaster under valgrind exited $rc"; }

# One log per process, each clean: the supervisor's, the fork server's
# (its child, and the parent of the others), an intermediate process's per
# worker started (the fork server's children) and one per worker (forked
# by an intermediate; its parent as valgrind saw it may be the supervisor
# already, after the intermediate's exit).
[ -f "$T/vg.$vg_pid" ] || fail "no valgrind log for the supervisor"
server=
for f in $(grep -l "Parent PID: $vg_pid\$" "$T"/vg.*); do
	grep -q "Parent PID: ${f##*.}\$" "$T"/vg.* && server=${f##*.}
done
[ -n "$server" ] || fail "no valgrind log for the fork server"
middles=$(grep -l "Parent PID: $server\$" "$T"/vg.* | wc -l)
[ "$middles" -eq 2 ] || fail "expected valgrind logs of 2 intermediate processes, found $middles"
workers=$(($(ls "$T"/vg.* | wc -l) - 2 - middles))
[ "$workers" -eq 2 ] || fail "expected valgrind logs of 2 workers, found $workers"
for f in "$T"/vg.*; do
	grep -q "ERROR SUMMARY: 0 errors" "$f" || { cat "$f" >&2; fail "valgrind errors in ${f##*/}"; }
done

same_outputs "$T/ref/out" "$T/out"
# The supervisor and the workers append to it as they go: compare sorted.
sort "$T/ref/dead.tsv" >"$T/ref/dead.sorted"
sort "$T/dead.tsv" >"$T/dead.sorted"
assert_same_file "dead letters" "$T/ref/dead.sorted" "$T/dead.sorted"
[ "$(wc -l <"$T/dead.tsv")" -eq 3 ] || fail "expected 3 dead letters"
ok "supervisor, fork server and 2 workers under valgrind: 0 errors, no leaks, same output as without"
