# A small file through the ledger, with every outcome, checked line by line
# against results worked out by hand. Seqs are byte offsets: `@N` below
# stands for the offset of line N of the input, computed from the file.
. "$(dirname "$0")/lib.sh"

printf 'deposit\t1\t100000\t0\nwithdrawal\t-1\t50000\t100\n' >"$T/rules.tsv"
printf 'alice\tactive\t0\nbob\tactive\t1000\ncarol\tfrozen\t0\n' >"$T/accounts.tsv"
cat >"$T/events.tsv" <<'EV'
alice	deposit	10000
alice	withdrawal	5000
bob	withdrawal	1000
bob	withdrawal	990
carol	deposit	100
dave	deposit	100
alice	bonus	100
alice	deposit	0
alice	deposit	100001
alice	deposit	12x
alice	deposit
nodelim
	deposit	5
alice	deposit	50
EV
# offsets of each line, for @N
offsets=$(awk '{ print off + 0; off += length($0) + 1 }' "$T/events.tsv")
at() { echo "$offsets" | sed -n "${1}p"; }
expand() { while IFS= read -r l; do
	while [[ $l =~ @([0-9]+) ]]; do l=${l/@${BASH_REMATCH[1]}/$(at "${BASH_REMATCH[1]}")}; done
	printf '%s\n' "$l"; done; }

RULES=$T/rules.tsv ACCOUNTS=$T/accounts.tsv PARTITIONS=3 write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" --summary "$T/summary.json" 2>"$T/log" || { cat "$T/log"; fail "run"; }

expand >"$T/expected_out" <<'X'
@1	alice	deposit	10000	accepted	10000
@2	alice	withdrawal	5000	accepted	4950
@3	bob	withdrawal	1000	rejected	insufficient_funds
@4	bob	withdrawal	990	accepted	-999
@5	carol	deposit	100	rejected	frozen
@6	dave	deposit	100	rejected	unknown_account
@7	alice	bonus	100	rejected	unknown_type
@8	alice	deposit	0	rejected	amount_out_of_range
@9	alice	deposit	100001	rejected	amount_out_of_range
@14	alice	deposit	50	accepted	5000
X
# Output files hold each partition's lines in seq order; merge by seq.
cat "$T"/out/p*.tsv | sort -n >"$T/actual_out"
assert_same_file "ledger output" "$T/expected_out" "$T/actual_out"

printf 'alice\tbalance=5000 count=3\nbob\tbalance=-999 count=1\n' >"$T/expected_state"
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/actual_state"
assert_same_file "final state" "$T/expected_state" "$T/actual_state"

out=$("$RINGCTL" -c "$T/t.ini" state alice)
echo "$out" | grep -q "^alice	partition=[0-2]	balance=5000 count=3$" || fail "state alice: $out"

expand >"$T/expected_dead" <<'X'
@10	malformed	alice\tdeposit\t12x
@11	malformed	alice\tdeposit
@12	no_delimiter	nodelim
@13	empty_key	\tdeposit\t5
X
sort -n "$T/dead.tsv" >"$T/actual_dead"
assert_same_file "dead letters" "$T/expected_dead" "$T/actual_dead"

assert_eq "events read" 14 "$(json_get "$T/summary.json" events_read)"
assert_eq "processed" 12 "$(json_get "$T/summary.json" processed)"
assert_eq "dead-lettered" 4 "$(json_get "$T/summary.json" dead_lettered)"
assert_eq "accepted" 4 "$(json_get "$T/summary.json" accepted)"
assert_eq "amount_out_of_range" 2 "$(json_get "$T/summary.json" amount_out_of_range)"
ok "small ledger run"
