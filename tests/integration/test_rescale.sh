# Rescaling a stopped data_dir (issue 18): a ledger case run in thirds, at
# 4 partitions, then `--rescale` to 7, then to 2, ends with the state of an
# uninterrupted run (at 4 and at 3 partitions), and its output files, every
# generation together, hold the same lines. Refused: a changed partitions
# without --rescale (the message of old), a data_dir not stopped cleanly, a
# Kafka source, a data_dir with no state. A re-split killed (kill -9) in
# the middle is rolled back or finished at the next start, and the state
# is right; so is one cut by power cuts (only what was fsynced survives:
# tests/powercut). A shard still locked by an earlier instance's worker is
# refused.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 60000 --keys 3000 --seed 11 >"$T/all.tsv"
write_config "$T/t.ini"
ref_run ref "$T/t.ini" -o source.path="$T/all.tsv"
PARTITIONS=3 write_config "$T/t3.ini"
ref_run ref3 "$T/t3.ini" -o source.path="$T/all.tsv"
assert_same_file "state at 3 partitions against 4" "$T/ref.state" "$T/ref3.state"

# A run whose file grows by a third before each start (a file that only
# grew resumes where it stopped).
run() { # log options...
	local log=$1
	shift
	"$RINGMASTER" -c "$T/t.ini" "$@" 2>"$T/$log" || { cat "$T/$log"; fail "run $log"; }
}
head -n 20000 "$T/all.tsv" >"$T/events.tsv"
run run1.log
sed -n 20001,40000p "$T/all.tsv" >>"$T/events.tsv"

# partitions changed without --rescale: refused as before, nothing changed.
rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.partitions=7 2>"$T/refused.log" || rc=$?
assert_eq "exit status of a changed partitions" 78 "$rc"
log_has "$T/refused.log" "state/p0 was made for 4 partitions, not 7: use partitions = 4, or start with an empty data_dir" ||
	{ cat "$T/refused.log"; fail "no partition count message"; }
ok "partitions changed without --rescale: refused with the old message"

run run2.log -o ringmaster.partitions=7 --rescale
log_has "$T/run2.log" 'rescaling .* from 4 to 7 partitions' || fail "no rescale line"
log_has "$T/run2.log" 're-split done keys=[0-9]* from_partitions=4 to_partitions=7 layout=2' ||
	fail "no re-split line"
[ "$(ls "$T/data/state")" = "$(printf 'p%s\n' 0 1 2 3 4 5 6)" ] || fail "state is not p0..p6: $(ls "$T/data/state")"
[ -s "$T/out/p6.g2.tsv" ] && [ -e "$T/out/.p6.g2.tsv.owner" ] || fail "no owned p6.g2.tsv"
cp "$T/out/p0.tsv" "$T/p0.gen1"
sed -n 40001,60000p "$T/all.tsv" >>"$T/events.tsv"
run run3.log -o ringmaster.partitions=2 --rescale
log_has "$T/run3.log" 're-split done keys=[0-9]* from_partitions=7 to_partitions=2 layout=3' ||
	fail "no second re-split line"
assert_same_file "an old generation's file" "$T/p0.gen1" "$T/out/p0.tsv"
"$RINGCTL" -c "$T/t.ini" -o ringmaster.partitions=2 dump-state >"$T/state"
assert_same_file "state after 4 -> 7 -> 2" "$T/ref.state" "$T/state"
all_output "$T/ref/out" >"$T/ref.out"
all_output "$T/out" >"$T/out.all"
assert_same_file "output lines of all generations" "$T/ref.out" "$T/out.all"
assert_same_file "dead letters" "$T/ref/dead.tsv" "$T/dead.tsv"
ok "4 -> 7 -> 2 partitions: state and output lines equal an uninterrupted run's"

# --rescale at the count the data_dir has: nothing to do, it runs.
run same.log -o ringmaster.partitions=2 --rescale
log_has "$T/same.log" "made for 2 partitions already: nothing to re-split" || fail "no nothing-to-do line"
ok "--rescale at the same count does nothing"

# A shard the new count drops, still locked by a worker of an earlier
# instance (a POSIX lock, as a worker holds it): refused, nothing changed.
perl -e 'use Fcntl; open(F, "+<", $ARGV[0]) or die "$ARGV[0]: $!";
	fcntl(F, F_SETLK, pack("s s x4 q q i x4", F_WRLCK, SEEK_SET, 0, 0, 0)) or die "lock: $!";
	$| = 1; print "locked\n"; sleep 300' "$T/data/state/p1/owner.lock" >"$T/locker.out" &
locker=$!
BG_PIDS+=("$locker")
wait_until 10 grep -q locked "$T/locker.out"
rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.partitions=1 --rescale 2>"$T/orphan.log" || rc=$?
assert_eq "exit status, --rescale with a shard still locked" 75 "$rc"
log_has "$T/orphan.log" "worker pid $locker of a previous instance still writes partition 1" ||
	{ cat "$T/orphan.log"; fail "no message about the locked shard"; }
