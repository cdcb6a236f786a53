# Every error caused by a setting names where the setting came from: the
# INI file's line, or the -o override. Table errors name the table's file
# and line and the INI line that named the table, every one of them, table
# by table in the INI file's order and each table's in line order; the same
# at start, with -t and on a reload (ringctl reload). A table whose last line
# has no newline (a copy still going on) is refused at start and on reload,
# and the old configuration keeps running. INI lines of any length are taken
# (a 5,000-character path, a long Kafka property); a NUL byte is an error.
. "$(dirname "$0")/lib.sh"
printf 'acct1\tdeposit\t100\nacct1\tdeposit\t900\n' >"$T/events.tsv"
printf 'deposit\t1\t1000\t0\n' >"$T/rules.tsv"
printf 'acct1\tactive\t0\n' >"$T/accounts.tsv"
# write_config puts [table.rules] path on line 28, [table.accounts] path on
# line 31; what is given here starts at line 32.
RULES=$T/rules.tsv ACCOUNTS=$T/accounts.tsv PARTITIONS=1 write_config "$T/t.ini"
cp "$T/t.ini" "$T/good.ini"
assert_eq "write_config's table lines" "28 31" \
	"$(grep -n '^path = .*tsv$' "$T/t.ini" | sed -n '2,3p' | cut -d: -f1 | tr '\n' ' ' | sed 's/ $//')"

expect() { # exit-code command... : stderr in $T/err
	local want=$1 rc=0; shift
	"$@" >"$T/stdout" 2>"$T/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$T/stdout" "$T/err" >&2; fail "$*: exit $rc, expected $want"; }
}
# messages: stderr without the log records' prefix
messages() { log_messages "$T/err"; }

# ---- table errors, in the INI file's order, each naming its INI line ----
printf 'acct1\tactive\t0\n\tno key\nacct2\tactive\t0\nacct1\tdup\n' >"$T/bad_accounts.tsv"
printf 'deposit\t1\t1000\t0\nwithdraw\t1\t1000\t0' >"$T/half_rules.tsv" # no newline: cut off
sed -i "s|^path = $T/rules.tsv\$|path = $T/half_rules.tsv|; s|^path = $T/accounts.tsv\$|path = $T/bad_accounts.tsv|" "$T/t.ini"
printf '[table.missing]\npath = %s/nope.tsv\n' "$T" >>"$T/t.ini"
cat >"$T/want" <<EOF
$T/half_rules.tsv:2: last line incomplete (no newline at the end): the file may still be being written (table rules, $T/t.ini:28)
$T/bad_accounts.tsv:2: empty key (table accounts, $T/t.ini:31)
$T/bad_accounts.tsv:4: duplicate key 'acct1' (first on line 1) (table accounts, $T/t.ini:31)
$T/t.ini:33: [table.missing] path = $T/nope.tsv: cannot open: No such file or directory
EOF
expect 78 "$RINGMASTER" -c "$T/t.ini" -t
assert_same_file "ringmaster -t: table errors" "$T/want" "$T/err"
expect 78 "$RINGMASTER" -c "$T/t.ini"
messages | grep -v "^cannot load the reference tables" >"$T/got"
assert_same_file "start: table errors" "$T/want" "$T/got"
ok "table errors at start and with -t, in file order, each naming its INI line"

# an override names itself, not a line of the file
expect 78 "$RINGMASTER" -c "$T/good.ini" -o table.rules.path=nope.tsv -t
assert_eq "-o table path" \
	"-o table.rules.path=nope.tsv: [table.rules] path = $PWD/nope.tsv: cannot open: No such file or directory" \
	"$(cat "$T/err")"
expect 78 "$RINGMASTER" -c "$T/good.ini" -o source.path=/nope -t
assert_eq "-t with -o source.path" \
	"-o source.path=/nope: [source] path = /nope: cannot open the source file: No such file or directory" \
	"$(cat "$T/err")"
# runs that fail: each on data_dir and outputs of its own
own() { echo "-o ringmaster.data_dir=$T/$1/data -o output.dir=$T/$1/out -o output.dead_letter=$T/$1/dead.tsv"; }
expect 1 "$RINGMASTER" -c "$T/good.ini" -o source.path=/nope $(own a)
messages | grep -qxF -- "-o source.path=/nope: [source] path = /nope: cannot open the source file: No such file or directory" \
	|| { cat "$T/err"; fail "the source file's error does not name the override"; }
expect 1 "$RINGMASTER" -c "$T/good.ini" $(own b) -o source.path="$T/nope.tsv"
messages | grep -qxF -- "$T/good.ini:16: [source] path = $T/nope.tsv: cannot open the source file: No such file or directory" \
	&& fail "an override is named as a line of the file"
messages | grep -qF -- "-o source.path=$T/nope.tsv: [source] path = $T/nope.tsv: cannot open" \
	|| { cat "$T/err"; fail "no override named"; }
