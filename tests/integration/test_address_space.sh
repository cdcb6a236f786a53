# LMDB maps map_size of address space per environment: under a limit on
# the address space (ulimit -v) that the map does not fit in, the start
# fails with exit 71 (a system resource, EX_OSERR), not 78 (configuration),
# and says which setting to lower and where it came from. The same limit
# with a map that fits runs to the end, so the limit is not simply too low
# for ringmaster to run. Skipped under ASan, which reserves terabytes of
# address space for its shadow memory and cannot start under such a limit.
. "$(dirname "$0")/lib.sh"
if [ "${ASAN:-}" = 1 ] || ldd "$RINGMASTER" 2>/dev/null | grep -q libasan; then
	ok "skipped under ASan: its shadow memory needs terabytes of address space, so no ulimit -v low enough to refuse a map lets an ASan binary start"
	exit 0
fi
LIMIT_KB=$((1024 * 1024)) # 1 GiB of address space
"$RINGCTL" gen events --events 2000 --keys 100 >"$T/events.tsv"
PARTITIONS=2 write_config "$T/t.ini"

rc=0
(ulimit -v $LIMIT_KB && exec "$RINGMASTER" -c "$T/t.ini" -o store.map_size=2G) 2>"$T/log" || rc=$?
assert_eq "exit status when the map does not fit in the address space" 71 $rc
grep -q "/config: cannot open: Cannot allocate memory" "$T/log" || { cat "$T/log"; fail "no LMDB error"; }
grep -qF -- "-o store.map_size=2G: [store] map_size = 2048 MiB could not be mapped" "$T/log" \
	|| { cat "$T/log"; fail "the message does not name map_size and where it was set"; }
ok "map_size over ulimit -v: exit 71: $(grep -o 'map_size = .*' "$T/log" | head -1)"

rc=0
(ulimit -v $LIMIT_KB && exec "$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/data2" \
	--summary "$T/s.json") 2>"$T/log2" || rc=$?
[ $rc -eq 0 ] || { cat "$T/log2"; fail "a run with map_size = 64M under the same limit: exit $rc"; }
assert_eq "events processed under the limit" 2000 "$(json_get "$T/s.json" processed)"
ok "the same limit with map_size = 64M runs to the end"
