# [source] type = spool: a directory of files, each read once in name
# order, state carried across files.
#  1. An uninterrupted finite run over ten files (some with bad lines)
#     gives the state of a run over their concatenation.
#  2. A following run that starts with three of them, gets the others while
#     it runs (renamed in whole, in shuffled order, plus a file the pattern
#     does not match and a dot file), is SIGKILLed (the supervisor alone:
#     its workers run on) in the middle of a file and started again, moves
#     each file to done_dir once it is durable: its state, outputs and dead
#     letters equal the uninterrupted run's, byte for byte (dead letters at least
#     once); status shows the
#     files done and waiting.
#  3. A file changed after it was read to its end stops the run with an
#     error naming it; a start refuses it too, and a file cut while the run
#     was down.
#  4. after = delete deletes, and a restart reads nothing again.
#  5. Bad configurations get clear messages.
. "$(dirname "$0")/lib.sh"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=128 PARTITIONS=3 RING_SIZE=64K write_config "$T/t.ini" \
	"[handler]" "sleep_us = 0"
# small rings: the source is never far ahead of the workers
sed -i 's/^\[source\]$/[source]\nmax_event_size = 4K/' "$T/t.ini"
"$RINGCTL" gen events --events 60000 --keys 300 --seed 11 >"$T/all.tsv"
split -l 6000 -d -a 2 --additional-suffix=.tsv "$T/all.tsv" "$T/day-"
# bad lines: dead letters whose seqs name their file
printf 'no delimiter here\n' >>"$T/day-02.tsv"
printf '\tempty key\n' >>"$T/day-07.tsv"
printf 'acct00000001\tdeposit\t500\n' >"$T/day-10.tsv" # no newline at its end: a line too
printf 'acct00000002\tdeposit\t700' >>"$T/day-10.tsv"
files=$(cd "$T" && ls day-*.tsv)
nfiles=$(wc -w <<<"$files")

status_is() { # SOCKET JQ_FILTER: the instance's status passes the filter
	local out
	out=$("$RINGCTL" -s "$1" status --json 2>/dev/null) && jq -e "$2" <<<"$out" >/dev/null
}
spool() { # NAME DIR [more -o]: the overrides for an instance NAME reading DIR
	local n=$1 d=$2
	shift 2
	echo "-o ringmaster.data_dir=$T/$n/data -o ringmaster.run_dir=$T/$n/run -o output.dir=$T/$n/out" \
		"-o output.dead_letter=$T/$n/dead.tsv -o source.type=spool -o source.dir=$d" \
		"-o source.pattern=day-*.tsv $*"
}

# 1. the uninterrupted run, and the concatenation
mkdir -p "$T/ref/in"
cp "$T"/day-*.tsv "$T/ref/in/"
"$RINGMASTER" -c "$T/t.ini" $(spool ref "$T/ref/in") 2>"$T/ref.log" || { cat "$T/ref.log"; fail "reference run"; }
assert_eq "files read" "$nfiles" "$(grep -c 'spool: file [0-9]* is ' "$T/ref.log")"
cat "$T"/day-*.tsv >"$T/cat.tsv"
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/cat/data" -o ringmaster.run_dir="$T/cat/run" \
	-o output.dir="$T/cat/out" -o output.dead_letter="$T/cat/dead.tsv" -o source.path="$T/cat.tsv" \
	2>"$T/cat.log" || { cat "$T/cat.log"; fail "concatenation run"; }
"$RINGCTL" -c "$T/t.ini" $(spool ref x) dump-state >"$T/ref.state"
"$RINGCTL" -c "$T/t.ini" -o ringmaster.data_dir="$T/cat/data" dump-state >"$T/cat.state"
assert_same_file "state of the spool and of the concatenation" "$T/cat.state" "$T/ref.state"
assert_eq "dead letters" 2 "$(wc -l <"$T/ref/dead.tsv")"
# seq = file number << 40 | byte offset: day-02 is file 3, day-07 file 8
seq2=$(cut -f1 "$T/ref/dead.tsv" | head -1)
assert_eq "a dead letter's file" 3 $((seq2 >> 40))
assert_eq "its offset" "$(($(head -n 6000 "$T/day-02.tsv" | wc -c)))" $((seq2 & ((1 << 40) - 1)))
ok "ten files read once, in name order: the state of their concatenation; seqs name file and byte"

