# The limit program of `make bench-peers` (tests/bench/limit.c, issue 19)
# runs the ledger handler in memory: on the same events it must leave the
# same final balances and write the same output lines as ringmaster, with
# and without its prefetching, on generated events and on the hand-made
# file with every outcome and bad lines; and bad arguments and files get a
# message that names them.
. "$(dirname "$0")/lib.sh"
LIMIT=$TOP/${B:-build}/tests/bench/limit
[ -x "$LIMIT" ] || fail "$LIMIT is missing (make $B/tests/bench/limit)"

# compare TAG EVENTS RULES ACCOUNTS: ringmaster (3 partitions) against the limit.
compare() {
	local tag=$1 events=$2 rules=$3 accounts=$4 ini=$T/$1.ini
	RULES=$rules ACCOUNTS=$accounts SOURCE_PATH=$events PARTITIONS=3 write_config "$ini"
	ref_run "$tag" "$ini"
	all_output "$T/$tag/out" >"$T/$tag.expected_out"
	[ -s "$T/$tag.state" ] || fail "$tag: ringmaster left no state to compare with"
	for flag in "" -P; do
		# shellcheck disable=SC2086 # no flag or one
		"$LIMIT" $flag -o "$T/$tag.limit_out" -s "$T/$tag.limit_state" rules="$rules" \
			accounts="$accounts" "$events" >"$T/$tag.result" 2>"$T/$tag.err" ||
			{ cat "$T/$tag.err"; fail "$tag: limit $flag failed"; }
		assert_same_file "$tag: limit $flag final state" "$T/$tag.state" "$T/$tag.limit_state"
		LC_ALL=C sort "$T/$tag.limit_out" >"$T/$tag.limit_sorted"
		assert_same_file "$tag: limit $flag output" "$T/$tag.expected_out" "$T/$tag.limit_sorted"
		# In file order already, as it ran them.
		sort -n -c "$T/$tag.limit_out" || fail "$tag: limit $flag output not in seq order"
		grep -q "events=$(wc -l <"$events") .*complete=yes" "$T/$tag.result" ||
			[ "$tag" = small ] || fail "$tag: limit $flag result: $(cat "$T/$tag.result")"
	done
}

"$RINGCTL" gen rules >"$T/rules.tsv"
"$RINGCTL" gen accounts --keys 700 >"$T/accounts.tsv"
"$RINGCTL" gen events --events 30000 --keys 700 --skew 0.99 >"$T/events.tsv"
compare gen "$T/events.tsv" "$T/rules.tsv" "$T/accounts.tsv"
ok "limit: same balances and output as ringmaster on 30000 generated events"

# Every outcome, malformed payloads and lines that are no events; the
# limit writes no dead letters, so only the 10 output lines compare.
printf 'alice\tactive\t0\nbob\tactive\t1000\ncarol\tfrozen\t0\n' >"$T/small_accounts.tsv"
printf 'deposit\t1\t100000\t0\nwithdrawal\t-1\t50000\t100\n' >"$T/small_rules.tsv"
printf '%s\n' 'alice	deposit	10000' 'alice	withdrawal	5000' 'bob	withdrawal	1000' \
	'bob	withdrawal	990' 'carol	deposit	100' 'dave	deposit	100' 'alice	bonus	100' \
	'alice	deposit	0' 'alice	deposit	100001' 'alice	deposit	12x' 'alice	deposit' 'nodelim' \
	'	deposit	5' '{"type":"deposit","amount":50}' >"$T/small.tsv"
sed -i '$s/^/alice\t/' "$T/small.tsv"
compare small "$T/small.tsv" "$T/small_rules.tsv" "$T/small_accounts.tsv"
assert_eq "small: output lines" 10 "$(wc -l <"$T/small.limit_out")"
grep -q "events=12 " "$T/small.result" || fail "small: 12 events (2 lines are none): $(cat "$T/small.result")"
ok "limit: every outcome, a JSON payload and bad lines as ringmaster"

# refused NAME CODE PATTERN ARGS...: the limit exits with CODE and says PATTERN.
refused() {
	local what=$1 code=$2 pattern=$3 rc=0
	shift 3
	"$LIMIT" "$@" >"$T/refused.out" 2>"$T/refused.err" || rc=$?
	assert_eq "$what: exit status" "$code" "$rc"
	grep -q -- "$pattern" "$T/refused.err" || fail "$what: no '$pattern' in: $(cat "$T/refused.err")"
}
refused "no arguments" 2 "usage: limit"
refused "unknown option" 2 "usage: limit" -x rules="$T/rules.tsv" "$T/events.tsv"
refused "a table without NAME=" 1 "'$T/rules.tsv' is not NAME=FILE" "$T/rules.tsv" "$T/events.tsv"
refused "a bad table name" 1 "'ru-les=x' is not NAME=FILE" ru-les=x "$T/events.tsv"
refused "a missing table" 1 "cannot open $T/nope.tsv" rules="$T/nope.tsv" "$T/events.tsv"
printf 'deposit\t1\t10\t0\n\tnokey\n' >"$T/badkey.tsv"
refused "a row without a key" 1 "$T/badkey.tsv:2: a key is 1..255 bytes, got 0" \
	rules="$T/badkey.tsv" "$T/events.tsv"
refused "missing events" 1 "cannot open $T/none.tsv" rules="$T/rules.tsv" "$T/none.tsv"
refused "events in a directory" 1 "$T: not a regular file" rules="$T/rules.tsv" "$T"
refused "an unwritable output" 1 "cannot open $T/no/such/out" -o "$T/no/such/out" \
	rules="$T/rules.tsv" "$T/events.tsv"
# A rules row that does not parse is an error in our data: the handler
# fails the event, and the limit says where.
printf 'deposit\tone\t10\t0\n' >"$T/badrule.tsv"
printf 'alice\tdeposit\t5\n' >"$T/one.tsv"
refused "a rules row that does not parse" 1 "handler failed on the event at seq 0" \
	rules="$T/badrule.tsv" accounts="$T/small_accounts.tsv" "$T/one.tsv"
grep -q "table rules: row 'deposit' does not parse" "$T/refused.err" ||
	fail "the handler's reason is missing: $(cat "$T/refused.err")"
ok "limit: bad arguments and files are refused with a message naming them"
