# Malformed lines go to the dead-letter file with the right reason and
# position; everything else is processed.
. "$(dirname "$0")/lib.sh"
long=$(head -c 70000 /dev/zero | tr '\0' x)
longkey=$(head -c 300 /dev/zero | tr '\0' k)
{
	printf 'acct00000001\tdeposit\t100\n'
	printf 'no delimiter here\n'
	printf '\n'
	printf '\tdeposit\t5\n'
	printf '%s\tdeposit\t5\n' "$longkey"
	printf 'acct00000002\t%s\n' "$long"
	printf 'acct00000003\tdeposit\t12x\n'
	printf 'acct00000004\tdeposit\t300\r\n'
	printf 'acct00000005\tdeposit\t400'   # no final newline
} >"$T/events.tsv"
printf 'deposit\t1\t100000\t0\n' >"$T/rules.tsv"
for i in 1 2 3 4 5; do printf 'acct0000000%d\tactive\t0\n' $i; done >"$T/accounts.tsv"
RULES=$T/rules.tsv ACCOUNTS=$T/accounts.tsv write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" --summary "$T/s.json" 2>"$T/log" || { cat "$T/log"; fail "run"; }
reasons=$(sort -n "$T/dead.tsv" | cut -f2 | tr '\n' ' ')
assert_eq "dead-letter reasons in order" "no_delimiter empty_line empty_key key_too_long too_long malformed " "$reasons"
seqs=$(sort -n "$T/dead.tsv" | cut -f1 | tr '\n' ' ')
expected=$(awk '{ if (NR >= 2 && NR <= 7) printf "%d ", off; off += length($0) + 1 }' "$T/events.tsv")
assert_eq "dead-letter positions" "$expected" "$seqs"
grep -q "^[0-9]*	too_long	acct00000002\\\\txxxx" "$T/dead.tsv" || fail "long line kept in the dead letter"
assert_eq "processed" 4 "$(json_get "$T/s.json" processed)"
all_output "$T/out" | cut -f2,5,6 >"$T/got"
printf 'acct00000001\taccepted\t100\nacct00000004\taccepted\t300\nacct00000005\taccepted\t400\n' >"$T/want"
assert_same_file "processed events" "$T/want" "$T/got"
ok "malformed lines dead-lettered, the rest processed"
