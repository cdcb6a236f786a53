# A source file is known by what it is, not by its path: a data_dir that has
# read a file refuses (exit 78, nothing processed) another file at that path,
# the file rewritten or cut shorter, and a byte-identical copy (another
# inode), but resumes a file that only grew. While following, a file that is
# truncated is warned about and read again from its start, a file replaced
# at the path is followed to the new one (test_rotation.sh does more), and a
# removed one is warned about; the instance keeps running and stops cleanly. A last line longer than the read buffer,
# without a newline, is dead-lettered like any other long line.
. "$(dirname "$0")/lib.sh"
write_config "$T/t.ini"
SOCK_OF() { echo "$1/run/control.sock"; }

at() { # DIR: the overrides that put an instance's files (and its source) in DIR
	echo "-o ringmaster.data_dir=$1/data -o ringmaster.run_dir=$1/run -o output.dir=$1/out" \
		"-o output.dead_letter=$1/dead.tsv -o source.path=$1/events.tsv"
}

snapshot() { # DIR: what a refused start must leave as it is
	all_output "$1/out" >"$1/out.before"
	"$RINGCTL" -c "$T/t.ini" $(at "$1") dump-state >"$1/state.before"
}

expect_refusal() { # DIR PATTERN WHAT: exit 78, the message, nothing processed
	local rc=0
	"$RINGMASTER" -c "$T/t.ini" $(at "$1") 2>"$1/refused.log" || rc=$?
	[ $rc -eq 78 ] || { cat "$1/refused.log"; fail "$3: exit $rc, expected 78"; }
	grep -q -- "$2" "$1/refused.log" || { cat "$1/refused.log"; fail "$3: no '$2' in the log"; }
	! grep -q "started partitions" "$1/refused.log" || fail "$3: workers were started"
	all_output "$1/out" >"$1/out.after"
	assert_same_file "$3: outputs" "$1/out.before" "$1/out.after"
	"$RINGCTL" -c "$T/t.ini" $(at "$1") dump-state >"$1/state.after"
	assert_same_file "$3: state" "$1/state.before" "$1/state.after"
	ok "$3: refused: $(grep -o 'level=error proc=supervisor pid=[0-9]* msg=.*' "$1/refused.log" | cut -d' ' -f4- | head -1)"
}

# ---- 1. another file at the path of the one a finished run read ----
D=$T/id
mkdir -p "$D"
"$RINGCTL" gen events --events 1000 --keys 100 --seed 3 >"$T/A.tsv"
"$RINGCTL" gen events --events 3000 --keys 100 --seed 4 >"$T/B.tsv"
cp "$T/A.tsv" "$D/events.tsv"
"$RINGMASTER" -c "$T/t.ini" $(at "$D") 2>"$D/log" || { cat "$D/log"; fail "first run on A"; }
snapshot "$D"
ino_a=$(stat -c %i "$D/events.tsv")

mv "$D/events.tsv" "$T/A.moved"
cp "$T/B.tsv" "$D/events.tsv"
ino_b=$(stat -c %i "$D/events.tsv")
expect_refusal "$D" "that was device [0-9]*:[0-9]* inode $ino_a, this is device [0-9]*:[0-9]* inode $ino_b (another file, its first 4096 bytes differ)" \
	"another file (B) at A's path"
mv "$T/A.moved" "$D/events.tsv"

cp "$T/B.tsv" "$D/events.tsv" # B written into A's inode
expect_refusal "$D" "its first 4096 bytes differ from what data_dir $D/data read (same device [0-9:]* inode $ino_a" \
	"A rewritten in place with B"

cp "$T/A.tsv" "$D/events.tsv"
truncate -s 5000 "$D/events.tsv"
expect_refusal "$D" "is shorter (5000 bytes) than the position data_dir $D/data has processed (30878 bytes)" "A cut shorter"

cp "$T/A.tsv" "$D/events.tsv"
ln "$D/events.tsv" "$T/A.link" # keeps A's inode
cp "$T/A.tsv" "$D/copy.tsv"
ino_c=$(stat -c %i "$D/copy.tsv")
mv "$D/copy.tsv" "$D/events.tsv"
expect_refusal "$D" "inode $ino_a, this is device [0-9]*:[0-9]* inode $ino_c (another file, a copy? its first 4096 bytes are the same)" \
	"a byte-identical copy of A (another inode)"