kill "$locker"
[ "$(ls "$T/data/state" | wc -l)" = 2 ] || fail "a refused rescale changed the state"
ok "refused: --rescale while a worker of an earlier instance holds an old shard"

# No state yet: refused.
rc=0
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/empty" --rescale 2>"$T/empty.log" || rc=$?
assert_eq "exit status, --rescale of no state" 78 "$rc"
log_has "$T/empty.log" "holds no state yet .*nothing to re-split: start without --rescale" ||
	{ cat "$T/empty.log"; fail "no no-state message"; }

# Kafka: the topic decides.
rc=0
"$RINGMASTER" -c "$T/t.ini" -o source.type=kafka -o source.brokers=127.0.0.1:1 -o source.topic=x -o source.group=g \
	-o ringmaster.data_dir="$T/kafka" --rescale 2>"$T/kafka.log" || rc=$?
assert_eq "exit status, --rescale with Kafka" 78 "$rc"
log_has "$T/kafka.log" "with a Kafka source the partition count is the topic's" ||
	{ cat "$T/kafka.log"; fail "no Kafka message"; }
ok "refused: --rescale of no state, --rescale with a Kafka source"

# Not stopped cleanly: a run killed (-9, whole process group) while its
# shards are ahead of the resume position (a long sync_interval keeps the
# watermark back).
"$RINGCTL" gen events --events 400000 --keys 3000 --seed 12 >"$T/big.tsv"
write_config "$T/k.ini"
ko=(-o source.path="$T/big.tsv" -o ringmaster.data_dir="$T/k/data" -o output.dir="$T/k/out"
	-o output.dead_letter="$T/k/dead.tsv" -o ringmaster.run_dir="$T/k/run")
setsid "$RINGMASTER" -c "$T/k.ini" "${ko[@]}" -o store.sync_interval=1h -o source.follow=yes \
	2>"$T/k.log" &
