# Savepoints: `ringctl savepoint DIR` on a running instance takes a cut of
# every shard, the config environment and the source position while the
# source goes on; `ringmaster --from-savepoint DIR` starts a new data_dir
# from it. The first instance run on to the end, the second one started from
# the savepoint, and an uninterrupted run end with the same state; the old
# outputs cut at the manifest's output_len followed by the new ones equal
# the uninterrupted run's, partition by partition. File and generate
# sources. Then the refusals: DIR exists or cannot be made, a savepoint or
# a handler swap in progress (busy), a worker that dies during one, a
# non-empty data_dir, a corrupt or cut savepoint; another partition count
# re-splits the state.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 60000 --keys 2000 --seed 11 >"$T/events.tsv"
size=$(stat -c %s "$T/events.tsv")
# The test handler with a pause per event, so that the savepoint lands
# mid-run; the reference runs without it.
cp "$TEST_HANDLER_DIR/faulty_ledger.so" "$T/h.so"
chmod 0755 "$T/h.so"
RING_SIZE=256K HANDLER=$T/h.so BATCH_MAX=128 write_config "$T/t.ini" "[handler]" "sleep_us = 50"
ctl() { "$RINGCTL" -c "$T/t.ini" "$@"; }
field() { awk -v k="$2" '$1 == k { print $2 }' "$1/manifest"; }
shard_len() { awk -v p="$2" '$1 == "shard" && $2 == p { print $5 }' "$1/manifest"; }

# run_with_savepoint NAME SP ARGS...: an instance in $T/NAME, a savepoint
# into SP mid-run, then on to the end.
run_with_savepoint() {
	local name=$1 sp=$2; shift 2
	local args=(-o ringmaster.data_dir="$T/$name/data" -o output.dir="$T/$name/out"
		-o output.dead_letter="$T/$name/dead.tsv" -o ringmaster.run_dir="$T/$name/run" "$@")
	"$RINGMASTER" -c "$T/t.ini" "${args[@]}" 2>"$T/$name.log" &
	local sup=$!
	BG_PIDS+=($sup)
	ctl "${args[@]}" wait -t 10
	sleep 0.3
	ctl "${args[@]}" savepoint "$sp" >"$T/$name.sp" 2>&1 ||
		{ cat "$T/$name.sp" "$T/$name.log"; fail "$name: savepoint"; }
	grep -q "written to $sp" "$T/$name.sp" || { cat "$T/$name.sp"; fail "$name: savepoint said"; }
	wait $sup || { cat "$T/$name.log"; fail "$name: the instance"; }
	ctl "${args[@]}" dump-state >"$T/$name.state"
}

# resume NAME SP ARGS...: a new data_dir $T/NAME from SP, run to the end.
resume() {
	local name=$1 sp=$2; shift 2
	local args=(-o ringmaster.data_dir="$T/$name/data" -o output.dir="$T/$name/out"
		-o output.dead_letter="$T/$name/dead.tsv" -o ringmaster.run_dir="$T/$name/run"
		-o handler.sleep_us=0 "$@")
	"$RINGMASTER" -c "$T/t.ini" "${args[@]}" --from-savepoint "$sp" 2>"$T/$name.log" ||
		{ cat "$T/$name.log"; fail "$name: the run from the savepoint"; }
	ctl "${args[@]}" dump-state >"$T/$name.state"
}

