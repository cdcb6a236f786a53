# Failing handlers: poison events in pairs and runs are each found by
# bisecting the failed batch and dead-lettered once, with every good event
# applied exactly once; a handler that fails on everything, whatever the
# way it fails, gets its partition marked failed while the rest goes on;
# `ringctl restart-worker` resumes it; events held back while it failed are
# redone by the next start.
. "$(dirname "$0")/lib.sh"
FAULTY=$TEST_HANDLER_DIR/faulty_ledger.so

# ---- poison events back to back, and a run of them ----
"$RINGCTL" gen events --events 6000 --keys 500 --seed 12 >"$T/base.tsv"
poison='acct00000007	deposit	777'
{
	head -n 1000 "$T/base.tsv"
	printf '%s\n%s\n' "$poison" "$poison" # the pair from the bug report
	sed -n 1001,3000p "$T/base.tsv"
	for i in 1 2 3 4 5; do printf 'acct0000001%s\tdeposit\t777\n' $i; done
	tail -n +3001 "$T/base.tsv"
	printf '%s\n' "$poison" # the last event of the file
} >"$T/events.tsv"
HANDLER=$FAULTY write_config "$T/t.ini" \
	"[handler]" "crash_payload = deposit	777" \
	"[restart]" "backoff_initial = 5ms" "backoff_max = 40ms"
"$RINGMASTER" -c "$T/t.ini" --summary "$T/s.json" 2>"$T/log" || { cat "$T/log"; fail "run"; }
assert_eq "poison dead letters" 8 "$(grep -c '	poison	acct0000001\?[0-9]*\\tdeposit\\t777$' "$T/dead.tsv")"
assert_eq "distinct poison seqs" 8 "$(cut -f1 "$T/dead.tsv" | sort -u | wc -l)"
assert_eq "processed" 6008 "$(json_get "$T/s.json" processed)"
grep -q "retrying them [0-9]* at a time" "$T/log" || fail "no bisection in the log"
SOURCE_PATH=$T/base.tsv write_config "$T/ref.ini"
ref_run ref "$T/ref.ini"
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/got.state"
assert_same_file "state (every good event applied once)" "$T/ref.state" "$T/got.state"
deaths=$(grep -c 'ended: killed by signal 6' "$T/log")
ok "8 poison events (a pair, a run of 5, the last line) found and dead-lettered; $deaths deaths"

# ---- a slow but healthy handler is never killed by the watchdog ----
head -n 1500 "$T/base.tsv" >"$T/slow.tsv"
HANDLER=$FAULTY PARTITIONS=1 SOURCE_PATH=$T/slow.tsv write_config "$T/slow.ini" \
	"[handler]" "sleep_us = 2000"
"$RINGMASTER" -c "$T/slow.ini" -o ringmaster.data_dir="$T/slow" -o output.dir="$T/slowout" \
	-o output.dead_letter="$T/slowdead.tsv" -o worker.watchdog=1s --summary "$T/slow.json" \
	2>"$T/slow.log" || { cat "$T/slow.log"; fail "slow run"; }
! grep -q "made no progress\|ended:" "$T/slow.log" || { cat "$T/slow.log"; fail "the slow handler was killed"; }
[ ! -s "$T/slowdead.tsv" ] || fail "the slow run dead-lettered: $(cat "$T/slowdead.tsv")"
assert_eq "slow run processed" 1500 "$(json_get "$T/slow.json" processed)"
ok "a handler slower than batch_max x 2 ms per watchdog second was never killed"

# ---- a hang in a large batch: the watchdog kill bisects it ----
{ head -n 1200 "$T/base.tsv"; printf 'acct00000001\tdeposit\t999\n'; sed -n 1201,1500p "$T/base.tsv"; } >"$T/hang.tsv"
HANDLER=$FAULTY PARTITIONS=1 SOURCE_PATH=$T/hang.tsv write_config "$T/hang.ini" \
	"[handler]" "hang_payload = deposit	999" "[restart]" "backoff_initial = 5ms" "poison_after = 2"
"$RINGMASTER" -c "$T/hang.ini" -o ringmaster.data_dir="$T/hang" -o output.dir="$T/hangout" \
	-o output.dead_letter="$T/hangdead.tsv" -o worker.watchdog=500ms --summary "$T/hang.json" \
	2>"$T/hang.log" || { cat "$T/hang.log"; fail "hang run"; }
log_has "$T/hang.log" "made no progress" 2 || { cat "$T/hang.log"; fail "the watchdog did not fire twice"; }
grep -q "retrying them [0-9]* at a time" "$T/hang.log" || fail "the watchdog kill did not shrink the batches"
assert_eq "hang dead letters" 1 "$(wc -l <"$T/hangdead.tsv")"
grep -q "	poison	acct00000001\\\\tdeposit\\\\t999$" "$T/hangdead.tsv" || fail "not the hanging event"
assert_eq "hang run processed" 1501 "$(json_get "$T/hang.json" processed)"
ok "a hang inside a large batch: watchdog kill, smaller batches, only the hung event dead-lettered"

