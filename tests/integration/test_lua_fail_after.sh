# A Lua handler's failures count towards fail_after like any other: a
# script that errors on every event of partition 1 dead-letters the first
# fail_after - 1 of them as lua_error, then the partition is failed (its
# events wait in its ring) while partition 0 goes on; once the script's
# parameter is fixed, `ringctl restart-worker 1` resumes it at the event it
# stopped on, and every event ends up once in the output or the dead
# letters.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 4000 --keys 300 --seed 21 >"$T/events.tsv"
cat >"$T/fails.lua" <<'LUA'
function process(ev)
	if ev.partition == 1 and rm.param("broken") == "yes" then
		error("broken on purpose")
	end
	rm.emit(string.format("%d", ev.seq), "\t", ev.key)
end
LUA
chmod go-w "$T/fails.lua"
d=$T/fa
HANDLER=$T/fails.lua PARTITIONS=2 write_config "$d.ini" "[handler]" "broken = yes" \
	"[restart]" "backoff_initial = 2ms" "backoff_max = 20ms" "fail_after = 5"
"$RINGMASTER" -c "$d.ini" -o source.follow=yes -o ringmaster.data_dir="$d/data" \
	-o output.dir="$d/out" -o output.dead_letter="$d/dead.tsv" -o ringmaster.run_dir="$d/run" \
	2>"$d.log" &
BG_PIDS+=($!)
pid=$!
ask() {
	local out
	out=$("$RINGCTL" -c "$d.ini" -o ringmaster.run_dir="$d/run" --json "$1") && jq -e "$2" <<<"$out"
}
wait_until 60 ask workers '.[1].state == "failed"'
wait_until 60 ask workers '.[0].lag_records == 0'
assert_eq "lua_error dead letters before the failure" "lua_error lua_error lua_error lua_error " \
	"$(cut -f2 "$d/dead.tsv" | tr '\n' ' ')"
log_has "$d.log" "partition 1 failed: its handler could not finish 5 events in a row" ||
	{ cat "$d.log"; fail "no message for the failed partition"; }
[ -s "$d/out/p1.tsv" ] && fail "partition 1 emitted output while failing"
ok "lua_error counts towards fail_after: 4 dead letters, then partition 1 failed; partition 0 went on"

sed -i '/^broken = /d' "$d.ini"
"$RINGCTL" -c "$d.ini" -o ringmaster.run_dir="$d/run" reload >/dev/null || fail "reload"
"$RINGCTL" -c "$d.ini" -o ringmaster.run_dir="$d/run" restart-worker 1 >/dev/null || fail "restart-worker"
wait_until 60 ask workers '.[1].state == "running" and .[1].lag_records == 0'
kill -TERM $pid
wait $pid || true
total=$(wc -l <"$T/events.tsv")
out=$(cat "$d/out"/p*.tsv | wc -l)
assert_eq "every event once in the output or the dead letters" "$total" "$((out + 4))"
assert_eq "no event twice" 0 "$( (cat "$d/out"/p*.tsv; cut -f1,3 "$d/dead.tsv") | cut -f1 | sort | uniq -d | wc -l)"
ok "restart-worker resumed partition 1 at the event it stopped on: nothing lost or repeated"