# same_as_ref REF OLD NEW SP: per partition, OLD's output up to the
# manifest's output_len, then NEW's, is REF's output.
same_as_ref() {
	local ref=$1 old=$2 new=$3 sp=$4
	for f in "$T/$ref/out"/p*.tsv; do
		local p=${f##*/p}
		p=${p%.tsv}
		{
			head -c "$(shard_len "$sp" "$p")" "$T/$old/out/p$p.tsv"
			cat "$T/$new/out/p$p.tsv"
		} >"$T/joined"
		assert_same_file "partition $p: old outputs to the cut + new outputs" "$f" "$T/joined"
	done
}

check_case() { # NAME: a reference run, a run with a savepoint, a run from it
	local name=$1 size_of=$2; shift 2
	ref_run "ref_$name" "$T/t.ini" -o handler.sleep_us=0 "$@"
	run_with_savepoint "first_$name" "$T/sp_$name" "$@"
	local pos
	pos=$(field "$T/sp_$name" position)
	[ "$pos" -gt 0 ] && [ "$pos" -lt "$size_of" ] || fail "$name: the savepoint is not mid-run: position $pos of $size_of"
	assert_same_file "$name: the first instance's state" "$T/ref_$name.state" "$T/first_$name.state"
	same_outputs "$T/ref_$name/out" "$T/first_$name/out"
	"$RINGCTL" savepoint --verify "$T/sp_$name" >"$T/verify" || fail "$name: verify"
	assert_eq "$name: verify" "$T/sp_$name: ok" "$(cat "$T/verify")"
	resume "second_$name" "$T/sp_$name" "$@"
	log_has "$T/second_$name.log" "resuming the source at seq=$pos" || fail "$name: not resumed at $pos"
	assert_same_file "$name: the state from the savepoint" "$T/ref_$name.state" "$T/second_$name.state"
	same_as_ref "ref_$name" "first_$name" "second_$name" "$T/sp_$name"
	ok "$name: a savepoint at $pos of $size_of, run on from it: the same state and outputs"
}

check_case file "$size"
# The generate source: its seqs are the byte offsets of the same TSV.
gen_size=$("$RINGCTL" gen events --events 60000 --keys 1500 --seed 5 | wc -c)
check_case gen "$gen_size" -o source.type=generate -o source.events=60000 -o source.keys=1500 -o source.seed=5

# ---- verification and refusals on disk ----
sp=$T/sp_file
grep -q '^ringmaster-savepoint 1$' "$sp/manifest" || fail "manifest header"
assert_eq "manifest partitions" 4 "$(field "$sp" partitions)"
assert_eq "manifest source" file "$(field "$sp" source)"
assert_eq "manifest last line" end "$(tail -1 "$sp/manifest")"
cp -r "$sp" "$T/bad"
# flip one byte in the middle of partition 1's shard
off=$(($(stat -c %s "$T/bad/state/p1/data.mdb") / 2))
b=$(od -An -tu1 -j "$off" -N1 "$T/bad/state/p1/data.mdb" | tr -d ' ')
printf "\\$(printf %03o $(((b + 1) % 256)))" | dd of="$T/bad/state/p1/data.mdb" bs=1 seek="$off" conv=notrunc status=none
if "$RINGCTL" savepoint --verify "$T/bad" 2>"$T/err"; then fail "a flipped byte passed --verify"; fi
grep -q "state/p1/data.mdb: checksum .* the file is corrupt" "$T/err" || { cat "$T/err"; fail "verify did not name the bad file"; }
rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/frombad/data" --from-savepoint "$T/bad" 2>"$T/err" || rc=$?
assert_eq "exit status from a corrupt savepoint" 65 "$rc"
grep -q "state/p1/data.mdb: checksum" "$T/err" || { cat "$T/err"; fail "refusal did not name the file"; }
[ ! -e "$T/frombad/data" ] || fail "a corrupt savepoint left a data_dir"
ok "a flipped byte: --verify names the file, --from-savepoint refuses (65)"

cp -r "$sp" "$T/cut"
head -n 5 "$sp/manifest" >"$T/cut/manifest"
if "$RINGCTL" savepoint --verify "$T/cut" 2>"$T/err"; then fail "a cut manifest passed"; fi
grep -q "manifest:6: no end line" "$T/err" || { cat "$T/err"; fail "cut manifest: $(cat "$T/err")"; }
rm "$T/cut/state/p2/data.mdb"
head -n -0 "$sp/manifest" >"$T/cut/manifest"
if "$RINGCTL" savepoint --verify "$T/cut" 2>"$T/err"; then fail "a missing shard passed"; fi
grep -q "state/p2/data.mdb: cannot read" "$T/err" || { cat "$T/err"; fail "missing shard"; }
ok "a cut manifest and a missing shard are refused by --verify"

rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/first_file/data" --from-savepoint "$sp" 2>"$T/err" || rc=$?
assert_eq "exit status over a non-empty data_dir" 73 "$rc"
grep -q "not empty: --from-savepoint makes a new data_dir" "$T/err" || { cat "$T/err"; fail "non-empty data_dir"; }
ok "--from-savepoint refuses a non-empty data_dir (73)"

# Another partition count: the savepoint's shards are re-split (rescale.h)
# into the new data_dir; state and the union of output lines (the old
# files cut at the manifest's output_len, then the new ones) equal the
# uninterrupted run's.
resume p3_file "$sp" -o ringmaster.partitions=3
log_has "$T/p3_file.log" "savepoint $sp has 4 partitions, the configuration 3: re-splitting" ||
	{ cat "$T/p3_file.log"; fail "no re-split logged"; }
assert_same_file "a savepoint re-split for 3 partitions: the state" "$T/ref_file.state" "$T/p3_file.state"
for p in 0 1 2 3; do head -c "$(shard_len "$sp" "$p")" "$T/first_file/out/p$p.tsv"; done >"$T/union"
cat "$T"/p3_file/out/p*.tsv >>"$T/union"
[ "$(ls "$T"/p3_file/out/p*.tsv | wc -l)" -eq 3 ] || { ls "$T/p3_file/out"; fail "not 3 output files"; }
sort "$T/union" >"$T/union.sorted"
cat "$T"/ref_file/out/p*.tsv | sort >"$T/ref.sorted"
assert_same_file "a savepoint re-split for 3 partitions: the output lines" "$T/ref.sorted" "$T/union.sorted"
ok "--from-savepoint with another partition count re-splits the state: the same state and output lines"

# ---- refusals while running: a slow instance with small rings ----
RING_SIZE=256K HANDLER=$T/h.so BATCH_MAX=32 write_config "$T/slow.ini" "[handler]" "sleep_us = 1000"
sctl() { "$RINGCTL" -c "$T/slow.ini" "$@"; }
# fsync fails (EIO, as a failing disk) on the files of savepoints named
# sp_io, once $T/arm exists (tests/faults/failsync.c).
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
LD_PRELOAD=$TOP/$B/tests/libfailsync.so FAILSYNC_MATCH=sp_io FAILSYNC_ARM=$T/arm \
	"$RINGMASTER" -c "$T/slow.ini" -o source.follow=yes 2>"$T/slow.log" &
sup=$!
BG_PIDS+=($sup)
sctl wait -t 10
sleep 0.5
rc=0
sctl savepoint "$sp" 2>"$T/err" || rc=$?
assert_eq "exit status when DIR exists" 1 "$rc"
grep -q "savepoint refused: $sp exists" "$T/err" || { cat "$T/err"; fail "DIR exists"; }
touch "$T/afile"
if sctl savepoint "$T/afile/sp" 2>"$T/err"; then fail "a savepoint under a file"; fi
grep -q "savepoint refused: $T/afile/sp: Not a directory" "$T/err" || { cat "$T/err"; fail "unwritable"; }

# A savepoint that waits behind full rings, then a second one: busy. A reload
# that swaps the handler meanwhile: busy too.
"$CONTROL_CLIENT" "$T/run/control.sock" text "savepoint $T/sp_slow" >"$T/r1" 2>&1 || { cat "$T/r1"; fail "raw savepoint"; }
if sctl savepoint "$T/sp_slow2" 2>"$T/err"; then fail "a second savepoint at once"; fi
grep -q "busy: savepoint 1 into $T/sp_slow is being taken" "$T/err" || { cat "$T/err"; fail "busy"; }
printf x >>"$T/h.so"
if sctl reload >"$T/err" 2>&1; then fail "a handler swap during a savepoint"; fi
grep -q "busy: a savepoint is being taken" "$T/err" || { cat "$T/err"; fail "reload busy"; }
status_has() { sctl savepoint-status | grep -q "$1"; }
wait_until 60 status_has "^savepoint 1 done"
"$RINGCTL" savepoint --verify "$T/sp_slow" >/dev/null || fail "the slow savepoint"
ok "a second savepoint and a handler swap during one are refused: busy"

# A handler swap (the .so changed above) restarts the workers one at a time:
# a savepoint meanwhile is busy.
sctl reload >"$T/r2" 2>&1 || { cat "$T/r2"; fail "the reload"; }
if sctl savepoint "$T/sp_swap" 2>"$T/err"; then fail "a savepoint during a swap"; fi
grep -q "busy: a handler swap is in progress" "$T/err" || { cat "$T/err"; fail "swap busy"; }
[ ! -e "$T/sp_swap" ] || fail "a refused savepoint left its directory"
wait_until 60 log_has "$T/slow.log" "every partition runs version"
ok "a savepoint during a handler swap is refused: busy"

# A worker killed before it reaches its barrier: the savepoint fails, and
# nothing is left behind. More events first, so that the rings hold seconds
# of work at the cut.
"$RINGCTL" gen events --events 20000 --keys 2000 --seed 12 >>"$T/events.tsv"
sleep 1
"$CONTROL_CLIENT" "$T/run/control.sock" text "savepoint $T/sp_kill" >"$T/r1" 2>&1 || { cat "$T/r1"; fail "raw savepoint"; }
kill -KILL "$(worker_pid 2)"
wait_until 30 status_has "^savepoint 2 failed"
sctl savepoint-status | grep -q "partition 2: its worker exited before it reached the savepoint's barrier" ||
	{ sctl savepoint-status; fail "worker death"; }
[ ! -e "$T/sp_kill" ] && [ -z "$(ls -d "$T"/sp_kill.tmp-* 2>/dev/null)" ] || fail "a failed savepoint left files"
ok "a worker that dies during a savepoint fails it, and nothing is left"

# The disk fails under a worker's copy: the savepoint fails, the worker and
# the instance go on.
# savepoint_when_free DIR: once the failed savepoint's barriers are passed
# (busy until then).
savepoint_when_free() {
	local end=$((SECONDS + 60))
	while ! sctl savepoint "$1" 2>"$T/err"; do
		grep -q "busy: partition [0-9]* has not reached the barrier of the last savepoint" "$T/err" || return 1
		[ $SECONDS -lt $end ] || fail "still busy after 60 s: $(cat "$T/err")"
		sleep 0.2
	done
}
touch "$T/arm"
if savepoint_when_free "$T/sp_io"; then fail "a savepoint whose copy could not be synced"; fi
grep -q "could not copy its shard: Input/output error" "$T/err" || { cat "$T/err"; fail "copy failure"; }
[ ! -e "$T/sp_io" ] && [ -z "$(ls -d "$T"/sp_io.tmp-* 2>/dev/null)" ] || fail "a failed copy left files"
rm "$T/arm"
pids=$(pgrep -f "^ringmaster: worker [0-9]+ \($NAME\)" | wc -l)
assert_eq "workers still running" 4 "$pids"
savepoint_when_free "$T/sp_after" >/dev/null || { cat "$T/err"; fail "a savepoint after the failed one"; }
ok "a copy that fails (EIO) fails the savepoint, the workers go on, and the next one works"
# A failed partition: refused, and named.
printf 'fail_mode = error\nfail_partition = 1\n[restart]\nfail_after = 1\n' >>"$T/slow.ini"
sctl reload >/dev/null
"$RINGCTL" gen events --events 5000 --keys 2000 --seed 13 >>"$T/events.tsv"
p1_failed() { sctl workers --json | jq -e '.[1].state == "failed"'; }
wait_until 60 p1_failed
if sctl savepoint "$T/sp_failed" 2>"$T/err"; then fail "a savepoint with a failed partition"; fi
grep -q "savepoint refused: partition 1 is failed.*: a savepoint needs every partition's worker running" "$T/err" ||
	{ cat "$T/err"; fail "failed partition"; }
ok "a savepoint with a failed partition is refused, naming it"
sctl stop >/dev/null
wait $sup || true
