# The file source keeps what it reads straight: a last line longer than the
# read buffer, without a newline, is dead-lettered like any other long line.
. "$(dirname "$0")/lib.sh"
write_config "$T/t.ini"

at() { # DIR: the overrides that put an instance's files (and its source) in DIR
	echo "-o ringmaster.data_dir=$1/data -o ringmaster.run_dir=$1/run -o output.dir=$1/out" \
		"-o output.dead_letter=$1/dead.tsv -o source.path=$1/events.tsv"
}

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