mv "$T/A.link" "$D/events.tsv"

# A grows (the events after its first 1000): the run resumes and ends where a
# run over the whole file ends.
"$RINGCTL" gen events --events 3000 --keys 100 --seed 3 >"$T/A3000.tsv"
size_a=$(stat -c %s "$T/A.tsv")
cmp -s -n "$size_a" "$T/A.tsv" "$T/A3000.tsv" || fail "gen: 1000 events are not the start of 3000"
tail -c +$((size_a + 1)) "$T/A3000.tsv" >>"$D/events.tsv"
"$RINGMASTER" -c "$T/t.ini" $(at "$D") --summary "$D/s.json" 2>"$D/log2" \
	|| { cat "$D/log2"; fail "run on the grown A"; }
log_has "$D/log2" "resuming the source at seq=$size_a" || { cat "$D/log2"; fail "no resume"; }
assert_eq "events read after the growth" 2000 "$(json_get "$D/s.json" events_read)"
mkdir -p "$T/whole"
cp "$T/A3000.tsv" "$T/whole/events.tsv"
"$RINGMASTER" -c "$T/t.ini" $(at "$T/whole") 2>"$T/whole/log" || { cat "$T/whole/log"; fail "whole run"; }
same_outputs "$T/whole/out" "$D/out"
"$RINGCTL" -c "$T/t.ini" $(at "$T/whole") dump-state >"$T/whole/state"
"$RINGCTL" -c "$T/t.ini" $(at "$D") dump-state >"$D/state"
assert_same_file "state after the resume" "$T/whole/state" "$D/state"
ok "a file that only grew resumes; outputs and state equal a run over the whole file"

# ---- 2. watermark 0, but shards that applied events ----
# The worker that gets the first line hangs on it, so the watermark stays 0
# while the other partitions commit; then the whole group is killed.
D=$T/hang
mkdir -p "$D"
{
	printf 'acct00000001\tHANG\n'
	"$RINGCTL" gen events --events 2000 --keys 100 --seed 6
} >"$D/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so write_config "$T/hang.ini" "[handler]" "hang_payload = HANG"
setsid "$RINGMASTER" -c "$T/hang.ini" $(at "$D") 2>"$D/log" &
sup=$!
BG_PIDS+=($sup)
processed() { # DIR FILTER: the instance's status satisfies the jq filter
	local st
	st=$("$RINGCTL" -s "$(SOCK_OF "$1")" status --json) && jq -e "$2" <<<"$st"
}
wait_until 10 processed "$D" '.processed > 1000'
kill -KILL -- -$sup
wait $sup 2>/dev/null || true
wait_until 10 workers_gone
snapshot "$D"
[ -s "$D/state.before" ] || fail "no shard applied anything"
mv "$D/events.tsv" "$T/hang.orig"
cp "$T/B.tsv" "$D/events.tsv"
expect_refusal "$D" "is not the file data_dir $D/data read" "another file after a run killed at watermark 0"
! log_has "$D/refused.log" "resuming the source at seq=" || fail "the watermark was not 0: nothing tested"

# ---- 3. follow: truncated, then replaced, while followed ----
follow_start() { # DIR: start in follow mode, wait until every event is committed
	"$RINGMASTER" -c "$T/t.ini" $(at "$1") -o source.follow=yes 2>"$1/log" &
	fpid=$!
	BG_PIDS+=($fpid)
	wait_until 10 processed "$1" ".processed + .handler_rejected == $2"
}
follow_stop() { # DIR WHAT: the instance answers, then SIGTERM stops it with 0
	"$RINGCTL" -s "$(SOCK_OF "$1")" status >/dev/null || fail "$2: the control socket does not answer"
	kill -TERM $fpid
	local rc=0
	wait $fpid || rc=$?
	assert_eq "$2: exit status after SIGTERM" 0 $rc
}

