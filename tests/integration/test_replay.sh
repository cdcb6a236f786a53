# ringctl replay: events a handler dead-lettered for want of a table row are
# sent through again. Before the table is fixed they are dead-lettered again
# under their original seqs; after, the state equals a run with the fixed
# table from the start and the output lines carry the original seqs.
# Replaying the file again (even after a crash in the middle of a replay)
# applies nothing twice, a grown file sends only its new lines, cut or
# malformed lines are refused with file:line, and a replay is refused while
# a partition is failed and with a Kafka source.
. "$(dirname "$0")/lib.sh"

# A handler that needs the payload's row in the accounts table: without it
# the event is dead-lettered (no_account). Its output line depends on the
# event alone, so the union of outputs is comparable line for line.
cat >"$T/rate.lua" <<'LUA'
function process(ev)
	local rate = rm.table_get("accounts", ev.payload)
	if not rate then
		return rm.reject("no_account")
	end
	local n = tonumber(rm.state_get(ev.key) or "0") + tonumber(rate)
	rm.state_put(ev.key, tostring(n))
	rm.emit(string.format("%d\t%s\t%s\t%s", ev.seq, ev.key, ev.payload, rate))
end
LUA
for i in 0 1 2 3 4 5 6 7 8 9; do printf 'a%d\t%d\n' "$i" $((i + 1)); done >"$T/fixed.tsv"
grep -v '^a7	' "$T/fixed.tsv" >"$T/accounts.tsv"
awk 'BEGIN { for (i = 0; i < 3000; i++) printf "k%d\ta%d\n", i % 53, (i * 7) % 10 }' >"$T/events.tsv"
missing=$(grep -c '	a7$' "$T/events.tsv")

HANDLER=$T/rate.lua ACCOUNTS=$T/fixed.tsv PARTITIONS=3 write_config "$T/ref.ini"
ref_run ref "$T/ref.ini"

