# sync = none keeps nothing across an OS crash: a data_dir it was writing
# when the machine went down is refused after the reboot (exit 65) unless
# --force-recover; a process kill is not a reboot, and recovers by itself;
# a clean stop leaves a data_dir that is fine after any reboot.
# RINGMASTER_BOOT_ID stands in for the kernel's boot id (a reboot changes it).
. "$(dirname "$0")/lib.sh"
"$RINGCTL" gen events --events 150000 --keys 3000 --seed 23 >"$T/events.tsv"
HANDLER=$TEST_HANDLER_DIR/faulty_ledger.so BATCH_MAX=128 write_config "$T/t.ini" \
	"[handler]" "sleep_us = 20"
ref_run ref "$T/t.ini" -o handler.sleep_us=0

killed_run() { # a sync = none run SIGKILLed, whole group, mid-way
	local n=$(($(grep -c "started partitions" "$T/run.log" 2>/dev/null) + 1))
	RINGMASTER_BOOT_ID=boot-1 setsid "$RINGMASTER" -c "$T/t.ini" -o store.sync=none \
		2>>"$T/run.log" &
	local sup=$!; BG_PIDS+=($sup)
	wait_until 20 log_has "$T/run.log" "started partitions" $n
	sleep 0.7
	kill -KILL -- -$sup
	wait $sup 2>/dev/null || true
	wait_until 10 workers_gone
}
compare() {
	"$RINGCTL" -c "$T/t.ini" dump-state >"$T/got.state"
	assert_same_file "$1: state" "$T/ref.state" "$T/got.state"
	same_outputs "$T/ref/out" "$T/out"
}

# A process kill, same boot: it recovers by itself.
killed_run
RINGMASTER_BOOT_ID=boot-1 "$RINGMASTER" -c "$T/t.ini" -o store.sync=none \
	-o handler.sleep_us=0 2>>"$T/run.log" || { tail "$T/run.log"; fail "restart after a kill"; }
compare "after a process kill"
ok "sync = none, a process kill: it recovers by itself"

# Killed, then "rebooted": refused, nothing touched.
rm -rf "$T/data" "$T/out" "$T/dead.tsv" "$T/.dead.tsv.owner"
killed_run
cp -a "$T/out" "$T/out.before"
rc=0
RINGMASTER_BOOT_ID=boot-2 "$RINGMASTER" -c "$T/t.ini" -o store.sync=none 2>"$T/reboot.log" || rc=$?
assert_eq "exit status after a reboot with sync = none" 65 $rc
log_has "$T/reboot.log" "was being written with sync = none when the machine went down" ||
	{ cat "$T/reboot.log"; fail "no clear message after a reboot"; }
log_has "$T/reboot.log" "\-\-force-recover" || fail "the message does not say how to go on"
for f in "$T"/out.before/p*.tsv; do
	cmp -s "$f" "$T/out/${f##*/}" || fail "${f##*/} was changed by the refused run"
done
# A periodic run is refused too: the data_dir is what it is.
rc=0
RINGMASTER_BOOT_ID=boot-2 "$RINGMASTER" -c "$T/t.ini" 2>"$T/reboot2.log" || rc=$?
assert_eq "exit status after a reboot, now with sync = periodic" 65 $rc
ok "sync = none across a reboot: exit 65, nothing touched"

# --force-recover: goes on (here nothing was really lost, so it completes).
RINGMASTER_BOOT_ID=boot-2 "$RINGMASTER" -c "$T/t.ini" -o store.sync=none --force-recover \
	-o handler.sleep_us=0 2>"$T/forced.log" || { cat "$T/forced.log"; fail "--force-recover"; }
log_has "$T/forced.log" "resuming anyway (--force-recover)" || fail "no warning with --force-recover"
compare "with --force-recover"
ok "--force-recover resumes, with a warning"

# After a clean stop with sync = none, another boot is fine.
RINGMASTER_BOOT_ID=boot-3 "$RINGMASTER" -c "$T/t.ini" -o store.sync=none 2>"$T/clean.log" ||
	{ cat "$T/clean.log"; fail "a clean stop with sync = none is refused after a reboot"; }
ok "a clean stop with sync = none survives a reboot"
