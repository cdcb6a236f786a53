# Live swap of a .so handler: a reload that finds the library changed (its
# content hash) checks the new file in a child (strict_modes, the ABI
# version, init), then restarts the workers one at a time, each at a
# barrier in its ring: it commits everything before it on the old library
# and its next worker loads the new one. Per partition: every event up to
# its switch seq ran v1, every later one v2, none lost or repeated;
# `ringctl workers` shows the .so's content hash. A library of another ABI
# version is refused and the running one goes on everywhere.
. "$(dirname "$0")/lib.sh"
PARTITIONS=3
install_so() { # $1: the variant; by rename, as a deployment would
	cp "$TEST_HANDLER_DIR/$1.so" "$T/h.so.new"
	chmod 0755 "$T/h.so.new"
	mv "$T/h.so.new" "$T/h.so"
}
install_so swap_tag
"$RINGCTL" gen events --events 100000 --keys 2000 --seed 3 >"$T/events.tsv"
HANDLER=$T/h.so write_config "$T/t.ini" "[handler]" "spin_us = 10"
"$RINGMASTER" -c "$T/t.ini" -o source.follow=yes 2>"$T/log" &
sup=$!
BG_PIDS+=($sup)
ctl() { "$RINGCTL" -c "$T/t.ini" "$@"; }
lines() { cat "$T"/out/p*.tsv 2>/dev/null | wc -l; }
have_lines() { [ "$(lines)" -ge "$1" ]; }
ask() { local out; out=$(ctl --json workers) && jq -e "$1" <<<"$out"; }
wait_until 30 have_lines 2000
v1=$(ctl workers --json | jq -r '.[0].handler_version')
pids1=$(ctl workers --json | jq -r '[.[].pid] | join(" ")')

install_so swap_tag_v2
ctl reload >"$T/r1" 2>&1 || { cat "$T/r1"; fail "reload of v2"; }
"$RINGCTL" gen events --events 100000 --keys 2000 --seed 4 | sed 's/^acct/bcct/' >>"$T/events.tsv"
wait_until 60 log_has "$T/log" "every partition runs version"
# The last partitions may have switched once the events above were done:
# more, so that every partition has events on v2.
"$RINGCTL" gen events --events 20000 --keys 2000 --seed 5 | sed 's/^acct/ccct/' >>"$T/events.tsv"
wait_until 60 have_lines 220000
v2=$(ctl workers --json | jq -r '.[0].handler_version')
[ "$v2" != "$v1" ] || fail "the version did not change ($v1)"
ask "[.[].handler_version] | unique == [\"$v2\"]" >/dev/null || fail "not every worker on $v2"
pids2=$(ctl workers --json | jq -r '[.[].pid] | join(" ")')
for pid in $pids1; do
	case " $pids2 " in *" $pid "*) fail "worker pid $pid was not restarted";; esac
done
log_has "$T/log" "needs restart" && fail "a changed .so was reported as needing a restart"
# One at a time: each partition's new worker ran before the next one's
# barrier was set (the restarts come in partition order).
order=$(grep -o 'worker [0-9] (pid [0-9]*) stopped at its barrier' "$T/log" | cut -d' ' -f2 | tr -d '\n')
assert_eq "workers restarted one at a time, in order" "012" "$order"
ok "a changed .so: checked, then the workers restarted one at a time on it"

# Another ABI version: refused, naming it; v2 keeps running everywhere.
install_so swap_tag_badabi
if ctl reload >"$T/r2" 2>&1; then fail "a .so of another ABI version reloaded"; fi
grep -q "handler ABI version 999" "$T/r2" || { cat "$T/r2"; fail "no ABI message"; }
printf 'acct00000001\tdeposit\t5\n' >>"$T/events.tsv"
wait_until 30 have_lines 220001
ctl workers --json >"$T/workers.json"
ask "[.[].handler_version] | unique == [\"$v2\"]" >/dev/null || fail "a refused reload changed a version"
kill -TERM $sup
wait $sup || fail "exit status after SIGTERM"
last=$(cat "$T"/out/p*.tsv | sort -n | tail -n 1 | cut -f2,3)
assert_eq "the event after the refused reload ran v2" "acct00000001	v2" "$last"
ok "a .so of another ABI version is refused; the running library goes on"

# Per partition: v1 up to its switch seq, v2 after; nothing lost or repeated.
for p in 0 1 2; do
	sw=$(grep "partition $p: handler version .* -> .* after seq=" "$T/log" | head -1 |
		sed 's/.*after seq=\([0-9]*\).*/\1/')
	[ -n "$sw" ] || fail "partition $p: no switch logged"
	assert_eq "partition $p: switch seq in ringctl workers" "$sw" "$(jq -r ".[$p].switch_seq" "$T/workers.json")"
	bad=$(awk -F'\t' -v s="$sw" '($1 <= s && $3 != "v1") || ($1 > s && $3 != "v2")' \
		"$T/out/p$p.tsv" | head -3)
	[ -z "$bad" ] || fail "partition $p (switch after seq=$sw): wrong library: $bad"
	n1=$(awk -F'\t' '$3 == "v1"' "$T/out/p$p.tsv" | wc -l)
	n2=$(awk -F'\t' '$3 == "v2"' "$T/out/p$p.tsv" | wc -l)
	[ "$n1" -gt 0 ] && [ "$n2" -gt 0 ] || fail "partition $p: v1=$n1 v2=$n2"
	echo "partition $p: switched after seq=$sw, $n1 events on v1, $n2 on v2"
done
assert_eq "every event once" 220001 "$(cut -f1 "$T"/out/p*.tsv | sort -u | wc -l)"
assert_eq "no event twice" 220001 "$(lines)"
total=$(ctl dump-state | awk -F'\t' '{ n += $2 } END { print n }')
assert_eq "state counts every event once" 220001 "$total"
ok ".so live swap: per-partition switch at its barrier, v1 before and v2 after, nothing lost or repeated"
