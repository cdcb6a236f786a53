# Power cuts at random moments: the whole process group is SIGKILLed and the
# data_dir, the outputs and the dead-letter file are replaced by what a power
# cut would leave (only what reached fsync, fdatasync or an O_DSYNC write:
# tests/powercut), then ringmaster runs again, as often as it takes. The end
# state and every output file equal an uninterrupted run's byte for byte;
# dead letters equal it as a set (they are at least once). Over file and
# generate sources, sync = periodic and batch.
. "$(dirname "$0")/lib.sh"
PCTOOL=$TOP/$B/tests/pctool
PCLIB=$TOP/$B/tests/libpowercut.so
for f in "$PCTOOL" "$PCLIB"; do [ -f "$f" ] || fail "$f is not built (make test builds it)"; done

# Events with lines the source refuses (no delimiter) and payloads the
# ledger rejects, so that both kinds of dead letters are in play.
"$RINGCTL" gen events --events 200000 --keys 3000 --seed 31 --skew 0.9 |
	awk 'NR % 500 == 0 { print "not an event " NR } NR % 700 == 0 { print "acct00000001\tdeposit\tlots" } { print }' \
		>"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=256 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 20"
GEN=(-o source.type=generate -o source.events=200000 -o source.keys=3000 -o source.seed=31)

ref_run ref_file "$T/t.ini" -o handler.sleep_us=0
ref_run ref_gen "$T/t.ini" -o handler.sleep_us=0 "${GEN[@]}"
[ -s "$T/ref_file/dead.tsv" ] || fail "the reference run has no dead letters to compare"

export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
total_cuts=0
# scenario NAME REF CUTS ARGS...: CUTS power cuts at random moments, then a
# run to the end, all under the harness; compare with REF.
scenario() {
	local name=$1 refname=$2 want=$3; shift 3
	local R=$T/$name S=$T/$name.shadow cuts=0
	mkdir -p "$R"
	"$PCTOOL" init "$R" "$S" || fail "pctool init"
	local args=(-o ringmaster.data_dir="$R/data" -o output.dir="$R/out"
		-o output.dead_letter="$R/dead.tsv" -o ringmaster.run_dir="$T/$name.run" "$@")
	while :; do
		local cut=$((cuts < want))
		env LD_PRELOAD="$PCLIB" POWERCUT_ROOT="$R" POWERCUT_SHADOW="$S" \
			setsid "$RINGMASTER" -c "$T/t.ini" "${args[@]}" \
			$([ $cut = 1 ] || echo -o handler.sleep_us=0) 2>>"$T/$name.log" &
		local sup=$!
		BG_PIDS+=($sup)
		if [ $cut = 1 ]; then
			sleep "0.$((RANDOM % 8 + 2))"
			if kill -0 $sup 2>/dev/null; then
				kill -KILL -- -$sup 2>/dev/null || true
				wait $sup 2>/dev/null || true
				wait_until 10 workers_gone
				"$PCTOOL" restore "$R" "$S" || fail "$name: pctool restore"
				cuts=$((cuts + 1))
				continue
			fi
		fi
		wait $sup || { tail -20 "$T/$name.log"; fail "$name: the last run failed"; }
		break
	done
	[ $cuts -ge "$want" ] || fail "$name: only $cuts cuts: the runs were too short"
	"$RINGCTL" -c "$T/t.ini" -o ringmaster.data_dir="$R/data" dump-state >"$T/$name.state"
	assert_same_file "$name: state after $cuts power cuts" "$T/$refname.state" "$T/$name.state"
	same_outputs "$T/$refname/out" "$R/out"
	LC_ALL=C sort -u "$T/$refname/dead.tsv" >"$T/want.dead"
	LC_ALL=C sort -u "$R/dead.tsv" >"$T/got.dead"
	assert_same_file "$name: dead letters (as a set)" "$T/want.dead" "$T/got.dead"
	total_cuts=$((total_cuts + cuts))
	ok "$name: $cuts power cuts, $(grep -c 'resuming the source at seq=' "$T/$name.log") resumes past 0; state, outputs and dead letters equal"
}

scenario file_periodic ref_file 4 -o store.sync=periodic -o store.sync_interval=200ms
scenario gen_periodic ref_gen 3 -o store.sync=periodic -o store.sync_interval=200ms "${GEN[@]}"
scenario file_batch ref_file 3 -o store.sync=batch
scenario gen_batch ref_gen 2 -o store.sync=batch "${GEN[@]}"
ok "$total_cuts power cuts in all"
