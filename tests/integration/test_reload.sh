# SIGHUP: a broken INI changes nothing (error logged, still running); a
# changed rules table applies to the events after the reload (it flips an
# outcome); a changed partition count is reported as needing a restart.
. "$(dirname "$0")/lib.sh"
printf 'deposit\t1\t1000\t0\n' >"$T/rules.tsv"
printf 'acct1\tactive\t0\n' >"$T/accounts.tsv"
: >"$T/events.tsv"
RULES=$T/rules.tsv ACCOUNTS=$T/accounts.tsv PARTITIONS=1 write_config "$T/t.ini"
cp "$T/t.ini" "$T/good.ini"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log" &
sup=$!
BG_PIDS+=($sup)
lines() { cat "$T"/out/p*.tsv 2>/dev/null | wc -l; }
have_lines() { [ "$(lines)" -ge "$1" ]; }
event() { printf 'acct1\tdeposit\t%s\n' "$1" >>"$T/events.tsv"; }

event 500
wait_until 10 have_lines 1
# a broken INI: refused, the old config keeps running
printf '[worker]\nbatch_max = lots\n' >>"$T/t.ini"
kill -HUP $sup
wait_until 10 log_has "$T/log" "reload failed"
log_has "$T/log" "batch_max" || fail "the reload error does not name the setting"
event 600
wait_until 10 have_lines 2

# lower max_amount to 550: 600 now out of range
cp "$T/good.ini" "$T/t.ini"
printf 'deposit\t1\t550\t0\n' >"$T/rules.tsv"
kill -HUP $sup
wait_until 10 log_has "$T/log" "reload done generation=2"
event 600
wait_until 10 have_lines 3
# a setting that cannot change live
sed -i 's/^partitions = 1/partitions = 3/' "$T/t.ini"
kill -HUP $sup
wait_until 10 log_has "$T/log" "partitions: needs restart"
event 100
wait_until 10 have_lines 4
kill -TERM $sup
wait $sup || fail "exit status after SIGTERM"
cut -f5,6 "$T"/out/p0.tsv >"$T/got"
printf 'accepted\t500\naccepted\t1100\nrejected\tamount_out_of_range\naccepted\t1200\n' >"$T/want"
assert_same_file "outcomes around the reloads" "$T/want" "$T/got"
ok "reloads: broken INI kept the old config; new rule applied; partitions needs restart"
