# ringctl load-state: dump-state's text back into a stopped data_dir. A dump
# loaded into an empty data_dir dumps the same (at any partition count),
# binary values and text that looks like hex come back as they were, a
# loaded data_dir runs on like the one it came from, bad lines are refused
# by file:line with nothing loaded, keys with state are refused without
# --replace, and a running instance's data_dir is refused, naming its pid.
. "$(dirname "$0")/lib.sh"

"$RINGCTL" gen events --events 4000 --keys 300 >"$T/all.tsv"
head -2000 "$T/all.tsv" >"$T/first.tsv"
tail -n +2001 "$T/all.tsv" >"$T/second.tsv"
PARTITIONS=3 write_config "$T/t.ini"
CTL=("$RINGCTL" -c "$T/t.ini")
dir() { echo -o ringmaster.data_dir="$T/$1"; }

"$RINGMASTER" -c "$T/t.ini" -o source.path="$T/first.tsv" 2>"$T/log" || { cat "$T/log"; fail "run"; }
"${CTL[@]}" dump-state >"$T/a.dump"
[ "$(wc -l <"$T/a.dump")" -gt 100 ] || fail "a dump of $(wc -l <"$T/a.dump") keys"

# Identity, at the same and at another partition count.
out=$("${CTL[@]}" $(dir b) load-state "$T/a.dump") || fail "load-state: $out"
assert_eq "reply" "loaded $(wc -l <"$T/a.dump") keys into 3 partitions of $T/b (0 replaced)" "$out"
"${CTL[@]}" $(dir b) dump-state >"$T/b.dump"
assert_same_file "dump of the loaded data_dir" "$T/a.dump" "$T/b.dump"
"$RINGCTL" -c "$T/t.ini" $(dir c) -o ringmaster.partitions=5 load-state - <"$T/a.dump" >/dev/null ||
	fail "load-state into 5 partitions"
"${CTL[@]}" $(dir c) -o ringmaster.partitions=5 dump-state >"$T/c.dump"
assert_same_file "dump of 5 partitions" "$T/a.dump" "$T/c.dump"
key=$(head -1 "$T/a.dump" | cut -f1)
"${CTL[@]}" $(dir c) -o ringmaster.partitions=5 state "$key" | grep -q "^$key	partition=" ||
	fail "ringctl state $key after a load"
ok "dump-state | load-state is an identity (3 and 5 partitions)"

# The loaded data_dir runs on as the original would have: the second half
# of the events on it ends in the state of a run of all of them.
PARTITIONS=3 write_config "$T/all.ini"
ref_run ref "$T/all.ini" -o source.path="$T/all.tsv"
"$RINGMASTER" -c "$T/t.ini" $(dir b) -o source.path="$T/second.tsv" -o output.dir="$T/out2" \
	-o output.dead_letter="$T/dead2.tsv" 2>"$T/log2" || { cat "$T/log2"; fail "run on the loaded data_dir"; }
"${CTL[@]}" $(dir b) dump-state >"$T/b2.dump"
assert_same_file "loaded, then run on" "$T/ref.state" "$T/b2.dump"
ok "a loaded data_dir runs on"

# Binary values, and text that begins with hex:, round-trip.
printf '%s\n' 'bin	hex:00ff0a09' 'hex:6b09	tab in the key' 'looks	hex:6865783a7a7a' 'plain	héllo wörld' \
	'empty	' >"$T/odd.dump"
"${CTL[@]}" $(dir d) load-state "$T/odd.dump" >/dev/null || fail "load odd values"
"${CTL[@]}" $(dir d) dump-state >"$T/d.dump"
LC_ALL=C sort "$T/odd.dump" >"$T/odd.sorted"
assert_same_file "odd keys and values" "$T/odd.sorted" "$T/d.dump"
ok "binary keys and values, and text that looks like hex, round-trip"

# Bad lines: each named, nothing loaded.
printf '%s\n' 'good	1' 'no tab here' '	empty key' 'odd	hex:abc' 'upper	hex:AB' 'ctl	a' 'good	2' >"$T/bad.dump"
printf 'raw\tbell\a\nlast\tno newline' >>"$T/bad.dump"
out=$("${CTL[@]}" $(dir e) load-state "$T/bad.dump" 2>&1) && fail "bad lines loaded: $out"
printf '%s\n' "ringctl: $T/bad.dump:2: no tab between the key and the value" \
	"ringctl: $T/bad.dump:3: an empty key" \
	"ringctl: $T/bad.dump:4: the value: an odd number of hex digits after hex:" \
	"ringctl: $T/bad.dump:5: the value: not a lower-case hex digit after hex:" \
	"ringctl: $T/bad.dump:8: the value: a control byte or bytes that are not UTF-8 in its text: write it as hex:" \
	"ringctl: $T/bad.dump:9: no newline at its end (a copy still going on?)" \
	"ringctl: $T/bad.dump:7: a key given twice (first on line 1)" \
	"ringctl: $T/bad.dump: 7 bad lines: nothing loaded" >"$T/expected"
printf '%s\n' "$out" >"$T/got"
assert_same_file "bad lines" "$T/expected" "$T/got"
[ ! -e "$T/e/state" ] || [ -z "$("${CTL[@]}" $(dir e) dump-state)" ] || fail "something was loaded"
ok "malformed lines refused with file:line, nothing loaded"

# Keys with state: refused unless --replace, and then nothing else changes.
printf '%s\n' 'new	1' "$key	replaced" >"$T/two.dump"
out=$("${CTL[@]}" $(dir b) load-state "$T/two.dump" 2>&1) && fail "loaded over state: $out"
echo "$out" | grep -q "^ringctl: $T/two.dump:2: the key has state already (partition [0-2]): use --replace to overwrite it$" ||
	fail "refusal: $out"
"${CTL[@]}" $(dir b) dump-state | cmp -s - "$T/b2.dump" || fail "a refused load changed the state"
out=$("${CTL[@]}" $(dir b) load-state --replace "$T/two.dump") || fail "--replace: $out"
assert_eq "reply" "loaded 2 keys into 3 partitions of $T/b (1 replaced)" "$out"
{ grep -v "^$key	" "$T/b2.dump"; printf '%s\n' 'new	1' "$key	replaced"; } | LC_ALL=C sort >"$T/expected"
"${CTL[@]}" $(dir b) dump-state >"$T/got"
assert_same_file "after --replace" "$T/expected" "$T/got"
ok "keys with state: refused, or replaced with --replace"

# A running instance's data_dir.
"$RINGMASTER" -c "$T/t.ini" $(dir b) -o source.path="$T/second.tsv" -o source.follow=yes \
	-o output.dir="$T/out2" -o output.dead_letter="$T/dead2.tsv" 2>"$T/log3" &
BG_PIDS+=($!)
"${CTL[@]}" wait >/dev/null
out=$("${CTL[@]}" $(dir b) load-state --replace "$T/two.dump" 2>&1) && fail "loaded into a running instance"
assert_eq "refusal" "ringctl: ringmaster (pid ${BG_PIDS[0]}) is running on data_dir $T/b (it holds $T/b/lock): load-state wants a stopped data_dir; stop it first" "$out"
"${CTL[@]}" stop >/dev/null
wait "${BG_PIDS[0]}" || fail "exit status"
ok "a running instance's data_dir is refused"