sed "s|^path = $T/events.tsv\$|path = $T/nope.tsv|" "$T/good.ini" >"$T/nosrc.ini"
expect 1 "$RINGMASTER" -c "$T/nosrc.ini" $(own c)
messages | grep -qxF -- "$T/nosrc.ini:16: [source] path = $T/nope.tsv: cannot open the source file: No such file or directory" \
	|| { cat "$T/err"; fail "the source file's error does not name its line"; }
ok "errors name the -o override or the line that set the value"

# ---- reload: a table cut off mid-copy is refused, the old one runs on ----
cp "$T/good.ini" "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log" &
sup=$!
BG_PIDS+=($sup)
lines() { cat "$T"/out/p*.tsv 2>/dev/null | wc -l; }
have_lines() { [ "$(lines)" -ge "$1" ]; }
wait_until 10 have_lines 2
printf 'deposit\t1\t550\t0' >"$T/rules.tsv" # mid-copy: no newline yet
rc=0
"$RINGCTL" -c "$T/t.ini" reload >"$T/stdout" 2>"$T/err" || rc=$?
assert_eq "ringctl reload of a half-written table: exit" 1 $rc
grep -qF "$T/rules.tsv:1: last line incomplete (no newline at the end): the file may still be being written (table rules, $T/t.ini:28)" "$T/err" \
	|| { cat "$T/stdout" "$T/err"; fail "ringctl reload does not say which table line is incomplete"; }
wait_until 10 log_has "$T/log" "reload failed: $T/rules.tsv:1: last line incomplete"
printf 'acct1\tdeposit\t600\n' >>"$T/events.tsv"
wait_until 10 have_lines 3
# the old rules (max 1000) still apply: 600 accepted
tail -n 1 "$T"/out/p0.tsv | cut -f5 | grep -qx accepted || fail "the half table was loaded"
printf '\n' >>"$T/rules.tsv" # the copy ends: max 550 now
"$RINGCTL" -c "$T/t.ini" reload >"$T/stdout" 2>"$T/err" || { cat "$T/err"; fail "reload of the whole table"; }
printf 'acct1\tdeposit\t600\n' >>"$T/events.tsv"
wait_until 10 have_lines 4
tail -n 1 "$T"/out/p0.tsv | cut -f5,6 | grep -qx "rejected	amount_out_of_range" || fail "the whole table was not loaded"
# a bad row on reload names its INI line too
printf 'deposit\t1\t550\t0\ndeposit\t2\t5\t0\n' >"$T/rules.tsv"
rc=0
"$RINGCTL" -c "$T/t.ini" reload >"$T/stdout" 2>"$T/err" || rc=$?
assert_eq "ringctl reload of a bad table: exit" 1 $rc
grep -qF "$T/rules.tsv:2: duplicate key 'deposit' (first on line 1) (table rules, $T/t.ini:28)" "$T/err" \
	|| { cat "$T/stdout" "$T/err"; fail "ringctl reload: no table line"; }
kill -TERM $sup
wait $sup || fail "exit status after SIGTERM"
ok "reload: a half-written table is refused with its line, the old one keeps running"

# ---- a half-written table at start ----
printf 'deposit\t1\t1000\t0' >"$T/rules.tsv"
expect 78 "$RINGMASTER" -c "$T/t.ini" $(own d)
messages | grep -qxF "$T/rules.tsv:1: last line incomplete (no newline at the end): the file may still be being written (table rules, $T/t.ini:28)" \
	|| { cat "$T/err"; fail "start with a half-written table"; }
printf '\n' >>"$T/rules.tsv"
ok "a half-written table refused at start"

# ---- lines of any length; a NUL byte is an error ----
dots=$(printf './%.0s' $(seq 2500))
jaas=$(printf 'org.apache.kafka.common.security.plain.PlainLoginModule required %.0s' $(seq 60))
RULES=$T/rules.tsv ACCOUNTS=$T/accounts.tsv PARTITIONS=1 SOURCE_PATH="$T/$dots/events.tsv" \
	write_config "$T/long.ini" "[kafka]" "sasl.jaas.config = $jaas" \
	"[handler]" "note = $(printf 'n%.0s' $(seq 3000))"
[ "$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$T/long.ini")" -gt 5000 ] \
	|| fail "the INI has no line over 5,000 characters"
expect 0 "$RINGMASTER" -c "$T/long.ini" -t
expect 0 "$RINGMASTER" -c "$T/long.ini" $(own e) --summary "$T/s4.json"
assert_eq "events read through a 5,000-character path" "$(grep -c '' "$T/events.tsv")" \
	"$(json_get "$T/s4.json" processed)"
printf '[worker]\nbatch_max = 5\0000\n' >>"$T/long.ini"
expect 78 "$RINGMASTER" -c "$T/long.ini" -t
nul_line=$(wc -l <"$T/long.ini")
grep -qxF "$T/long.ini:$nul_line: NUL byte in line" "$T/err" || { cat "$T/err"; fail "NUL byte"; }
ok "a 5,000-character path and a long Kafka property taken; a NUL byte refused at its line"
