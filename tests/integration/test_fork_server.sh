# The fork server (supervisor/forksrv.h): every worker is forked by a
# single-threaded process made at start, and is the supervisor's child all
# the same.
#
#   1. ps: one "ringmaster: fork server (NAME)", the supervisor's child;
#      each worker's parent is the supervisor; tests that pgrep for
#      "ringmaster: worker" do not see the server.
#   2. SIGINT, SIGTERM, SIGHUP and SIGUSR1 sent to the server leave it
#      alive; a worker killed then is restarted, again the supervisor's
#      child.
#   3. After a reload that changes log_file and log_level, a restarted
#      worker logs where the supervisor logs now, at the new level (the
#      server's memory still holds the old ones).
#   4. A server stopped (SIGSTOP) does not answer: the restart is a failed
#      fork, retried with backoff; once it answers again (SIGCONT) the
#      worker it started too late is killed, the retry is served, and the
#      run ends with the state of an uninterrupted one.
#   5. A server killed: ringmaster stops, the workers drain and exit, no
#      restart, exit 71 with a message.
#   6. Ctrl-C at a terminal (SIGINT to the whole process group): a clean
#      stop, exit 0; the server did not die of it.
#   7. The supervisor SIGKILLed: the server goes with it; the workers drain
#      their rings and exit.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 40000 --keys 2000 --seed 5 >"$T/all.tsv"
head -n 20000 "$T/all.tsv" >"$T/events.tsv"
PARTITIONS=2 write_config "$T/t.ini" "[restart]" "backoff_initial = 50ms" "backoff_max = 200ms"
sed -i "s|^\[ringmaster\]\$|&\\nlog_file = $T/a.log|" "$T/t.ini"
ref_run ref "$T/t.ini" -o source.path="$T/all.tsv"

fs_pid() { pgrep -f "^ringmaster: fork server \\($NAME\\)"; }
ppid_of() { ps -o ppid= -p "$1" | tr -d ' '; }
processed() { "$RINGCTL" -c "$T/t.ini" status --json 2>/dev/null | jq -e '.processed'; }
processed_is() { [ "$(processed)" = "$1" ]; }
# Every worker running, each the supervisor's child.
workers_are_children() {
	local p pid
	for p in 0 1; do
		pid=$(worker_pid $p) || return 1
		[ "$(ppid_of "$pid")" = "$1" ] || return 1
	done
}
start() { # LOG: ringmaster following events.tsv in the background, in a group of its own
	setsid "$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>>"$1" &
	sup=$!
	BG_PIDS+=($sup)
	wait_until 20 workers_are_children $sup
}

# ---- 1. the process tree
start "$T/stderr.log"
fs=$(fs_pid) || fail "no process titled 'ringmaster: fork server ($NAME)'"
assert_eq "fork servers" 1 "$(fs_pid | wc -l)"
assert_eq "the fork server's parent" $sup "$(ppid_of "$fs")"
assert_eq "processes titled 'ringmaster: worker'" 2 "$(pgrep -fc "^ringmaster: worker [0-9]+ \($NAME\)")"
wait_until 30 processed_is 20000
ok "fork server pid $fs and both workers are children of the supervisor (pid $sup)"

# ---- 2. signals the supervisor handles do not end the server
for sig in INT TERM HUP USR1; do kill -$sig "$fs"; done
sleep 0.5
kill -0 "$fs" 2>/dev/null || fail "the fork server died of SIGINT, SIGTERM, SIGHUP or SIGUSR1"
old=$(worker_pid 0)
kill -KILL "$old"
wait_until 10 log_has "$T/a.log" "worker 0 (pid $old) ended: killed by signal 9"
wait_until 10 workers_are_children $sup
[ "$(worker_pid 0)" != "$old" ] || fail "worker 0 was not replaced"
ok "the server ignores INT, TERM, HUP, USR1; a killed worker's replacement is the supervisor's child"

# ---- 3. a restarted worker logs where and how the supervisor does now
sed -i "s|^log_file = .*|log_file = $T/b.log|; s|^log_level = .*|log_level = debug|" "$T/t.ini"
kill -HUP $sup
wait_until 10 log_has "$T/b.log" "reload done"
old=$(worker_pid 1)
kill -KILL "$old"
wait_until 10 log_has "$T/b.log" "level=debug proc=worker/1 pid=[0-9]* msg=\"worker started partition=1"
! log_has "$T/a.log" "worker started" || fail "a restarted worker logged to the old log file"
! log_has "$T/stderr.log" "worker started" || fail "a restarted worker logged to stderr"
ok "after a reload, a restarted worker logs to the new log_file, at the new log_level"

# ---- 4. a server that does not answer: a failed fork, retried
kill -STOP "$fs"
old=$(worker_pid 0)
kill -KILL "$old"
wait_until 20 log_has "$T/b.log" "cannot fork worker 0: the fork server did not answer in time; retrying"
kill -CONT "$fs"
wait_until 20 log_has "$T/b.log" "the fork server answered late: killing worker pid [0-9]* it started for partition 0"
wait_until 20 workers_are_children $sup
tail -n +20001 "$T/all.tsv" >>"$T/events.tsv"
wait_until 60 processed_is 40000
"$RINGCTL" -c "$T/t.ini" stop >/dev/null || fail "ringctl stop"
rc=0; wait $sup || rc=$?
assert_eq "exit status" 0 $rc
wait_until 10 workers_gone
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/run.state"
assert_same_file "state" "$T/ref.state" "$T/run.state"
same_outputs "$T/ref/out" "$T/out"
ok "a stopped server: the restart failed, was retried and served; state and outputs equal a run without"

# ---- 5. the server killed: no worker can be started safely any more
start "$T/stderr.log"
fs=$(fs_pid) || fail "no fork server"
kill -KILL "$fs"
rc=0; wait $sup || rc=$?
assert_eq "exit status when the fork server died" 71 $rc
log_has "$T/b.log" "the fork server (pid $fs) ended: killed by signal 9 .*: no worker can be started safely any more" ||
	{ tail "$T/b.log"; fail "no clear message for a dead fork server"; }
wait_until 10 workers_gone
ok "the fork server killed: ringmaster stopped, exit 71, the workers drained and exited"

# ---- 6. Ctrl-C: SIGINT to the whole process group
: >"$T/b.log"
start "$T/stderr.log"
fs=$(fs_pid) || fail "no fork server"
kill -INT -- -$sup
rc=0; wait $sup || rc=$?
assert_eq "exit status after SIGINT to the process group" 0 $rc
! log_has "$T/b.log" "fork server" || { cat "$T/b.log"; fail "the fork server died of SIGINT"; }
wait_until 10 workers_gone
wait_until 5 eval '! kill -0 $fs 2>/dev/null'
ok "SIGINT to the process group: a clean stop, exit 0"

# ---- 7. the supervisor SIGKILLed alone
start "$T/stderr.log"
fs=$(fs_pid) || fail "no fork server"
kill -KILL $sup
wait $sup 2>/dev/null || true
wait_until 5 eval '! kill -0 $fs 2>/dev/null'
wait_until 20 workers_gone
ok "the supervisor SIGKILLed: the fork server went with it, the workers drained and exited"