D=$T/trunc
mkdir -p "$D"
"$RINGCTL" gen events --events 2000 --keys 100 --seed 8 >"$D/events.tsv"
size=$(stat -c %s "$D/events.tsv")
follow_start "$D" 2000
: >"$D/events.tsv"
printf 'acctNEW00001\tdeposit\t5\n' >>"$D/events.tsv"
wait_until 5 log_has "$D/log" "level=warn .*$D/events.tsv was truncated from $size to [0-9]* bytes while followed: reading it from its start as a new file at seq=$size"
wait_until 5 processed "$D" '.processed + .handler_rejected == 2001'
sleep 0.3 # a few more polls: still one warning
assert_eq "truncation warnings" 1 "$(grep -c "was truncated" "$D/log")"
grep -q "^$size	acctNEW00001	" "$D"/out/p*.tsv || fail "the truncated file's new line is not at seq $size"
follow_stop "$D" "truncated while followed"
ok "truncation while followed: $(grep -o 'was truncated.*' "$D/log" | cut -c1-60)..., read from its start, exit 0"

D=$T/replace
mkdir -p "$D"
"$RINGCTL" gen events --events 2000 --keys 100 --seed 9 >"$D/events.tsv"
ino_old=$(stat -c %i "$D/events.tsv")
follow_start "$D" 2000
mv "$D/events.tsv" "$D/events.tsv.1"
printf 'acctNEW00002\tdeposit\t5\n' >"$D/events.tsv"
ino_new=$(stat -c %i "$D/events.tsv")
# mv then create: the moment the path names nothing is not taken for a removal.
wait_until 5 log_has "$D/log" "level=info .*$D/events.tsv: another file at that path (device [0-9:]* inode $ino_new, was device [0-9:]* inode $ino_old)"
wait_until 5 processed "$D" '.processed + .handler_rejected == 2001'
sleep 0.3
assert_eq "replacement warnings" 0 "$(grep -c "level=warn .*was removed" "$D/log")"
printf 'acct00000007\tdeposit\t5\n' >>"$D/events.tsv"
wait_until 5 processed "$D" '.processed + .handler_rejected == 2002'
follow_stop "$D" "replaced while followed"
ok "replacement while followed: $(grep -o 'another file at that path' "$D/log"), the new file read, exit 0"

D=$T/remove
mkdir -p "$D"
"$RINGCTL" gen events --events 500 --keys 100 --seed 10 >"$D/events.tsv"
follow_start "$D" 500
rm "$D/events.tsv"
wait_until 5 log_has "$D/log" "level=warn .*$D/events.tsv was removed while followed"
follow_stop "$D" "removed while followed"
ok "removal while followed: warned, exit 0"

# ---- 4. a last line longer than the read buffer, without a newline ----
D=$T/long
mkdir -p "$D"
{
	printf 'acct00000001\tdeposit\t100\n'
	printf 'acct00000002\t'
	head -c $((2 << 20)) /dev/zero | tr '\0' x
} >"$D/events.tsv"
"$RINGMASTER" -c "$T/t.ini" $(at "$D") --summary "$D/s.json" 2>"$D/log" || { cat "$D/log"; fail "long-line run"; }
assert_eq "lines read" 2 "$(json_get "$D/s.json" events_read)"
assert_eq "lines processed" 1 "$(json_get "$D/s.json" processed)"
assert_eq "dead letters" 1 "$(wc -l <"$D/dead.tsv")"
first=$(printf 'acct00000001\tdeposit\t100\n' | wc -c)
assert_eq "dead letter seq and reason" "$first	too_long" "$(cut -f1,2 "$D/dead.tsv")"
grep -q "^$first	too_long	acct00000002\\\\txxxx" "$D/dead.tsv" || fail "the long line is not kept in the dead letter"
cp "$D/dead.tsv" "$D/dead.before"
"$RINGMASTER" -c "$T/t.ini" $(at "$D") --summary "$D/s2.json" 2>"$D/log2" || { cat "$D/log2"; fail "rerun"; }
assert_eq "lines read by a rerun" 0 "$(json_get "$D/s2.json" events_read)"
assert_same_file "dead letters after a rerun" "$D/dead.before" "$D/dead.tsv"
ok "a 2 MiB last line without a newline is dead-lettered as too_long at seq $first"
