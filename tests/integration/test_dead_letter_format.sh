# The dead-letter format of ringmaster(8): seq<TAB>reason<TAB>line, the line
# escaped reversibly (\t \n \r \\, and \xHH for control bytes and for every
# byte that is not valid UTF-8; valid UTF-8 kept as it is), and a line too
# long to keep whole (over 1 MiB in a file) cut to its first 1 MiB with a
# fourth field truncated=TOTAL, so that a replay can refuse it.
. "$(dirname "$0")/lib.sh"
big=$((1536 * 1024)) # a 1.5 MiB line: over the 1 MiB kept
{
	printf 'acct1\tdeposit\t100\n'
	printf 'no delimiter: caf\xc3\xa9 \xe2\x82\xac \xff\xfe\xc3 back\\slash \x01 \x7f\r\n'
	printf 'acct2\tdeposit\t'
	head -c $((big - 14)) /dev/zero | tr '\0' x
	printf '\n'
	printf 'acct3\tdeposit\t300\n'
} >"$T/events.tsv"
printf 'deposit\t1\t100000\t0\n' >"$T/rules.tsv"
for i in 1 2 3; do printf 'acct%d\tactive\t0\n' $i; done >"$T/accounts.tsv"
RULES=$T/rules.tsv ACCOUNTS=$T/accounts.tsv write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" --summary "$T/s.json" 2>"$T/log" || { cat "$T/log"; fail "run"; }
assert_eq "processed" 2 "$(json_get "$T/s.json" processed)"
assert_eq "dead letters" 2 "$(wc -l <"$T/dead.tsv")"

# the bad UTF-8 line: one line of the file, its bytes recoverable
seq2=$(head -n 1 "$T/events.tsv" | wc -c)
printf '%s\tno_delimiter\tno delimiter: caf\xc3\xa9 \xe2\x82\xac \\xff\\xfe\\xc3 back\\\\slash \\x01 \\x7f\n' \
	$seq2 >"$T/want"
grep "	no_delimiter	" "$T/dead.tsv" >"$T/got"
assert_same_file "escaped line" "$T/want" "$T/got"
ok "invalid UTF-8 as \\xHH, valid UTF-8 kept, backslash doubled"

# the long line: its first 1 MiB, and the mark with its whole length
seq3=$(head -n 2 "$T/events.tsv" | wc -c)
line=$(grep "	too_long	" "$T/dead.tsv") || fail "no too_long dead letter"
assert_eq "fields of a cut line" 4 "$(printf '%s\n' "$line" | awk -F'\t' '{ print NF }')"
assert_eq "seq" "$seq3" "$(printf '%s\n' "$line" | cut -f1)"
assert_eq "mark" "truncated=$big" "$(printf '%s\n' "$line" | cut -f4)"
kept=$(printf '%s' "$(printf '%s\n' "$line" | cut -f3)" | wc -c)
assert_eq "bytes kept, as escaped (two tabs as \\t)" $((1024 * 1024 + 2)) "$kept"
printf '%s\n' "$line" | cut -f3 | grep -q '^acct2\\tdeposit\\txxxx*$' || fail "kept bytes"
log_has "$T/log" "line too long at seq=$seq3: $big bytes" || fail "no warning"
ok "a 1.5 MiB line: its first 1 MiB kept, marked truncated=$big"
