# ringctl rescale N on a running instance (issue 18): a ledger case read
# with follow = yes, rescaled from 4 to 7 partitions while events flow,
# then to 2 once it waits for more, ends (SIGTERM) with the state and the
# output lines of an uninterrupted run, the supervisor's pid unchanged; a
# generate source rescaled mid-run, the same.
# Refused, with the reason: the count it runs, a count out of range, a
# stdin source, a Kafka source, and at the next start a data_dir whose INI
# was not updated (the partition message of old).
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 300000 --keys 3000 --seed 21 >"$T/all.tsv"
write_config "$T/t.ini"
ref_run ref "$T/t.ini" -o source.path="$T/all.tsv"
head -n 200000 "$T/all.tsv" >"$T/events.tsv"

"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes -o worker.batch_max=64 2>"$T/run.log" &
sup=$!
BG_PIDS+=("$sup")
ctl() { "$RINGCTL" -c "$T/t.ini" "$@"; }
status_field() { ctl status --json 2>/dev/null | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
partitions_are() { [ "$(status_field partitions)" = "$1" ]; }
processed_over() { [ "$(status_field processed)" -gt "$1" ]; }
ctl wait >/dev/null
wait_until 30 processed_over 1000

rc=0
ctl rescale 4 >"$T/same.out" 2>&1 || rc=$?
assert_eq "exit status of a rescale to the count it runs" 1 "$rc"
grep -q "rescale to 4 refused: the instance runs that many partitions already" "$T/same.out" ||
	fail "no same-count refusal: $(cat "$T/same.out")"
rc=0
ctl rescale 0 >"$T/zero.out" 2>&1 || rc=$?
assert_eq "exit status of rescale 0" 2 "$rc"
grep -q "'rescale': N must be 1..1024, got 0" "$T/zero.out" || fail "no range message: $(cat "$T/zero.out")"
ok "refused: the count it runs, a count out of range"

ctl rescale 7 >"$T/r7.out" || fail "rescale 7: $(cat "$T/r7.out")"
grep -q "rescaling from 4 to 7 partitions" "$T/r7.out" || fail "no rescale reply: $(cat "$T/r7.out")"
wait_until 120 partitions_are 7
kill -0 "$sup" || fail "the supervisor is gone"
log_has "$T/run.log" "re-split done keys=[0-9]* from_partitions=4 to_partitions=7" || fail "no re-split"
# Everything of the file so far, then the rest, then 2 partitions.
sed -n '200001,$p' "$T/all.tsv" >>"$T/events.tsv"
lag_is_0() { [ "$(status_field source_lag)" = 0 ]; }
wait_until 120 lag_is_0
ctl rescale 2 >/dev/null || fail "rescale 2"
wait_until 120 partitions_are 2
lines=$(wc -l <"$T/all.tsv")
done_all() { [ "$(all_output "$T/out" | wc -l)" -ge "$lines" ]; }
wait_until 120 done_all
kill -TERM "$sup"
wait "$sup" || fail "exit status $? after SIGTERM"
log_has "$T/run.log" "re-split done keys=[0-9]* from_partitions=7 to_partitions=2" || fail "no second re-split"
[ "$(grep -c 'started partitions=' "$T/run.log")" = 3 ] || fail "not three starts in one process"
[ "$(grep -o 'proc=supervisor pid=[0-9]*' "$T/run.log" | sort -u | wc -l)" = 1 ] ||
	fail "the supervisor's pid changed"
"$RINGCTL" -c "$T/t.ini" -o ringmaster.partitions=2 dump-state >"$T/state"
assert_same_file "state after live 4 -> 7 -> 2" "$T/ref.state" "$T/state"
all_output "$T/ref/out" >"$T/ref.out"
all_output "$T/out" >"$T/out.all"
assert_same_file "output lines of all generations" "$T/ref.out" "$T/out.all"
ok "ringctl rescale 7, then 2, while running: state and output lines equal an uninterrupted run's"

# A generate source, rescaled to 3 mid-run, ends where an uninterrupted run
# does (the run is finite: it ends by itself at 3 partitions).
# The test ledger with a pause per event, so that a fast machine does not
# finish the run before the rescale request; the reference runs without it.
cp "$TEST_HANDLER_DIR/faulty_ledger.so" "$T/h.so"
chmod 0755 "$T/h.so"
G=(-o source.type=generate -o source.events=400000 -o source.keys=5000 -o worker.handler="$T/h.so")
ref_run gref "$T/t.ini" "${G[@]}"
go=("${G[@]}" -o ringmaster.data_dir="$T/g/data" -o output.dir="$T/g/out"
	-o output.dead_letter="$T/g/dead.tsv" -o ringmaster.run_dir="$T/g/run" -o worker.batch_max=64
	-o handler.sleep_us=10)
"$RINGMASTER" -c "$T/t.ini" "${go[@]}" 2>"$T/g.log" &
gpid=$!
BG_PIDS+=("$gpid")
"$RINGCTL" -c "$T/t.ini" "${go[@]}" wait >/dev/null
gprocessed() { [ "$("$RINGCTL" -c "$T/t.ini" "${go[@]}" status --json 2>/dev/null |
	grep -o '"processed":[0-9]*' | cut -d: -f2)" -gt 1000 ]; }
wait_until 60 gprocessed
"$RINGCTL" -c "$T/t.ini" "${go[@]}" rescale 3 >/dev/null || fail "rescale of the generate source"
wait "$gpid" || fail "the generate run ended $?"
log_has "$T/g.log" "re-split done keys=[0-9]* from_partitions=4 to_partitions=3" ||
	fail "the generate run was not re-split (did it end first?)"
"$RINGCTL" -c "$T/t.ini" "${go[@]}" -o ringmaster.partitions=3 dump-state >"$T/g.state"
assert_same_file "state of a generate run rescaled mid-way" "$T/gref.state" "$T/g.state"
assert_same_file "output lines of the generate run" <(all_output "$T/gref/out") <(all_output "$T/g/out")
ok "a generate source rescaled mid-run ends with an uninterrupted run's state and output lines"

# The INI still says 4: its next start is refused as ever.
rc=0
"$RINGMASTER" -c "$T/t.ini" 2>"$T/again.log" || rc=$?
assert_eq "exit status of a start with the old count" 78 "$rc"
log_has "$T/again.log" "was made for 2 partitions, not 4" || fail "no partition message"
ok "a start with the INI's old count is refused"

# stdin: what the reader holds would be lost across the restart.
"$RINGMASTER" -c "$T/t.ini" -o source.path=- -o ringmaster.data_dir="$T/stdin" \
	-o output.dir="$T/stdin/out" -o output.dead_letter="$T/stdin/dead.tsv" <"$T/all.tsv" \
	2>"$T/stdin.log" &
spid=$!
BG_PIDS+=("$spid")
ctl wait >/dev/null
rc=0
ctl rescale 3 >"$T/stdin.out" 2>&1 || rc=$?
assert_eq "exit status of a rescale of a stdin source" 1 "$rc"
grep -q "rescale to 3 refused: a stdin source cannot be read again" "$T/stdin.out" ||
	fail "no stdin refusal: $(cat "$T/stdin.out")"
wait "$spid" || fail "the stdin instance did not end 0"
ok "refused: a stdin source"

# Kafka: the topic's partition count is the one.
. "$(dirname "$0")/kafka_lib.sh"
head -n 2000 "$T/all.tsv" >"$T/k.tsv"
kafka_start_mock "$T/k.tsv"
kafka_config k
kafka_run k
wait_until 120 processed_is k 2000
rc=0
"$RINGCTL" -c "$T/k.ini" rescale 8 >"$T/k.out" 2>&1 || rc=$?
assert_eq "exit status of a rescale with a Kafka source" 1 "$rc"
grep -q "rescale to 8 refused: with a Kafka source the partition count is the topic's" "$T/k.out" ||
	fail "no Kafka refusal: $(cat "$T/k.out")"
kafka_stop k
kafka_stop_mock
ok "refused: a Kafka source"

# A cut, not a drain: rings of 4M filled behind a handler that takes 1 ms an
# event (draining them would take a minute). The workers stop where they
# are, with events left in their rings, and the restarted instance reads
# those again from the cut: state and output lines are an uninterrupted
# run's. The INI loses its sleep_us before the request, so the instance
# started again runs at full speed.
C=(-o source.type=generate -o source.events=400000 -o source.keys=5000 -o worker.handler="$T/h.so"
	-o ringmaster.data_dir="$T/c/data" -o output.dir="$T/c/out"
	-o output.dead_letter="$T/c/dead.tsv" -o ringmaster.run_dir="$T/c/run" -o worker.batch_max=64
	-o worker.ring_size=4M)
write_config "$T/c.ini" "[handler]" "sleep_us = 1000"
"$RINGMASTER" -c "$T/c.ini" "${C[@]}" 2>"$T/c.log" &
cpid=$!
BG_PIDS+=("$cpid")
cctl() { "$RINGCTL" -c "$T/c.ini" "${C[@]}" "$@"; }
cctl wait >/dev/null
cprocessed() { [ "$(cctl status --json 2>/dev/null | grep -o '"processed":[0-9]*' | cut -d: -f2)" -gt 2000 ]; }
wait_until 60 cprocessed
write_config "$T/c.ini"
cctl rescale 3 >"$T/c.out" || fail "rescale with full rings: $(cat "$T/c.out")"
wait "$cpid" || fail "the run with full rings ended $?"
log_has "$T/c.log" "re-split done keys=[0-9]* from_partitions=4 to_partitions=3" ||
	fail "no re-split with full rings"
! grep -qi drain "$T/c.log" || fail "a drain with full rings: $(grep -i drain "$T/c.log" | head -3)"
log_has "$T/c.log" "stopped at the rescale's cut after seq=" 4 || fail "not every worker stopped at its cut"
left=$(grep -o "leaving [0-9]* bytes of events in the ring" "$T/c.log" | grep -vc "leaving 0 bytes")
assert_eq "workers that left events in their ring at the cut" 4 "$left"
stop_s=$(grep -o 'the resume position is the cut, seq=[0-9]* ([0-9.]* s' "$T/c.log" | sed -E 's/.*\(([0-9.]+) s/\1/')
[ -n "$stop_s" ] || fail "no cut recorded as the resume position"
awk -v s="$stop_s" 'BEGIN { exit !(s < 10) }' || fail "the workers took ${stop_s}s to stop at the cut"
cctl -o ringmaster.partitions=3 dump-state >"$T/c.state"
assert_same_file "state of a run cut with full rings" "$T/gref.state" "$T/c.state"
assert_same_file "output lines of a run cut with full rings" <(all_output "$T/gref/out") <(all_output "$T/c/out")
ok "full rings: the workers stop at the cut in ${stop_s}s, no drain; state and output lines equal an uninterrupted run's"

# A worker killed during the cut: the cut is given up, the rescale
# abandoned, and the instance goes on at 4 partitions to an uninterrupted
# run's end (batches of 64 events at 50 ms each: the kill comes first).
rm -rf "$T/c"
write_config "$T/c.ini" "[handler]" "sleep_us = 50000"
"$RINGMASTER" -c "$T/c.ini" "${C[@]}" 2>"$T/k.log" &
cpid=$!
BG_PIDS+=("$cpid")
cctl wait >/dev/null
sleep 0.5
write_config "$T/c.ini"
victim=$(worker_pid 1) || fail "no worker 1"
cctl rescale 3 >"$T/c.out" || fail "rescale to be killed: $(cat "$T/c.out")"
kill -KILL "$victim"
wait "$cpid" || fail "the run with a worker killed during the cut ended $?"
log_has "$T/k.log" "rescale to 3 abandoned: a worker ended during the cut" ||
	fail "the rescale was not abandoned: $(grep -i rescale "$T/k.log" | tail -5)"
! log_has "$T/k.log" "re-split done" || fail "re-split after a worker died during the cut"
[ "$(grep -c 'started partitions=4' "$T/k.log")" = 2 ] || fail "not started again with 4 partitions"
cctl dump-state >"$T/k.state"
assert_same_file "state after an abandoned cut" "$T/gref.state" "$T/k.state"
assert_same_file "output lines after an abandoned cut" <(all_output "$T/gref/out") <(all_output "$T/c/out")
ok "a worker killed during the cut: the rescale is abandoned, the run ends as an uninterrupted one"
