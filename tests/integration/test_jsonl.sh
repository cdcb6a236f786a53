# JSON lines ([source] format = jsonl): the events of `ringctl gen events`
# as TSV and as JSON lines, with bad lines of every class mixed into the
# JSON, end in the same state; the bad lines are dead letters with their
# reasons, in order: the supervisor's (bad_json, no_key, bad_key, ...) for
# a line it refuses before or at its key, the ledger's (malformed) for one
# broken after its key, which the supervisor does not read. And format = jsonl without key is refused, naming the
# line.
. "$(dirname "$0")/lib.sh"
args="--events 20000 --keys 3000 --seed 7"
"$RINGCTL" gen events $args >"$T/events.tsv"
"$RINGCTL" gen events $args --format jsonl >"$T/gen.jsonl"
assert_eq "one JSON line per TSV line" "$(wc -l <"$T/events.tsv")" "$(wc -l <"$T/gen.jsonl")"

# The bad lines, one a class, in the order their reasons are expected.
long=$(head -c 70000 /dev/zero | tr '\0' x)
longkey=$(head -c 300 /dev/zero | tr '\0' k)
{
	printf '{"account":"acct00000001","type":"deposit"\n'
	printf '[{"account":"acct00000001"}]\n'
	printf 'acct00000001\tdeposit\t5\n'
	printf '{"account":"acct00000001"} {}\n'
	printf '{"type":"deposit","amount":5}\n'
	printf '{"Account":"acct00000001","type":"deposit","amount":5}\n'
	printf '{"account":null,"type":"deposit","amount":5}\n'
	printf '{"account":1.5,"type":"deposit","amount":5}\n'
	printf '{"account":"","type":"deposit","amount":5}\n'
	printf '{"account":"%s","type":"deposit","amount":5}\n' "$longkey"
	printf '\n'
	printf '{"account":"acct00000002","note":"%s"}\n' "$long"
	printf '{"account":"acct00000003","type":"deposit","amount":"5"}\n'
} >"$T/bad.jsonl"
# Lines 1 and 4 are broken after the key: events, refused by the ledger.
want="malformed bad_json bad_json malformed no_key no_key bad_key bad_key bad_key bad_key"
want="$want empty_line too_long malformed "
# Half the events, the bad lines, an event with a CR, the rest.
head -n 10000 "$T/gen.jsonl" >"$T/events.jsonl"
cat "$T/bad.jsonl" >>"$T/events.jsonl"
sed -n '10001p' "$T/gen.jsonl" | tr -d '\n' >>"$T/events.jsonl"
printf '\r\n' >>"$T/events.jsonl"
tail -n +10002 "$T/gen.jsonl" >>"$T/events.jsonl"

write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" 2>"$T/log1" || { cat "$T/log1"; fail "TSV run"; }
"$RINGCTL" -c "$T/t.ini" dump-state >"$T/state_tsv"
[ -s "$T/state_tsv" ] || fail "no state after the TSV run"
[ ! -s "$T/dead.tsv" ] || fail "the TSV run dead-lettered: $(head -3 "$T/dead.tsv")"

mkdir "$T/json"
o="-o source.format=jsonl -o source.key=account -o source.path=$T/events.jsonl"
o="$o -o ringmaster.data_dir=$T/json/data -o output.dir=$T/json/out"
o="$o -o output.dead_letter=$T/json/dead.tsv"
"$RINGMASTER" -c "$T/t.ini" $o --summary "$T/s.json" 2>"$T/log2" \
	|| { cat "$T/log2"; fail "JSON run"; }
"$RINGCTL" -c "$T/t.ini" $o dump-state >"$T/state_json"
assert_same_file "state, TSV vs JSON lines" "$T/state_tsv" "$T/state_json"
# The events and the three lines the ledger refused; nothing lost: every
# bad line is a dead letter, once.
assert_eq "processed" 20003 "$(json_get "$T/s.json" processed)"
assert_eq "one dead letter a bad line" "$(wc -l <"$T/bad.jsonl")" "$(wc -l <"$T/json/dead.tsv")"

reasons=$(sort -n "$T/json/dead.tsv" | cut -f2 | tr '\n' ' ')
assert_eq "dead-letter reasons in order" "$want" "$reasons"
# Each at the offset of its line in the file.
seqs=$(sort -n "$T/json/dead.tsv" | cut -f1 | tr '\n' ' ')
expected=$(awk -v n="$(wc -l <"$T/bad.jsonl")" \
	'{ if (NR > 10000 && NR <= 10000 + n) printf "%d ", off; off += length($0) + 1 }' \
	"$T/events.jsonl")
assert_eq "dead-letter positions" "$expected" "$seqs"
grep -q '	too_long	{"account":"acct00000002","note":"xxxx' "$T/json/dead.tsv" \
	|| fail "the long line is kept in its dead letter"
# The outputs are the TSV run's, but for the seqs (byte offsets).
cut -f2- "$T/out"/p*.tsv | LC_ALL=C sort >"$T/out_tsv"
cut -f2- "$T/json/out"/p*.tsv | LC_ALL=C sort >"$T/out_json"
assert_same_file "outputs but for the seqs" "$T/out_tsv" "$T/out_json"
ok "JSON lines give the TSV run's state; bad lines dead-lettered with their reasons"

# format = jsonl without key: refused, naming the file and the line.
sed '0,/^type = file$/s//type = file\nformat = jsonl/' "$T/t.ini" >"$T/nokey.ini"
line=$(grep -n '^format = jsonl$' "$T/nokey.ini" | cut -d: -f1)
if "$RINGMASTER" -c "$T/nokey.ini" 2>"$T/log3"; then fail "format = jsonl without key ran"; fi
grep -q "nokey.ini:$line: \[source\] format jsonl needs key" "$T/log3" \
	|| { cat "$T/log3"; fail "no message naming nokey.ini:$line"; }
if "$RINGMASTER" -c "$T/t.ini" -o source.key=account 2>"$T/log4"; then
	fail "key without format = jsonl ran"
fi
grep -q "source.key=account.*needs format = jsonl" "$T/log4" || { cat "$T/log4"; fail "key alone"; }
ok "format = jsonl needs key, and key needs format = jsonl"
