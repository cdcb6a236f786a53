# The power-cut harness (tests/powercut) models "a power cut keeps only what
# was fsynced": pc_selftest, with libpowercut.so preloaded, writes, fsyncs
# and renames under a tree and SIGKILLs itself; pctool restore then rebuilds
# the tree as a power cut would have left it, and each case checks that:
#   (0) a tree nobody touched comes back as it was (modes, links, fifo)
#   (a) bytes written without fsync vanish
#   (b) fsynced bytes survive, later unsynced ones vanish
#   (c) an O_DSYNC write survives without fsync, exactly its range
#   (d) a new file survives only once its directory is fsynced; a new file
#       never fsynced, under a durable name, is empty
#   (e) a rename over a name reverts unless the directory is fsynced
#   (f) LMDB: a commit survives; a MDB_NOSYNC commit only after mdb_env_sync
#   (g) all of it also when the process is an ASan binary (make asan test)
# and a forked child's fsync counts. Figures: an fsync of 10 MiB with and
# without the harness.
. "$(dirname "$0")/lib.sh"
PCTOOL=$TOP/$B/tests/pctool
SELFTEST=$TOP/$B/tests/pc_selftest
PCLIB=$TOP/$B/tests/libpowercut.so
for f in "$PCTOOL" "$SELFTEST" "$PCLIB"; do [ -f "$f" ] || fail "$f is not built (make test builds it)"; done
R=$T/root S=$T/shadow