# ---- a handler that fails on everything, every way it can ----
# Partition 1 fails on every event; partition 0 is healthy and must finish.
head -n 2000 "$T/base.tsv" >"$T/two.tsv"
PARTITIONS=2 SOURCE_PATH=$T/two.tsv write_config "$T/tworef.ini"
ref_run tworef "$T/tworef.ini" --summary "$T/tworef.json"
p0_total=$(grep -o '"partition":0,"processed":[0-9]*' "$T/tworef.json" | grep -o '[0-9]*$')
for mode in abort exit0 _exit0 error unknown; do
	d=$T/fail-$mode
	HANDLER=$FAULTY PARTITIONS=2 SOURCE_PATH=$T/two.tsv write_config "$d.ini" \
		"[handler]" "fail_mode = $mode" "fail_partition = 1" \
		"[restart]" "backoff_initial = 2ms" "backoff_max = 20ms" "poison_after = 2" "fail_after = 4"
	rc=0
	timeout 120 "$RINGMASTER" -c "$d.ini" -o ringmaster.data_dir="$d/data" -o output.dir="$d/out" \
		-o output.dead_letter="$d/dead.tsv" -o ringmaster.run_dir="$d/run" \
		--summary "$d.json" 2>"$d.log" || rc=$?
	[ $rc = 1 ] || { tail -20 "$d.log"; fail "$mode: exit $rc, not 1"; }
	log_has "$d.log" "level=error proc=supervisor .*partition 1 failed: its handler could not finish 4 events in a row" ||
		{ tail -20 "$d.log"; fail "$mode: no error naming the failed partition"; }
	grep -q '"failed_partitions":\[1\]' "$d.json" || fail "$mode: summary: $(cat "$d.json")"
	grep -q 'failed partitions: p1 (handler)' "$d.log" || fail "$mode: the text summary does not name p1"
	assert_eq "$mode: poison dead letters" 3 "$(grep -c '	poison	' "$d/dead.tsv")"
	got=$(grep -o '"partition":0,"processed":[0-9]*' "$d.json" | grep -o '[0-9]*$')
	assert_eq "$mode: partition 0 processed" "$p0_total" "$got"
	ok "fail_mode=$mode: partition 1 failed after 4 events in a row (3 dead-lettered), partition 0 finished"
done

# ---- restart-worker resumes a failed partition; held events redone ----
# A small ring, so that partition 1's ring fills while it is failed and
# later events are held back.
d=$T/resume
"$RINGCTL" gen events --events 20000 --keys 500 --seed 13 >"$T/grow.tsv"
HANDLER=$FAULTY PARTITIONS=2 SOURCE_PATH=$T/grow.tsv RING_SIZE=256K write_config "$d.ini" \
	"[handler]" "fail_mode = error" "fail_partition = 1" \
	"[restart]" "backoff_initial = 2ms" "backoff_max = 20ms" "poison_after = 1" "fail_after = 3"
"$RINGMASTER" -c "$d.ini" -o source.follow=yes -o ringmaster.data_dir="$d/data" -o output.dir="$d/out" \
	-o output.dead_letter="$d/dead.tsv" -o ringmaster.run_dir="$d/run" 2>"$d.log" &
BG_PIDS+=($!)
pid=$!
# ask WHAT FILTER: jq -e FILTER on `ringctl --json WHAT` (false while the
# control socket is not up: jq -e on no input would succeed).
ask() {
	local out
	out=$("$RINGCTL" -c "$d.ini" -o ringmaster.run_dir="$d/run" --json "$1") && jq -e "$2" <<<"$out"
}
wait_until 60 ask workers '.[1].state == "failed"'
wait_until 60 ask status '.held > 0'
ask status '.failed_partitions == 1' >/dev/null || fail "status does not count the failed partition"
"$RINGCTL" -c "$d.ini" -o ringmaster.run_dir="$d/run" metrics | grep -q '^ringmaster_worker_failed{.*partition="1".*} 1' ||
	fail "metrics do not show partition 1 failed"
ok "partition 1 failed and shows as failed (workers, status, metrics); its events are held back"
# Fix the handler (a live reload of [handler]), then resume the partition.
sed -i '/^fail_mode = /d' "$d.ini"
"$RINGCTL" -c "$d.ini" -o ringmaster.run_dir="$d/run" reload >/dev/null || fail "reload"
msg=$("$RINGCTL" -c "$d.ini" -o ringmaster.run_dir="$d/run" restart-worker 1) || fail "restart-worker: $msg"
case $msg in *"resumes partition 1"*"held back"*) ;; *) fail "restart-worker said: $msg" ;; esac
wait_until 60 ask workers '.[1].state == "running" and .[1].lag_records == 0'
kill -TERM $pid
wait $pid && rc=0 || rc=$?
assert_eq "exit status with events held back" 1 "$rc"
# The next start redoes what was held back: the state is the reference's.
"$RINGMASTER" -c "$d.ini" -o ringmaster.data_dir="$d/data" -o output.dir="$d/out" \
	-o output.dead_letter="$d/dead.tsv" -o ringmaster.run_dir="$d/run" 2>>"$d.log" ||
	{ tail -20 "$d.log"; fail "the second run"; }
# The two events dead-lettered before the failure are missing from the
# state: compare with a reference that never saw them.
cut -f1 "$d/dead.tsv" | sort -n >"$T/dead.seqs"
assert_eq "dead letters of the resumed run" 2 "$(wc -l <"$T/dead.seqs")"
LC_ALL=C awk -v F="$T/dead.seqs" 'BEGIN { pos = 0; while ((getline s < F) > 0) skip[s] = 1 }
	{ if (!((pos) in skip)) print; pos += length($0) + 1 }' "$T/grow.tsv" >"$T/grow-minus.tsv"
SOURCE_PATH=$T/grow-minus.tsv PARTITIONS=2 write_config "$T/ref3.ini"
ref_run ref3 "$T/ref3.ini"
"$RINGCTL" -c "$d.ini" -o ringmaster.data_dir="$d/data" dump-state >"$T/resume.state"
assert_same_file "state after resume and restart" "$T/ref3.state" "$T/resume.state"
ok "restart-worker resumed partition 1; the next start redid its held events: nothing lost"