# 2. a following run: files arrive while it runs; a SIGKILL mid-file
S=$T/s
mkdir -p "$S/in"
slow="-o handler.sleep_us=200 -o source.follow=yes -o source.after=move -o source.done_dir=$S/done"
put() { # FILE: renamed in whole, as a spool's files must be
	cp "$T/$1" "$S/in/.$1.part"
	mv "$S/in/.$1.part" "$S/in/$1"
}
start() {
	"$RINGMASTER" -c "$T/t.ini" $(spool s "$S/in") $slow 2>>"$S/log" &
	spid=$!
	BG_PIDS+=($spid)
}
reading() { # FILE: the run is inside FILE, past its first byte
	status_is "$S/run/control.sock" ".source_file == \"$1\" and .source_position > 0"
}
put day-00.tsv
put day-01.tsv
put day-02.tsv
start
wait_until 20 reading day-01.tsv
for f in day-05.tsv day-03.tsv day-04.tsv; do put $f; done # shuffled: read in name order
echo "not matched" >"$S/in/notes.txt"
wait_until 30 reading day-04.tsv
kill -KILL $spid
wait $spid 2>/dev/null || true
ok "supervisor SIGKILLed inside day-04.tsv"
put day-06.tsv
start
wait_until 30 log_has "$S/log" "spool: reading file 5, $S/in/day-04.tsv, again from byte"
for f in day-08.tsv day-07.tsv day-10.tsv day-09.tsv; do put $f; done
done_all() { status_is "$S/run/control.sock" ".files_done == $nfiles and .files_waiting == 0 and .source_file == \"\""; }
wait_until 60 done_all
# moved once durable: the watermark passes them at the latest after a sync
wait_until 10 test ! -e "$S/in/day-10.tsv"
kill -TERM $spid
rc=0
wait $spid || rc=$?
assert_eq "exit status after SIGTERM" 0 $rc
assert_eq "files left in dir" "notes.txt" "$(ls "$S/in")"
assert_eq "files in done_dir" "$files" "$(ls "$S/done")"
same_outputs "$T/ref/out" "$S/out"
# dead letters are at-least-once (README): a crash may write one again
sort -u "$S/dead.tsv" >"$S/dead.u"
assert_same_file "dead letters" "$T/ref/dead.tsv" "$S/dead.u"
"$RINGCTL" -c "$T/t.ini" $(spool s x) dump-state >"$S/state"
assert_same_file "state" "$T/ref.state" "$S/state"
! grep -q "error" "$S/log" || { grep error "$S/log"; fail "errors logged"; }
ok "files added while running, a SIGKILL mid-file: state, outputs and dead letters equal the uninterrupted run"

# 3. a file changed after it was done; one cut while the run was down
C=$T/c
mkdir -p "$C/in"
cp "$T/day-00.tsv" "$T/day-01.tsv" "$C/in/"
"$RINGMASTER" -c "$T/t.ini" $(spool c "$C/in" -o source.follow=yes) 2>"$C/log" &
cpid=$!
BG_PIDS+=($cpid)
cdone() { status_is "$C/run/control.sock" '.files_done == 2'; }
wait_until 20 cdone
printf 'acct00000003\tdeposit\t100\n' >>"$C/in/day-00.tsv"
rc=0
wait $cpid || rc=$?
assert_eq "exit status after a done file changed" 1 $rc
log_has "$C/log" "level=error .*$C/in/day-00.tsv grew after it was read to its end as spool file 1 .*Its new bytes are not read" \
	|| { tail -5 "$C/log"; fail "no error naming the changed file"; }
