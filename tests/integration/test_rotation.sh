# follow = yes through rotations, as `tail -F` does: the followed path
# renamed away and a new file created there (several times, sometimes
# with the new file created empty first), and copy-truncate (cp, then
# truncate; once written again at once), while a writer appends lines; a
# SIGTERM and a start again between two rotations. The state and the
# outputs must equal those of a run over the concatenation of every line
# written: nothing read twice, nothing skipped, and the same seqs (a seq is
# the byte position in that concatenation).
. "$(dirname "$0")/lib.sh"
write_config "$T/t.ini"
D=$T/rot
mkdir -p "$D"
P=$D/events.tsv
at() { # the overrides for the followed instance
	echo "-o ringmaster.data_dir=$D/data -o ringmaster.run_dir=$D/run -o output.dir=$D/out" \
		"-o output.dead_letter=$D/dead.tsv -o source.path=$P -o source.follow=yes"
}
"$RINGCTL" gen events --events 12000 --keys 100 --seed 21 >"$T/all.tsv"
split -l 500 -d -a 2 "$T/all.tsv" "$T/chunk."
written=0
before=0 # lines applied by runs before this one (its status counts its own)
write_chunk() { # N: append chunk N in a few writes, as a writer would
	local c=$T/chunk.$(printf %02d "$1")
	sed -n '1,200p' "$c" >>"$P"
	sleep 0.02
	sed -n '201,400p' "$c" >>"$P"
	sleep 0.02
	sed -n '401,$p' "$c" >>"$P"
	written=$((written + $(wc -l <"$c")))
}
processed() { # every line written so far is applied
	local st
	st=$("$RINGCTL" -s "$D/run/control.sock" status --json) \
		&& jq -e ".processed + .handler_rejected == $written - $before" <<<"$st"
}
start() { # and wait until it answers: it has opened the path by then, so a
	# rotation right after is one it follows (a slow start would miss it)
	"$RINGMASTER" -c "$T/t.ini" $(at) 2>>"$D/log" &
	fpid=$!
	BG_PIDS+=($fpid)
	"$RINGCTL" -s "$D/run/control.sock" wait -t 30s
}
stop() { # WHAT: SIGTERM stops it with 0
	kill -TERM $fpid
	local rc=0
	wait $fpid || rc=$?
	assert_eq "$1: exit status after SIGTERM" 0 $rc
}
rename_rotation() { # N [empty]: mv away; the writer goes on in a new file
	mv "$P" "$P.$1"
	[ "${2:-}" != empty ] || : >"$P"
}
truncations=0
copy_truncate() { # N [refill]: cp, truncate (what a writer adds meanwhile is lost
	# anyway, so the writer waits until all was read); then written again
	# at once, or after the truncation was seen
	wait_until 20 processed
	cp "$P" "$P.$1"
	truncate -s 0 "$P"
	truncations=$((truncations + 1))
	[ "${2:-}" = refill ] \
		|| wait_until 10 log_has "$D/log" "level=warn .*$P was truncated" $truncations
}

: >"$P"
start
n=0
write_chunk $((n++))
write_chunk $((n++))
rename_rotation 1
write_chunk $((n++))
rename_rotation 2 empty
write_chunk $((n++))
write_chunk $((n++))
copy_truncate 3
write_chunk $((n++))
rename_rotation 4
write_chunk $((n++))
copy_truncate 5
write_chunk $((n++))
write_chunk $((n++))
# a restart between two rotations
wait_until 20 processed
stop "before the restart"
before=$written
write_chunk $((n++))
start
wait_until 10 log_has "$D/log" "resuming the source at seq="
write_chunk $((n++))
rename_rotation 6
write_chunk $((n++))
copy_truncate 7 refill
write_chunk $((n++))
write_chunk $((n++))
copy_truncate 8
write_chunk $((n++))
rename_rotation 9 empty
rename_rotation 10 # twice in a row: an empty file finished
write_chunk $((n++))
write_chunk $((n++))
rename_rotation 11
write_chunk $((n++))
wait_until 20 processed
stop "at the end"
[ $truncations -eq "$(grep -c "level=warn .*$P was truncated" "$D/log")" ] \
	|| { grep "truncated" "$D/log"; fail "one warning a truncation"; }
log_has "$D/log" "another file at that path" 6 || fail "renames not logged"
! grep -q "not reading it" "$D/log" || fail "the file was detached"

# The reference: every line written, in order, in one file.
R=$T/ref
mkdir -p "$R"
for i in $(seq 0 $((n - 1))); do
	cat "$T/chunk.$(printf %02d "$i")"
done >"$R/events.tsv"
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$R/data" -o ringmaster.run_dir="$R/run" \
	-o output.dir="$R/out" -o output.dead_letter="$R/dead.tsv" -o source.path="$R/events.tsv" \
	2>"$R/log" || { cat "$R/log"; fail "reference run"; }
assert_eq "lines in the reference" $written "$(wc -l <"$R/events.tsv")"
same_outputs "$R/out" "$D/out"
"$RINGCTL" -c "$T/t.ini" -o ringmaster.data_dir="$R/data" dump-state >"$R/state"
"$RINGCTL" -c "$T/t.ini" $(at) dump-state >"$D/state"
assert_same_file "state" "$R/state" "$D/state"
[ ! -s "$D/dead.tsv" ] && [ ! -s "$R/dead.tsv" ] || assert_same_file "dead letters" "$R/dead.tsv" "$D/dead.tsv"
ok "$n chunks, 7 renames and 4 copy-truncates, a restart between two: state and outputs equal a run over the concatenation"
