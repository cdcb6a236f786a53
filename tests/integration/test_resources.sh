# Resources running out: a map far too small grows; a slow handler fills the
# ring and the source waits with flat memory; a full output, dead-letter or
# data file system stops the flow with a clear message and it resumes once
# there is room, with nothing lost and nothing applied twice.
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 60000 --keys 40000 --seed 13 >"$T/events.tsv"
"$RINGCTL" gen accounts --keys 40000 >"$T/accounts.tsv"
ACCOUNTS=$T/accounts.tsv PARTITIONS=2 write_config "$T/t.ini"
"$RINGMASTER" -c "$T/t.ini" -o ringmaster.data_dir="$T/ref" -o output.dir="$T/refout" \
	-o output.dead_letter="$T/refdead.tsv" 2>"$T/ref.log" || { cat "$T/ref.log"; fail "reference run"; }
"$RINGCTL" -c "$T/t.ini" -o ringmaster.data_dir="$T/ref" dump-state >"$T/ref.state"
check_same() { # data_dir out_dir: state and outputs equal the reference run's
	"$RINGCTL" -c "$T/t.ini" -o ringmaster.data_dir="$1" dump-state >"$T/got.state"
	assert_same_file "state" "$T/ref.state" "$T/got.state"
	same_outputs "$T/refout" "$2"
}

# ---- map_size far too small: the shards grow and processing goes on
"$RINGMASTER" -c "$T/t.ini" -o store.map_size=1M -o ringmaster.data_dir="$T/small" -o output.dead_letter="$T/small.dead" \
	-o output.dir="$T/smallout" 2>"$T/small.log" || { cat "$T/small.log"; fail "small map run"; }
log_has "$T/small.log" "state map full: grew it" || fail "the map never grew"
check_same "$T/small" "$T/smallout"
ok "map_size 1M: grew $(grep -c 'grew it' "$T/small.log") times, results equal"

# ---- a handler slower than the source: backpressure, flat memory, nothing dropped
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
head -n 20000 "$T/events.tsv" >"$T/slow.tsv"
ACCOUNTS=$T/accounts.tsv HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so PARTITIONS=1 RING_SIZE=64K SOURCE_PATH=$T/slow.tsv \
	write_config "$T/slow.ini" "[handler]" "sleep_us = 100" "[source]" "max_event_size = 4K"
"$RINGMASTER" -c "$T/slow.ini" -o ringmaster.data_dir="$T/slowdata" -o output.dead_letter="$T/slow.dead" -o output.dir="$T/slowout" \
	--summary "$T/slow.json" 2>"$T/slow.log" &
sup=$!; BG_PIDS+=($sup)
sleep 1; rss1=$(rss $sup)
metrics=$("$RINGCTL" -c "$T/slow.ini" -o ringmaster.data_dir="$T/slowdata" metrics)
sleep 1.5; rss2=$(rss $sup)
wait $sup || { cat "$T/slow.log"; fail "slow run"; }
waits=$(echo "$metrics" | awk '/^ringmaster_ring_producer_waits_total/ { print $2 }')
[ "${waits:-0}" -gt 0 ] || fail "the source never waited for the ring: $waits"
[ $((rss2 - rss1)) -lt 2048 ] || fail "supervisor memory grew from ${rss1}k to ${rss2}k"
assert_eq "events processed by the slow handler" 20000 "$(json_get "$T/slow.json" processed)"
ok "backpressure: source waited $waits times, RSS ${rss1}k -> ${rss2}k, nothing dropped"

# ---- full file systems (tmpfs as root; read-only directories otherwise)
if [ "$(id -u)" = 0 ]; then
	tight() { mkdir -p "$1"; mount -t tmpfs -o size="$2" tmpfs "$1" || fail "cannot mount a tmpfs on $1"; MOUNTS+=("$1"); }
	roomy() { mount -o remount,size=256m "$1"; }
	MOUNTS=()
	trap 'rc=$?; set +e; for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
		for m in "${MOUNTS[@]}"; do umount -l "$m"; done
		[ $rc -eq 0 ] && rm -rf "$T" || echo "kept $T"; exit $rc' EXIT
	want_msg="No space left on device"
else
	tight() { mkdir -p "$1"; chmod 0555 "$1"; }
	roomy() { chmod 0755 "$1"; }
	want_msg="Permission denied"
fi
run_until_room() { # what dir: start, wait for the failure message, make room, wait for the end
	local what=$1 dir=$2; shift 2
	"$RINGMASTER" -c "$T/t.ini" -o restart.backoff_max=300ms "$@" --summary "$T/$what.json" \
		2>"$T/$what.log" &
	local sup=$!; BG_PIDS+=($sup)
	wait_until 30 log_has "$T/$what.log" "${WANT:-$want_msg}"
	roomy "$dir"
	wait $sup || { tail "$T/$what.log"; fail "$what: the run did not end well after room was made"; }
}

tight "$T/fullout" 64k
run_until_room output "$T/fullout" -o ringmaster.data_dir="$T/d1" -o output.dead_letter="$T/d1.dead" -o output.dir="$T/fullout"
log_has "$T/output.log" "fullout/p[0-9].tsv: cannot write output: $want_msg" \
	|| fail "the output failure does not name the file"
check_same "$T/d1" "$T/fullout"
ok "output file system full: stopped, said where, resumed, results equal"

{ head -n 30000 "$T/events.tsv"; for i in $(seq 3000); do echo "malformed line $i"; done; } >"$T/mixed.tsv"
tight "$T/fulldead" 16k
run_until_room dead "$T/fulldead" -o ringmaster.data_dir="$T/d2" -o output.dir="$T/out2" \
	-o source.path="$T/mixed.tsv" -o output.dead_letter="$T/fulldead/dead.tsv"
log_has "$T/dead.log" "fulldead/dead.tsv: cannot write dead letters: $want_msg" \
	|| fail "the dead-letter failure does not name the file"
assert_eq "dead letters written once each" 3000 "$(cut -f3 "$T/fulldead/dead.tsv" | sort -u | wc -l)"
assert_eq "dead letter lines" 3000 "$(wc -l <"$T/fulldead/dead.tsv")"
ok "dead-letter file system full: source paused, resumed, 3000 lines once each"

tight "$T/fulldata" 2600k
# LMDB reports a short write on a full disk as EIO or ENOSPC, by timing.
WANT="$want_msg\|cannot commit" run_until_room data "$T/fulldata" -o ringmaster.data_dir="$T/fulldata/d" -o output.dead_letter="$T/d3.dead" -o output.dir="$T/out3"
check_same "$T/fulldata/d" "$T/out3"
ok "data file system full: resumed, results equal"