HANDLER=$T/rate.lua ACCOUNTS=$T/accounts.tsv PARTITIONS=3 write_config "$T/t.ini"
CTL=("$RINGCTL" -c "$T/t.ini")
start() {
	"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>>"$T/log" &
	BG_PIDS+=($!)
	"${CTL[@]}" wait >/dev/null
}
lines() { [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
start
wait_until 30 lines "$T/dead.tsv" "$missing"
assert_eq "dead letters" "$missing" "$(grep -c '	no_account	' "$T/dead.tsv")"

# Replayed before the table is fixed, they fail again: dead-lettered
# again, each under its original seq, as the same line.
cp "$T/dead.tsv" "$T/dead1.tsv"
out=$("${CTL[@]}" replay "$T/dead1.tsv") || fail "replay: $out"
assert_eq "replay reply" "replay 1 of $T/dead1.tsv: sending $missing events (seqs 9223373136366403584..9223374235878031359), refused 0 (0 cut)" "$out"
wait_until 30 lines "$T/dead.tsv" $((2 * missing))
wait_until 30 log_has "$T/log" "replay 1 of $T/dead1.tsv: every event durable in its shard"
tail -n "$missing" "$T/dead.tsv" | LC_ALL=C sort >"$T/again"
LC_ALL=C sort "$T/dead1.tsv" >"$T/first"
assert_same_file "dead-lettered again" "$T/first" "$T/again"

# Fix the table, reload, replay the dead-letter file as it is now: it
# begins with replay 1's file, so only the lines after it are sent.
cp "$T/fixed.tsv" "$T/accounts.tsv"
"${CTL[@]}" reload >/dev/null || fail "reload"
out=$("${CTL[@]}" replay "$T/dead.tsv") || fail "replay: $out"
assert_eq "replay reply" "replay 2 of $T/dead.tsv: sending $missing events (seqs 9223374235878031360..9223375335389659135), refused 0 (0 cut), $missing lines were replay 1's" "$out"
wait_until 30 log_has "$T/log" "replay 2 of $T/dead.tsv: every event durable in its shard"

# The same file again: nothing to send.
out=$("${CTL[@]}" replay "$T/dead.tsv") || fail "replay again: $out"
assert_eq "replay again" "$T/dead.tsv is replay 2, durable in every shard: nothing to send" "$out"

# The file with lines added after it: a cut line and one that is no dead
# letter are refused by line number, the lines of replay 2 are not sent.
{ cat "$T/dead.tsv"; printf '5\tpoison\tk1\\ta1\ttruncated=2000000\n'; printf 'garbage\n'; } >"$T/dead2.tsv"
out=$("${CTL[@]}" replay "$T/dead2.tsv") || fail "replay grown: $out"
n=$((2 * missing + 1))
printf '%s\n' "replay 3 of $T/dead2.tsv: sending 0 events (seqs 9223375335389659136..9223376434901286911), refused 2 (1 cut), $((2 * missing)) lines were replay 2's" \
	"$T/dead2.tsv:$n: a cut line (truncated=2000000): not the whole event: not sent" \
	"$T/dead2.tsv:$((n + 1)): not a dead-letter line: not sent" >"$T/expected_reply"
printf '%s\n' "$out" >"$T/reply"
assert_same_file "reply to a grown file" "$T/expected_reply" "$T/reply"

"${CTL[@]}" stop >/dev/null
wait "${BG_PIDS[0]}" || fail "exit status"
"${CTL[@]}" dump-state >"$T/state"
assert_same_file "state after the replay" "$T/ref.state" "$T/state"
all_output "$T/ref/out" >"$T/ref_out"
all_output "$T/out" >"$T/out_all"
assert_same_file "output lines (original seqs)" "$T/ref_out" "$T/out_all"
ok "replay: state and output equal a run with the fixed table, nothing applied twice"

# A crash in the middle of a replay: with sync_interval = 1h nothing is
# known durable, so the replay stays open. After a restart another file is
# refused, and the same file again is replay 1 again: the shards skip
# what they applied before the crash.
rm -rf "$T/data" "$T/out" "$T/run" "$T/dead.tsv" "$T/dead.tsv.owner" "$T/out" "$T/.dead.tsv.owner"
grep -v '^a7	' "$T/fixed.tsv" >"$T/accounts.tsv"
HANDLER=$T/rate.lua ACCOUNTS=$T/accounts.tsv PARTITIONS=3 write_config "$T/t.ini"
start() {
	"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes -o store.sync_interval=1h 2>>"$T/log2" &
	BG_PIDS+=($!)
	"${CTL[@]}" wait >/dev/null
}
start
wait_until 30 lines "$T/dead.tsv" "$missing"
cp "$T/fixed.tsv" "$T/accounts.tsv"
"${CTL[@]}" reload >/dev/null || fail "reload"
cp "$T/dead.tsv" "$T/dead3.tsv"
out=$("${CTL[@]}" replay "$T/dead3.tsv") || fail "replay: $out"
echo "$out" | grep -q "^replay 1 of $T/dead3.tsv: sending $missing events" || fail "replay reply: $out"
out_lines() { [ "$(cat "$T"/out/p*.tsv | wc -l)" -ge 3000 ]; }
wait_until 30 out_lines
kill -KILL "${BG_PIDS[-1]}"
wait "${BG_PIDS[-1]}" 2>/dev/null || true
pkill -KILL -f "^ringmaster: (worker [0-9]+|fork server) \($NAME\)" || true
wait_until 10 workers_gone
# Were the file lost, forget-replay closes the replay in a stopped data_dir
# (on a copy here: this one replays the file again below).
cp -a "$T/data" "$T/data_copy"
out=$("${CTL[@]}" -o ringmaster.data_dir="$T/data_copy" forget-replay 2 2>&1) && fail "forgot replay 2: $out"
assert_eq "forget-replay 2" "ringctl: replay 2 is not open (replay 1 is)" "$out"
out=$("${CTL[@]}" -o ringmaster.data_dir="$T/data_copy" forget-replay 1) || fail "forget-replay 1: $out"
assert_eq "forget-replay 1" "replay 1 ($T/dead3.tsv) forgotten: the events it applied stay applied, the others are not; another file may be replayed now" "$out"
out=$("${CTL[@]}" -o ringmaster.data_dir="$T/data_copy" forget-replay 1 2>&1) && fail "forgot replay 1 twice"
assert_eq "forget-replay again" "ringctl: replay 1 is not open (none is)" "$out"
start
head -1 "$T/dead3.tsv" >"$T/other.tsv"
out=$("${CTL[@]}" replay "$T/other.tsv" 2>&1) && fail "another file while replay 1 is open: $out"
assert_eq "refusal" "ringctl: replay 1 ($T/dead3.tsv) did not finish: some of its events are not durable in their shard yet, or were not sent; replay that file again first" "$out"
out=$("${CTL[@]}" replay "$T/dead3.tsv") || fail "replay after the crash: $out"
echo "$out" | grep -q "^replay 1 of $T/dead3.tsv: sending $missing events" || fail "replay reply: $out"
"${CTL[@]}" stop >/dev/null
wait "${BG_PIDS[-1]}" || fail "exit status"
grep -q "replay 1 of $T/dead3.tsv: every event durable in its shard" "$T/log2" || fail "the replay did not finish at the stop"
"${CTL[@]}" dump-state >"$T/state"
assert_same_file "state after a crash in a replay" "$T/ref.state" "$T/state"
all_output "$T/out" >"$T/out_all"
assert_same_file "output after a crash in a replay" "$T/ref_out" "$T/out_all"
ok "a replay cut by a crash, replayed again: nothing applied twice"

# Refused: a replay while a partition is failed (its events would be held
# back, and a restart does not redo a replay), and with a Kafka source.
rm -rf "$T/data" "$T/out" "$T/run" "$T/dead.tsv" "$T/.dead.tsv.owner"
printf 'function process(ev)\n\tif ev.payload == "boom" then error("boom") end\nend\n' >"$T/boom.lua"
printf 'x\tboom\n' >"$T/events.tsv"
HANDLER=$T/boom.lua PARTITIONS=3 write_config "$T/t.ini" "[restart]" "fail_after = 1"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>>"$T/log3" &
BG_PIDS+=($!)
"${CTL[@]}" wait >/dev/null
wait_until 30 grep -q "partition [0-9] failed" "$T/log3"
p=$(grep -o 'partition [0-9] failed' "$T/log3" | head -1 | cut -d' ' -f2)
out=$("${CTL[@]}" replay "$T/dead1.tsv" 2>&1) && fail "replay with a failed partition: $out"
assert_eq "refusal" "ringctl: partition $p is failed: its events would be held back; run ringctl restart-worker $p first" "$out"
"${CTL[@]}" stop >/dev/null
wait "${BG_PIDS[-1]}" 2>/dev/null || true
ok "a replay while a partition is failed is refused"

. "$(dirname "$0")/kafka_lib.sh"
printf 'k1\ta1\n' >"$T/kevents.tsv"
kafka_start_mock "$T/kevents.tsv"
HANDLER=$T/rate.lua ACCOUNTS=$T/fixed.tsv PARTITIONS=4 kafka_config k
kafka_run k
"$RINGCTL" -c "$T/k.ini" wait >/dev/null
out=$("$RINGCTL" -c "$T/k.ini" replay "$T/dead1.tsv" 2>&1) && fail "replay with a Kafka source: $out"
assert_eq "refusal" "ringctl: replay is not served with a Kafka source: a Kafka partition's events are its offsets, and a replayed one has none; produce the dead letters' events into the topic again" "$out"
kafka_stop k
kafka_stop_mock
ok "a replay with a Kafka source is refused"

# A replayed event that kills its worker is found (the batch bisected) and
# dead-lettered as poison under its original seq; the others are applied.
rm -rf "$T/data" "$T/out" "$T/run" "$T/dead.tsv" "$T/.dead.tsv.owner"
printf 'acct00000001\tdeposit\t100\n' >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so PARTITIONS=1 write_config "$T/t.ini" \
	"[handler]" "crash_payload = CRASH" "[restart]" "backoff_initial = 10ms"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>>"$T/log5" &
BG_PIDS+=($!)
"${CTL[@]}" wait >/dev/null
printf '%s\n' '1000	malformed	acct00000002\tdeposit\t7' '1001	malformed	acct00000003\tCRASH' \
	'1002	malformed	acct00000004\tdeposit\t9' >"$T/poison.tsv"
out=$("${CTL[@]}" replay "$T/poison.tsv") || fail "replay: $out"
wait_until 60 grep -q '^1001	poison	acct00000003\\tCRASH$' "$T/dead.tsv"
wait_until 30 log_has "$T/log5" "replay 1 of $T/poison.tsv: every event durable in its shard"
"${CTL[@]}" stop >/dev/null
wait "${BG_PIDS[-1]}" || fail "exit status"
assert_eq "dead letters" "1001	poison	acct00000003\\tCRASH" "$(cat "$T/dead.tsv")"
"${CTL[@]}" dump-state | cut -f1 | tr '\n' ' ' >"$T/keys"
assert_eq "keys with state" "acct00000001 acct00000002 acct00000004 " "$(cat "$T/keys")"
assert_eq "output of the replayed events" "1000 1002" "$(cut -f1 "$T/out/p0.tsv" | grep -v '^0$' | sort -n | tr '\n' ' ' | sed 's/ $//')"
ok "a replayed poison event is dead-lettered under its original seq, the rest applied"

# A replay while the source is busy: its events go in between the source's
# (rings full, backpressure), and the state ends as a run over both.
rm -rf "$T/data" "$T/out" "$T/run" "$T/dead.tsv" "$T/.dead.tsv.owner"
awk 'BEGIN { for (i = 0; i < 200000; i++) printf "k%d\ta%d\n", i % 997, i % 10 }' >"$T/events.tsv"
awk 'BEGIN { for (i = 0; i < 5000; i++) printf "%d\tno_account\tk%d\\ta%d\n", 1000000 + i, i % 31, i % 10 }' >"$T/extra.tsv"
{ cat "$T/events.tsv"; sed 's/^[0-9]*\tno_account\t//; s/\\t/\t/' "$T/extra.tsv"; } >"$T/both.tsv"
HANDLER=$T/rate.lua ACCOUNTS=$T/fixed.tsv PARTITIONS=3 RING_SIZE=256K BATCH_MAX=64 write_config "$T/t.ini"
ref_run both "$T/t.ini" -o source.path="$T/both.tsv"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>>"$T/log6" &
BG_PIDS+=($!)
"${CTL[@]}" wait >/dev/null
out=$("${CTL[@]}" replay "$T/extra.tsv") || fail "replay: $out"
"${CTL[@]}" status --json | grep -o '"processed":[0-9]*' >"$T/at_replay"
wait_until 60 log_has "$T/log6" "replay 1 of $T/extra.tsv: every event durable in its shard"
processed_all() { [ "$("${CTL[@]}" status --json | grep -o '"processed":[0-9]*' | cut -d: -f2)" = 205000 ]; }
wait_until 60 processed_all
"${CTL[@]}" stop >/dev/null
wait "${BG_PIDS[-1]}" || fail "exit status"
log_has "$T/log6" "replay 1 of $T/extra.tsv: all 5000 events handed over" || fail "no hand-over logged"
"${CTL[@]}" dump-state >"$T/state"
assert_same_file "state after a replay during a busy source" "$T/both.state" "$T/state"
echo "processed when the replay began: $(cut -d: -f2 "$T/at_replay") of 200000"
ok "a replay in between a busy source's events"