rc=0
"$RINGMASTER" -c "$T/t.ini" $(spool c "$C/in") 2>"$C/log2" || rc=$?
assert_eq "exit status of a start with the changed file" 78 $rc
grep -q "$C/in/day-00.tsv grew after" "$C/log2" || { cat "$C/log2"; fail "start: not named"; }
# a file cut while ringmaster was down, before it was finished
K=$T/k
mkdir -p "$K/in"
cp "$T/day-00.tsv" "$T/day-01.tsv" "$K/in/"
setsid "$RINGMASTER" -c "$T/t.ini" $(spool k "$K/in" -o handler.sleep_us=200 -o store.sync_interval=50ms) 2>"$K/log" &
kpid=$!
BG_PIDS+=($kpid)
kin() { status_is "$K/run/control.sock" '.processed > 7500'; } # into day-01.tsv
wait_until 30 kin
kill -KILL -- -$kpid
wait $kpid 2>/dev/null || true
wait_until 10 workers_gone
truncate -s 10000 "$K/in/day-01.tsv"
rc=0
"$RINGMASTER" -c "$T/t.ini" $(spool k "$K/in") 2>"$K/log2" || rc=$?
assert_eq "exit status of a start with a cut file" 78 $rc
# read to its end or not when it was killed: either way it is refused
grep -Eq "$K/in/day-01.tsv (is shorter \(10000 bytes\) than what data_dir $K/data applied of it|was cut after it was read to its end) as spool file 2" "$K/log2" || { cat "$K/log2"; fail "cut file not named"; }
# a file cut while it is read: the run stops, naming it
L=$T/l
mkdir -p "$L/in"
cp "$T/day-00.tsv" "$T/day-01.tsv" "$L/in/"
"$RINGMASTER" -c "$T/t.ini" $(spool l "$L/in" -o handler.sleep_us=200 -o source.follow=yes) 2>"$L/log" &
lpid=$!
BG_PIDS+=($lpid)
lin() { status_is "$L/run/control.sock" '.source_file == "day-01.tsv"'; }
wait_until 30 lin
truncate -s 10000 "$L/in/day-01.tsv"
rc=0
wait $lpid || rc=$?
assert_eq "exit status after the file being read was cut" 1 $rc
grep -Eq "level=error .*$L/in/day-01.tsv (shrank while it was read|was cut after it was read to its end) as spool file 2" "$L/log" \
	|| { tail -5 "$L/log"; fail "the cut file is not named"; }
ok "a done file changed: the run stops naming it, a start refuses it; a file cut while read or while down: refused"

# an empty directory: a finite run reads nothing and ends at once
mkdir -p "$T/empty/in"
"$RINGMASTER" -c "$T/t.ini" $(spool empty "$T/empty/in") 2>"$T/empty.log" || { cat "$T/empty.log"; fail "empty run"; }
grep -q "summary: 0 events read" "$T/empty.log" || fail "empty: $(grep summary "$T/empty.log")"

# 4. after = delete
E=$T/e
mkdir -p "$E/in"
cp "$T/day-00.tsv" "$T/day-01.tsv" "$E/in/"
"$RINGMASTER" -c "$T/t.ini" $(spool e "$E/in" -o source.after=delete) 2>"$E/log" || { cat "$E/log"; fail "delete run"; }
assert_eq "files left after delete" "" "$(ls "$E/in")"
cp "$T/day-02.tsv" "$E/in/"
"$RINGMASTER" -c "$T/t.ini" $(spool e "$E/in" -o source.after=delete) 2>"$E/log2" || { cat "$E/log2"; fail "delete run 2"; }
grep -q "summary: 6001 events read" "$E/log2" || { grep summary "$E/log2"; fail "second run read more than the new file"; }
ok "after = delete: files deleted once durable; a second run reads only the new file"

# 5. bad configurations
bad() { # WHAT EXPECTED_MESSAGE overrides...
	local what=$1 want=$2
	shift 2
	local rc=0
	"$RINGMASTER" -c "$T/t.ini" -t -o source.type=spool "$@" >"$T/bad.out" 2>&1 || rc=$?
	[ $rc -ne 0 ] || fail "$what: accepted"
	grep -q -- "$want" "$T/bad.out" || { cat "$T/bad.out"; fail "$what: no clear message"; }
}
bad "no dir" "\[source\] type spool needs dir"
bad "move without done_dir" "after = move needs done_dir" -o source.dir="$T" -o source.after=move
bad "a slash in pattern" "pattern matches names in dir: it cannot hold '/'" -o source.dir="$T" -o "source.pattern=a/*.tsv"
bad "done_dir without move" "done_dir is where a spool's files go with after = move" -o source.dir="$T" -o source.done_dir="$T/x"
bad "a missing dir" "cannot open the spool directory" -o source.dir="$T/nowhere"
ok "bad spool configurations: clear messages"
