# What must be refused: another partition count on a data_dir, a second
# instance on one run_dir.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 1000 --keys 100 >"$T/events.tsv"
PARTITIONS=4 write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" 2>"$T/log" || { cat "$T/log"; fail "first run"; }
set +e
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.partitions=8 2>"$T/log2"; rc=$?
set -e
[ $rc -ne 0 ] || fail "a start with 8 partitions on a 4-partition data_dir was accepted"
grep -q "made for 4 partitions, not 8" "$T/log2" || { cat "$T/log2"; fail "no clear message"; }
ok "wrong partition count refused: $(grep -o 'made for.*' "$T/log2" | head -1)"

# A follow-mode instance holds the run_dir; a second one must refuse.
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log3" &
first=$!
wait_until 10 log_has "$T/log3" "started partitions"
set +e
"$RINGMASTER" -c "$T/t.ini" 2>"$T/log4"; rc=$?
set -e
kill -TERM $first; wait $first || true
[ $rc -ne 0 ] || fail "second instance started"
grep -q "another ringmaster (pid $first)" "$T/log4" || { cat "$T/log4"; fail "message"; }
ok "second instance refused"
