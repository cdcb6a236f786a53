# Live swap of a Lua handler: a changed script given to a running
# ringmaster (ringctl reload) is compiled before any worker hears of it,
# then every partition switches at a batch boundary of its own, at a
# barrier the supervisor put at the same point of each ring. Per partition:
# every event up to its switch seq ran the old version, every later one the
# new, none lost or repeated; `ringctl workers` shows the version. A script
# that does not compile fails the reload with file:line and the running
# version goes on everywhere.
. "$(dirname "$0")/lib.sh"
PARTITIONS=3
version() {
	# $1: the tag the script writes; a little work per event, so that the
	# reload lands while the rings are full.
	cat >"$T/h.lua" <<LUA
function process(ev)
	local t = os.clock()
	while os.clock() - t < 0.00001 do end
	rm.emit(string.format("%d\t%s\t$1", ev.seq, ev.key))
	local n = tonumber(rm.state_get(ev.key) or "0")
	rm.state_put(ev.key, tostring(n + 1))
end
LUA
	chmod 0644 "$T/h.lua"
}
version v1
"$RINGCTL" gen events --events 100000 --keys 2000 --seed 3 >"$T/events.tsv"
HANDLER=$T/h.lua write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log" &
sup=$!
BG_PIDS+=($sup)
lines() { cat "$T"/out/p*.tsv 2>/dev/null | wc -l; }
have_lines() { [ "$(lines)" -ge "$1" ]; }
wait_until 30 have_lines 2000
old=$("$RINGCTL" -c "$T/t.ini" workers --json | jq -r '.[0].handler_version')

version v2
new_hash=$("$RINGCTL" -c "$T/t.ini" reload 2>&1) || { echo "$new_hash"; fail "reload"; }
"$RINGCTL" gen events --events 100000 --keys 2000 --seed 4 | sed 's/^acct/bcct/' >>"$T/events.tsv"
wait_until 60 have_lines 200000
switched() { [ "$(grep -c 'handler version .* -> .* after seq=' "$T/log")" -ge 3 ]; }
wait_until 30 switched

# A script that does not compile: the reload fails, naming file and line.
cp "$T/h.lua" "$T/h.good"
printf 'function process(ev)\n\trm.emit(\nend\n' >"$T/h.lua"
if "$RINGCTL" -c "$T/t.ini" reload >"$T/bad_reload" 2>&1; then fail "a broken script reloaded"; fi
grep -q "h.lua:3:" "$T/bad_reload" || { cat "$T/bad_reload"; fail "no file:line"; }
printf 'acct00000001\tdeposit\t5\n' >>"$T/events.tsv"
wait_until 30 have_lines 200001
"$RINGCTL" -c "$T/t.ini" workers --json >"$T/workers.json"
kill -TERM $sup
wait $sup || fail "exit status after SIGTERM"

# Every worker runs the new version, and says so.
versions=$(jq -r '.[].handler_version' "$T/workers.json" | sort -u)
[ "$(echo "$versions" | wc -l)" -eq 1 ] || fail "workers on different versions: $versions"
[ "$versions" != "$old" ] || fail "the version did not change ($old)"
last=$(cat "$T"/out/p*.tsv | sort -n | tail -n 1 | cut -f2,3)
assert_eq "the event after the failed reload ran v2" "acct00000001	v2" "$last"

# Per partition: v1 up to its switch seq, v2 after; nothing lost or repeated.
for p in 0 1 2; do
	sw=$(grep "partition $p: handler version .* -> .* after seq=" "$T/log" | head -1 \
		| sed 's/.*after seq=\([0-9]*\).*/\1/')
	[ -n "$sw" ] || fail "partition $p: no switch logged"
	jsw=$(jq -r ".[$p].switch_seq" "$T/workers.json")
	assert_eq "partition $p: switch seq in ringctl workers" "$sw" "$jsw"
	bad=$(awk -F'\t' -v s="$sw" '($1 <= s && $3 != "v1") || ($1 > s && $3 != "v2")' \
		"$T/out/p$p.tsv" | head -3)
	[ -z "$bad" ] || fail "partition $p (switch after seq=$sw): wrong version: $bad"
	v1=$(awk -F'\t' '$3 == "v1"' "$T/out/p$p.tsv" | wc -l)
	v2=$(awk -F'\t' '$3 == "v2"' "$T/out/p$p.tsv" | wc -l)
	[ "$v1" -gt 0 ] && [ "$v2" -gt 0 ] || fail "partition $p: v1=$v1 v2=$v2"
	echo "partition $p: switched after seq=$sw, $v1 events on v1, $v2 on v2"
done
assert_eq "every event once" 200001 "$(cut -f1 "$T"/out/p*.tsv | sort -u | wc -l)"
assert_eq "no event twice" 200001 "$(lines)"
# The state counted each event once, across the switch.
total=$("$RINGCTL" -c "$T/t.ini" dump-state | awk -F'\t' '{ n += $2 } END { print n }')
assert_eq "state counts every event once" 200001 "$total"
ok "live swap: per-partition switch at its barrier, old before and new after, nothing lost or repeated; a broken script keeps the running version"