sup=$!
BG_PIDS+=("$sup")
processed() { [ "$("$RINGCTL" -c "$T/k.ini" "${ko[@]}" status --json 2>/dev/null |
	grep -o '"processed":[0-9]*' | cut -d: -f2)" -gt 1000 ]; }
wait_until 30 processed
kill -KILL -- "-$sup"
wait "$sup" 2>/dev/null || true
wait_until 10 workers_gone
rc=0
"$RINGMASTER" -c "$T/k.ini" "${ko[@]}" -o ringmaster.partitions=3 --rescale 2>"$T/k2.log" || rc=$?
assert_eq "exit status, --rescale of a killed run" 78 "$rc"
log_has "$T/k2.log" "was not stopped cleanly: partition [0-9] applied events up to seq [0-9]*, at or past the recorded resume position" ||
	{ cat "$T/k2.log"; fail "no not-stopped-cleanly message"; }
[ "$(ls "$T/k/data/state" | wc -l)" = 4 ] || fail "a refused rescale changed the state"
# Run to the end at the old count, and the same rescale goes through.
"$RINGMASTER" -c "$T/k.ini" "${ko[@]}" 2>"$T/k3.log" || { cat "$T/k3.log"; fail "rerun"; }
"$RINGMASTER" -c "$T/k.ini" "${ko[@]}" -o ringmaster.partitions=3 --rescale 2>"$T/k4.log" ||
	{ cat "$T/k4.log"; fail "rescale after a clean run"; }
ref_run kref "$T/k.ini" -o source.path="$T/big.tsv"
"$RINGCTL" -c "$T/k.ini" "${ko[@]}" -o ringmaster.partitions=3 dump-state >"$T/k.state"
assert_same_file "state of the killed run, finished and rescaled" "$T/kref.state" "$T/k.state"
ok "a killed run is refused until it has run to a clean end, then rescales"

# A re-split killed in the middle: a state of many keys (example_counter
# keeps one per key) so the re-split takes long enough to be caught.
KEYS=${RESCALE_KEYS:-1500000}
write_config "$T/c.ini"
co=(-o ringmaster.data_dir="$T/c/data" -o output.type=none -o output.dead_letter="$T/c/dead.tsv"
	-o ringmaster.run_dir="$T/c/run" -o source.type=generate -o source.events=$((KEYS * 2))
	-o source.keys="$KEYS" -o worker.handler="$HANDLER_DIR/example_counter.so"
	-o store.map_size=1G)
"$RINGMASTER" -c "$T/c.ini" "${co[@]}" 2>"$T/c1.log" || { cat "$T/c1.log"; fail "big run"; }
"$RINGCTL" -c "$T/c.ini" "${co[@]}" dump-state >"$T/c.state"
"$RINGMASTER" -c "$T/c.ini" "${co[@]}" -o ringmaster.partitions=5 --rescale 2>"$T/c2.log" &
pid=$!
BG_PIDS+=("$pid")
# Killed as soon as state.new appears, not at a progress line: on a quiet
# machine the re-split of these keys takes about half a second, less than
# the interval between progress lines.
deadline=$((SECONDS + 60))
until [ -d "$T/c/data/state.new" ] || ((SECONDS > deadline)); do :; done
sleep 0.05
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
log_has "$T/c2.log" "re-split done" && fail "the re-split ended before the kill: raise RESCALE_KEYS"
[ -d "$T/c/data/state.new" ] || fail "no state.new after a kill mid re-split"
"$RINGMASTER" -c "$T/c.ini" "${co[@]}" -o ringmaster.partitions=5 --rescale 2>"$T/c3.log" ||
	{ cat "$T/c3.log"; fail "start after a killed re-split"; }
log_has "$T/c3.log" "a re-split was interrupted before its new state was complete: rolled back" ||
	{ cat "$T/c3.log"; fail "no rolled-back line"; }
log_has "$T/c3.log" "re-split done keys=[0-9]* from_partitions=4 to_partitions=5" || fail "not re-split again"
"$RINGCTL" -c "$T/c.ini" "${co[@]}" -o ringmaster.partitions=5 dump-state >"$T/c5.state"
assert_same_file "state after a killed re-split and a new one" "$T/c.state" "$T/c5.state"
[ ! -e "$T/c/data/state.new" ] && [ ! -e "$T/c/data/state.old" ] || fail "state.new or state.old left"
ok "a re-split killed in the middle is rolled back at the next start, and done again"

# Power cuts during re-splits: the process group SIGKILLed at a random
# moment of `--rescale`, and the data_dir replaced by what a power cut
# leaves (only what was fsynced); then again, until one run gets through.
# The state is then the re-split one, equal to the state before.
PCTOOL=$TOP/$B/tests/pctool
PCLIB=$TOP/$B/tests/libpowercut.so
for f in "$PCTOOL" "$PCLIB"; do [ -f "$f" ] || fail "$f is not built (make test builds it)"; done
PKEYS=${RESCALE_PC_KEYS:-300000}
po=(-o ringmaster.data_dir="$T/pc/data" -o output.type=none -o output.dead_letter="$T/pc/dead.tsv"
	-o ringmaster.run_dir="$T/pc/run" -o source.type=generate -o source.events=$((PKEYS * 2))
	-o source.keys="$PKEYS" -o worker.handler="$HANDLER_DIR/example_counter.so"
	-o store.map_size=1G)
"$RINGMASTER" -c "$T/c.ini" "${po[@]}" 2>"$T/pc1.log" || { cat "$T/pc1.log"; fail "power cut run"; }
"$RINGCTL" -c "$T/c.ini" "${po[@]}" dump-state >"$T/pc.state"
"$PCTOOL" init "$T/pc" "$T/pc.shadow" || fail "pctool init"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
cuts=0 to=3 runs=0
other() { [ "$1" = 3 ] && echo 5 || echo 3; }
while :; do
	runs=$((runs + 1))
	[ $runs -le 40 ] || fail "no run took the power cut within 40 runs"
	env LD_PRELOAD="$PCLIB" POWERCUT_ROOT="$T/pc" POWERCUT_SHADOW="$T/pc.shadow" \
		setsid "$RINGMASTER" -c "$T/c.ini" "${po[@]}" -o ringmaster.partitions=$to --rescale \
		2>>"$T/pc2.log" &
	sup=$!
	BG_PIDS+=("$sup")
	if [ $cuts -lt 4 ]; then
		# A moment somewhere in the re-split (it logs when it starts; a
		# quiet machine re-splits these keys in about 0.15 s).
		n_started=$(grep -c "re-split starting\|nothing to re-split" "$T/pc2.log" || true)
		pc_started() { [ "$(grep -c "re-split starting\|nothing to re-split" "$T/pc2.log")" -gt "$n_started" ] ||
			! kill -0 "$sup" 2>/dev/null; }
		wait_until 60 pc_started
		sleep "0.0$((RANDOM % 15))"
		if kill -0 "$sup" 2>/dev/null; then
			kill -KILL -- "-$sup" 2>/dev/null || true
			wait "$sup" 2>/dev/null || true
			wait_until 10 workers_gone
			"$PCTOOL" restore "$T/pc" "$T/pc.shadow" || fail "pctool restore"
			cuts=$((cuts + 1))
		else
			wait "$sup" || { tail -20 "$T/pc2.log"; fail "the run after $cuts power cuts failed"; }
		fi
		# A re-split that got through before the cut: the next one goes
		# back the other way, so that every run has one to cut.
		[ "$(ls "$T/pc/data/state" 2>/dev/null | grep -c '^p')" = "$to" ] && to=$(other $to)
		continue
	fi
	wait "$sup" || { tail -20 "$T/pc2.log"; fail "the run after $cuts power cuts failed"; }
	break
done
[ $cuts -ge 2 ] || fail "only $cuts power cuts: the re-splits were too short"
"$RINGCTL" -c "$T/c.ini" "${po[@]}" -o ringmaster.partitions=$to dump-state >"$T/pc3.state"
assert_same_file "state after $cuts power cuts during re-splits" "$T/pc.state" "$T/pc3.state"
ok "$cuts power cuts during re-splits ($(grep -c 'rolled back' "$T/pc2.log") rolled back, $(grep -c 'interrupted after its new state was durable: finished' "$T/pc2.log") finished at the next start); the state is right"
