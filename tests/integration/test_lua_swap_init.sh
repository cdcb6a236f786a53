# A new script's init() runs in the reload's check child too, with the
# [handler] params and the tables: an init that fails there fails the
# reload (file:line) and nothing switches. An init that passes the check
# but fails in a worker at its switch fails that partition, naming the
# version, instead of leaving it on the old one unseen. A failed partition
# does not hold later reloads up, and once resumed it runs the version
# running then. Per partition, every event runs on the version its switch
# seqs say, once.
. "$(dirname "$0")/lib.sh"
PARTITIONS=2
# version TAG [INIT]: the script, tagging its output lines with TAG; INIT
# is the body of its init().
version() {
	cat >"$T/h.lua" <<LUA
local rule
function init()
	rule = rm.table_get("rules", "deposit")
	if not rule then return false end
	${2:-}
end
function process(ev)
	rm.emit(string.format("%d\t%s\t$1", ev.seq, ev.key))
	local n = tonumber(rm.state_get(ev.key) or "0")
	rm.state_put(ev.key, tostring(n + 1))
end
LUA
	chmod 0644 "$T/h.lua"
}
version v1
"$RINGCTL" gen events --events 20000 --keys 500 --seed 5 >"$T/events.tsv"
HANDLER=$T/h.lua write_config "$T/t.ini" "[restart]" "backoff_initial = 2ms" "backoff_max = 20ms"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log" &
sup=$!
BG_PIDS+=($sup)
ctl() { "$RINGCTL" -c "$T/t.ini" "$@"; }
lines() { cat "$T"/out/p*.tsv 2>/dev/null | wc -l; }
have_lines() { [ "$(lines)" -ge "$1" ]; }
ask() { local out; out=$(ctl --json workers) && jq -e "$1" <<<"$out"; }
more() { "$RINGCTL" gen events --events 20000 --keys 500 --seed "$1" | sed "s/^acct/$2/" >>"$T/events.tsv"; }
wait_until 30 have_lines 20000
v1=$(ctl workers --json | jq -r '.[0].handler_version')

# An init that fails in the check child: refused with file:line, both
# partitions stay on v1.
version bad 'error("init refuses")'
if ctl reload >"$T/r1" 2>&1; then fail "a reload with a failing init() succeeded"; fi
grep -q 'h.lua:5: init refuses' "$T/r1" || { cat "$T/r1"; fail "no file:line for the failing init"; }
version bad 'if rm.table_get("rules", "no such rule") == nil then return false end'
if ctl reload >"$T/r2" 2>&1; then fail "a reload with init() returning false succeeded"; fi
grep -q 'init() returned false' "$T/r2" || { cat "$T/r2"; fail "no message for init() returning false"; }
ask "[.[].handler_version] == [\"$v1\", \"$v1\"]" >/dev/null || fail "a refused reload changed a version"
ok "an init() failing in the check child (an error, or false from a table lookup) fails the reload; v1 keeps running"

# v2's init fails on partition 1 only (the check runs as partition 0):
# the reload succeeds, partition 0 switches, partition 1 fails, loudly.
version v2 'if rm.partition() == 1 then error("not on partition 1") end'
ctl reload >/dev/null 2>&1 || fail "reload of v2"
wait_until 30 ask ".[0].handler_version != \"$v1\""
v2=$(ctl workers --json | jq -r '.[0].handler_version')
more 6 bcct
wait_until 30 ask '.[1].state == "failed"'
log_has "$T/log" "partition 1: handler version $v2 did not start at its switch" ||
	{ cat "$T/log"; fail "no message naming the version that did not start"; }
log_has "$T/log" "h.lua:5: not on partition 1" || fail "no Lua error in the log"
log_has "$T/log" "partition 1 failed: handler version $v2 did not start" || fail "no failure message"
ok "an init() failing in a worker at its switch fails the partition, naming version $v2"

# A failed partition does not hold the next reload up; resumed, it runs
# the version running then (v3), from where it stopped.
version v3
ctl reload >"$T/r3" 2>&1 || { cat "$T/r3"; fail "reload of v3 refused while partition 1 failed"; }
wait_until 30 ask ".[0].handler_version != \"$v2\""
v3=$(ctl workers --json | jq -r '.[0].handler_version')
ctl restart-worker 1 >/dev/null || fail "restart-worker 1"
more 7 ccct
wait_until 60 have_lines 60000
wait_until 30 ask "[.[].handler_version] == [\"$v3\", \"$v3\"]"
ctl workers --json >"$T/workers.json"
kill -TERM $sup
wait $sup || true

# Per partition, the versions in the order of its switches.
for p in 0 1; do
	want=$([ $p = 0 ] && echo "v1 v2 v3" || echo "v1 v3")
	got=$(cut -f3 "$T/out/p$p.tsv" | uniq | tr '\n' ' ' | sed 's/ $//')
	assert_eq "partition $p: versions in order" "$want" "$got"
	# The last switch's seq is where the last version begins.
	sw=$(jq -r ".[$p].switch_seq" "$T/workers.json")
	bad=$(awk -F'\t' -v s="$sw" '($1 > s && $3 != "v3") || ($1 <= s && $3 == "v3")' \
		"$T/out/p$p.tsv" | head -3)
	[ -z "$bad" ] || fail "partition $p (last switch after seq=$sw): $bad"
done
assert_eq "every event once" 60000 "$(cut -f1 "$T"/out/p*.tsv | sort -u | wc -l)"
assert_eq "no event twice" 60000 "$(lines)"
total=$("$RINGCTL" -c "$T/t.ini" dump-state | awk -F'\t' '{ n += $2 } END { print n }')
assert_eq "state counts every event once" 60000 "$total"
ok "a failed partition does not block later reloads; resumed, it runs v3 from where it stopped; nothing lost or repeated"