# env "${HARNESS[@]}" CMD...: CMD with libpowercut.so preloaded, recording
# into $S. An ASan program aborts unless its runtime is the first library
# loaded; a preloaded one comes before it, so that check is turned off
# (verify_asan_link_order=0, appended to the caller's ASAN_OPTIONS).
HARNESS=(LD_PRELOAD="$PCLIB" POWERCUT_ROOT="$R" POWERCUT_SHADOW="$S"
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")

# power_cut ARGS...: pc_selftest ARGS under the harness; it must have done
# every step and SIGKILLed itself (137). The shell's "Killed" line is hidden.
power_cut() {
	local rc=0
	{ env "${HARNESS[@]}" "$SELFTEST" "$@" 2>&3; } 3>&2 2>/dev/null || rc=$?
	[ $rc -eq 137 ] || fail "pc_selftest $*: exit status $rc, not its own SIGKILL (137)"
}

# fresh: an empty ROOT. init: what is in ROOT now is the durable baseline.
fresh() { rm -rf "$R"; mkdir "$R"; }
init() { "$PCTOOL" init "$R" "$S" || fail "pctool init"; }
restore() { "$PCTOOL" restore "$R" "$S" || fail "pctool restore"; }

# holds WHAT FILE FORMAT: FILE holds exactly the bytes printf FORMAT makes.
holds() {
	printf "$3" >"$T/want"
	[ -f "$2" ] || fail "$1: ${2#$T/} is missing"
	cmp -s "$T/want" "$2" || fail "$1: ${2#$T/} holds '$(od -An -c "$2" | tr -s ' ')'," \
		"expected '$(od -An -c "$T/want" | tr -s ' ')'"
}
absent() { [ ! -e "$1" ] && [ ! -L "$1" ] || fail "$2: ${1#$T/} should not exist"; }

# (0) the round trip: init, a cut that changes nothing, restore.
snapshot() {
	(cd "$R" && find . -printf '%p %y %m %n %l\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum)
}
fresh
mkdir -p "$R/d/e"
printf 'secret\n' >"$R/d/f600"
chmod 600 "$R/d/f600"
chmod 750 "$R/d/e"
ln "$R/d/f600" "$R/hard"
ln -s ../nowhere "$R/d/dangling"
mkfifo "$R/fifo"
printf 'odd\n' >"$R/sp ace%2"$'\n'"line"
snapshot >"$T/before"
init
power_cut noop
restore
snapshot >"$T/after"
assert_same_file "the untouched tree after restore" "$T/before" "$T/after"
ok "(0) an untouched tree is restored as it was: modes, hard and symbolic links, fifo, odd names"

# (a)
fresh; printf 'base\n' >"$R/a.txt"; init
power_cut write-unsynced "$R/a.txt"
holds "(a) before the restore" "$R/a.txt" 'base\nunsynced\n'
restore
holds "(a) after the restore" "$R/a.txt" 'base\n'
ok "(a) bytes written without fsync vanish"

# (b)
fresh; printf 'base\n' >"$R/b.txt"; init
power_cut write-synced "$R/b.txt"
holds "(b) before the restore" "$R/b.txt" 'base\nsynced\nlater\n'
restore
holds "(b) after the restore" "$R/b.txt" 'base\nsynced\n'
ok "(b) fsynced bytes survive, later unsynced ones vanish"

# (c)
fresh; printf '0123456789\n' >"$R/c.txt"; init
power_cut dsync "$R/c.txt"
holds "(c) before the restore" "$R/c.txt" '01AB45zzC9\n'
restore
holds "(c) after the restore" "$R/c.txt" '01AB4567C9\n'
ok "(c) O_DSYNC pwrite and writev survive without fsync, a plain write beside them does not"

# (d)
fresh; init
power_cut create "$R/new.txt" nodirsync
holds "(d) before the restore" "$R/new.txt" 'new\n'
restore
absent "$R/new.txt" "(d) a file fsynced in a directory never fsynced"
power_cut create "$R/new.txt" dirsync
restore
holds "(d) with the directory fsynced" "$R/new.txt" 'new\n'
ok "(d) a new fsynced file vanishes unless its directory is fsynced too"

fresh; init
power_cut nested "$R"
restore
[ -d "$R/sub" ] || fail "(d) sub, made and its parent fsynced, is missing"
absent "$R/sub/f" "(d) a file in a directory made durable but never fsynced itself"
ok "(d) a durable new directory never fsynced itself comes back empty"

fresh; printf 'old content\n' >"$R/old"; init
power_cut replace-unsynced "$R" >"$T/replace.out"
restore
absent "$R/old" "(d) a file unlinked, then its directory fsynced"
holds "(d) a new file never fsynced, with its directory fsynced ($(cat "$T/replace.out"))" \
	"$R/fresh" ''
ok "(d) a new file never fsynced but with a durable name is empty ($(cat "$T/replace.out"))"

# (e)
fresh; printf 'old\n' >"$R/state"; init
power_cut rename "$R/state" nodirsync
holds "(e) before the restore" "$R/state" 'new\n'
restore
holds "(e) a rename without a directory fsync" "$R/state" 'old\n'
absent "$R/state.tmp" "(e) the renamed file's first name, never durable"
power_cut rename "$R/state" dirsync
restore
holds "(e) a rename with a directory fsync" "$R/state" 'new\n'
absent "$R/state.tmp" "(e) the renamed file's first name"
ok "(e) a rename over an old name reverts without a directory fsync, stays with one"

# forked children (workers are forked without exec)
fresh; printf 'base\n' >"$R/log"; init
power_cut fork-sync "$R/log"
holds "fork: before the restore" "$R/log" 'base\nchild\nparent\n'
restore
holds "fork: after the restore" "$R/log" 'base\nchild\n'
ok "a forked child's fsync is recorded; the parent's later unsynced append vanishes"

# (f) LMDB, through liblmdb's own fdatasync and O_DSYNC pwrite of the meta page
lmdb_get() { "$SELFTEST" lmdb-get "$R/env" "$1"; }
fresh; init
power_cut lmdb-put "$R/env" k1 v1 sync
restore
assert_eq "(f) k1, committed without MDB_NOSYNC" v1 "$(lmdb_get k1)"
power_cut lmdb-put "$R/env" k2 v2 nosync
assert_eq "(f) k2 before the restore" v2 "$(lmdb_get k2)"
restore
assert_eq "(f) k1 after a MDB_NOSYNC commit of k2" v1 "$(lmdb_get k1)"
if got=$(lmdb_get k2); then fail "(f) k2, committed with MDB_NOSYNC and never synced, survived: $got"; fi
power_cut lmdb-put "$R/env" k2 v2 nosync-envsync
restore
assert_eq "(f) k2 after mdb_env_sync" v2 "$(lmdb_get k2)"
assert_eq "(f) k1 after mdb_env_sync" v1 "$(lmdb_get k1)"
ok "(f) LMDB: a synced commit survives; a MDB_NOSYNC one only after mdb_env_sync(env, 1)"

# (g)
if ldd "$SELFTEST" | grep -q libasan; then
	ok "(g) the process under the harness above was an ASan binary"
else
	echo "note: (g) is proved by make asan test, where pc_selftest is an ASan binary"
fi

# Misconfigured: a shadow that pctool init did not make for this ROOT.
rc=0
env "${HARNESS[@]}" POWERCUT_SHADOW="$T/nowhere" true 2>"$T/bad.err" || rc=$?
[ $rc -eq 125 ] || fail "a process under a wrong POWERCUT_SHADOW: status $rc, expected 125"
log_has "$T/bad.err" "no shadow made by pctool init" || fail "no message: $(cat "$T/bad.err")"
"$PCTOOL" restore "$R" "$T" 2>"$T/bad.err" && fail "pctool restore took a directory that is no shadow"
log_has "$T/bad.err" "must not be one inside the other" || fail "pctool: $(cat "$T/bad.err")"
ok "a misconfigured harness refuses to run, with a message"

# Figures (not a pass/fail test): one fsync of 10 MiB.
fresh; init
echo "figure: without the harness: $("$SELFTEST" fsync-time "$R/plain" 10)"
echo "figure: with the harness:    $(env "${HARNESS[@]}" "$SELFTEST" fsync-time "$R/big" 10)"
