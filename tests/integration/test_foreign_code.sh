# Foreign code and foreign directories (strict_modes): a handler is loaded
# only from directories no one else can change, every worker loads the very
# file that was checked (a descriptor, not the path again), a handler's
# constructors run in a child and cannot end or fake a check, and run, data
# and output directories that are symbolic links are refused, the directory
# they point to left as it was. Errors name the file and line of the setting.
. "$(dirname "$0")/lib.sh"
counter=$HANDLER_DIR/example_counter.so
ctor=$TEST_HANDLER_DIR/ctor.so
[ -f "$ctor" ] || fail "$ctor was not built"
printf 'a\tx\nb\tx\n' >"$T/events.tsv"
write_config "$T/t.ini"
hline=$(grep -n '^handler = ' "$T/t.ini" | cut -d: -f1)
rline=$(grep -n '^run_dir = ' "$T/t.ini" | cut -d: -f1)

# try OUT ARGS...: run ringmaster, its stdout and stderr to OUT; $rc.
try() {
	local out=$1; shift
	set +e; "$RINGMASTER" "$@" >"$out" 2>&1; rc=$?; set -e
}
# own NAME: -o options giving a run directories of its own under $T/NAME.
own() {
	echo -o ringmaster.data_dir="$T/$1/data" -o ringmaster.run_dir="$T/$1/run" \
		-o output.dir="$T/$1/out" -o output.dead_letter="$T/$1/dead.tsv"
}
has() { grep -qF -- "$2" "$1" || { cat "$1"; fail "no '$2' in the output"; }; }
# with_config NAME KEY VALUE: $T/NAME.ini, $T/t.ini with KEY set to VALUE.
with_config() { sed "s|^$2 = .*|$2 = $3|" "$T/t.ini" >"$T/$1.ini"; }

# 1. A handler under a directory another user owns is refused, by -t and at
# start, before any of its code runs: that user could swap the file.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	chmod 0711 "$T" # nobody may pass through, not write
	mkdir "$T/nb"; cp "$counter" "$T/nb/h.so"; chown nobody "$T/nb"
	with_config nb handler "$T/nb/h.so"
	msg="$T/nb.ini:$hline: [worker] handler: $T/nb (a directory above $T/nb/h.so) belongs to uid $(id -u nobody)"
	try "$T/nb-t.out" -t -c "$T/nb.ini"
	assert_eq "-t with a handler in nobody's directory: exit status" 78 $rc
	has "$T/nb-t.out" "$msg"
	# The threat is real: nobody can replace the root-owned file by mv.
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
	if as_nobody cp --version >/dev/null 2>&1; then
		as_nobody cp "$ctor" "$T/nb/evil.so"
		as_nobody mv "$T/nb/evil.so" "$T/nb/h.so"
	else
		# Some build chroots keep their libraries from other users, so
		# nobody cannot run cp here: root makes the same swap for it.
		echo "note: nobody cannot run cp here; the swap is made as root, as nobody could"
		cp "$ctor" "$T/nb/evil.so"; chown nobody "$T/nb/evil.so"
		mv "$T/nb/evil.so" "$T/nb/h.so"
	fi
	export RM_TEST_CTOR=mark:$T/evil-ran
	try "$T/nb-run.out" -c "$T/nb.ini" $(own nb)
	assert_eq "a run with a handler in nobody's directory: exit status" 78 $rc
	has "$T/nb-run.out" "$msg"
	[ ! -e "$T/evil-ran" ] || fail "the swapped-in handler's constructor ran"
	[ -z "$(ls -A "$T/nb/out" 2>/dev/null)" ] || fail "the refused run wrote output"
	unset RM_TEST_CTOR
	ok "a handler in a directory of another user is refused, naming the directory"

	# A sticky directory is safe when it is root's (like /tmp), not when it
	# is another user's.
	mkdir "$T/sticky"; chmod 1777 "$T/sticky"; cp "$counter" "$T/sticky/h.so"
	try "$T/sticky.out" -t -c "$T/t.ini" -o worker.handler="$T/sticky/h.so"
	assert_eq "-t with a handler in a root-owned sticky directory" 0 $rc
	chown nobody "$T/sticky"
	try "$T/sticky2.out" -t -c "$T/t.ini" -o worker.handler="$T/sticky/h.so"
	assert_eq "-t with a handler in nobody's sticky directory" 78 $rc
	has "$T/sticky2.out" "$T/sticky (a directory above $T/sticky/h.so) belongs to uid"
	chmod 0700 "$T"
	ok "a sticky directory above a handler is safe when it is root's, not another user's"
fi
mkdir "$T/open"; chmod 0777 "$T/open"; cp "$counter" "$T/open/h.so"
try "$T/open.out" -t -c "$T/t.ini" -o worker.handler="$T/open/h.so"
assert_eq "-t with a handler in a world-writable directory" 78 $rc
has "$T/open.out" "-o worker.handler=$T/open/h.so: [worker] handler: $T/open (a directory above $T/open/h.so) is writable by group or others (mode 0777): run chmod go-w $T/open"
try "$T/open2.out" -t -c "$T/t.ini" -o worker.handler="$T/open/h.so" -o ringmaster.strict_modes=no
assert_eq "-t with strict_modes = no" 0 $rc
ok "a handler in a world-writable directory is refused unless strict_modes = no"

# 2. Workers load the descriptor the supervisor checked: a file moved over
# the handler after start is not what a restarted worker runs.
mkdir "$T/h"; cp "$counter" "$T/h/h.so"; : >"$T/follow.tsv"
PARTITIONS=1 HANDLER=$T/h/h.so SOURCE_PATH=$T/follow.tsv write_config "$T/swap.ini" \
	"[handler]" "prefix = cnt" "[restart]" "backoff_initial = 20ms"
RM_TEST_CTOR=mark:$T/replacement-ran "$RINGMASTER" -c "$T/swap.ini" -o source.follow=yes \
	$(own swap) 2>"$T/swap.log" &
BG_PIDS+=($!)
sup=$!
printf 'a\tx\n' >>"$T/follow.tsv"
wait_until 20 grep -q "^cnt a	1$" "$T/swap/out/p0.tsv"
cp "$ctor" "$T/h/new.so"; mv "$T/h/new.so" "$T/h/h.so"
old=$(worker_pid 0)
kill -KILL "$old"
wait_until 20 log_has "$T/swap.log" "killed by signal 9"
wait_until 20 sh -c "p=\$(pgrep -f '^ringmaster: worker 0 \\($NAME\\)'); [ -n \"\$p\" ] && [ \"\$p\" != $old ]"
printf 'a\tx\n' >>"$T/follow.tsv"
wait_until 20 grep -qE "^(cnt a	2|ctor a)$" "$T/swap/out/p0.tsv"
kill -TERM $sup; wait $sup || { cat "$T/swap.log"; fail "the swap run did not exit 0"; }
[ ! -e "$T/replacement-ran" ] || fail "a worker loaded the file moved over the handler"
! grep -q "^ctor" "$T/swap/out/p0.tsv" || fail "the replacement handler processed events"
grep -q "^cnt a	2$" "$T/swap/out/p0.tsv" || fail "the restarted worker did not count on"
ok "a restarted worker runs the handler that was checked, not the file moved over it"

# 3. A constructor that exits, or hangs, fails -t and a run, in the check
# child: it cannot end the supervisor or fake "configuration ok".
RM_TEST_CTOR=exit try "$T/exit-t.out" -t -c "$T/t.ini" -o worker.handler="$ctor"
assert_eq "-t with a constructor that exits 0" 78 $rc
! grep -q "configuration ok" "$T/exit-t.out" || fail "-t said ok"
has "$T/exit-t.out" "-o worker.handler=$ctor: [worker] handler: $ctor: loading it ended the process (exit status 0)"
RM_TEST_CTOR=exit try "$T/exit-run.out" -c "$T/t.ini" -o worker.handler="$ctor" $(own exit)
assert_eq "a run with a constructor that exits 0" 78 $rc
has "$T/exit-run.out" "loading it ended the process (exit status 0)"
[ -z "$(ls -A "$T/exit/out" 2>/dev/null)" ] || fail "the refused run wrote output"
RM_TEST_CTOR=hang try "$T/hang.out" -t -c "$T/t.ini" -o worker.handler="$ctor"
assert_eq "-t with a constructor that hangs" 78 $rc
has "$T/hang.out" "loading it did not finish within 10 s"
try "$T/fine.out" -t -c "$T/t.ini" -o worker.handler="$ctor"
assert_eq "-t with the same handler behaving" 0 $rc
has "$T/fine.out" "configuration ok"
ok "a constructor that exits or hangs fails -t and a run with a clear message"

# 4. run_dir, data_dir and [output] dir given as symbolic links are refused;
# the directory a link points to keeps its mode and stays empty.
mkdir "$T/victim"; chmod 1777 "$T/victim"
ln -s victim "$T/runlink"; ln -s victim "$T/datalink"; ln -s victim "$T/outlink"
with_config runlink run_dir "$T/runlink"
try "$T/runlink-t.out" -t -c "$T/runlink.ini"
assert_eq "-t with run_dir a link" 78 $rc
has "$T/runlink-t.out" "$T/runlink.ini:$rline: [ringmaster] run_dir $T/runlink is a symbolic link"
try "$T/runlink.out" -c "$T/runlink.ini"
assert_eq "a run with run_dir a link" 73 $rc
has "$T/runlink.out" "run_dir $T/runlink is a symbolic link"
try "$T/datalink.out" -c "$T/t.ini" $(own dl) -o ringmaster.data_dir="$T/datalink"
assert_eq "a run with data_dir a link" 73 $rc
has "$T/datalink.out" "-o ringmaster.data_dir=$T/datalink: [ringmaster] data_dir $T/datalink is a symbolic link"
try "$T/outlink.out" -c "$T/t.ini" $(own ol) -o output.dir="$T/outlink"
assert_eq "a run with the output dir a link" 73 $rc
has "$T/outlink.out" "[output] dir $T/outlink is a symbolic link"
assert_eq "mode of the directory the links point to" 1777 "$(stat -c %a "$T/victim")"
[ -z "$(ls -A "$T/victim")" ] || fail "something was made in the directory a link points to"
# strict_modes = no follows the link but never chmods through it
try "$T/nostrict.out" -c "$T/runlink.ini" $(own ns) -o ringmaster.run_dir="$T/runlink" \
	-o ringmaster.strict_modes=no
assert_eq "a run with run_dir a link and strict_modes = no" 0 $rc
assert_eq "mode after a run with strict_modes = no" 1777 "$(stat -c %a "$T/victim")"
ok "run_dir, data_dir and output dir links refused; the target keeps mode 1777"

# 5. A handler that cannot be loaded is named with the file and line of the
# setting: missing, not a shared object, no rm_handler_entry.
with_config missing handler "$T/missing.so"
try "$T/missing.out" -t -c "$T/missing.ini"
assert_eq "-t with a missing handler" 78 $rc
has "$T/missing.out" "$T/missing.ini:$hline: [worker] handler: $T/missing.so: No such file or directory"
try "$T/missing-run.out" -c "$T/missing.ini" $(own missing)
assert_eq "a run with a missing handler" 78 $rc
has "$T/missing-run.out" "$T/missing.ini:$hline: [worker] handler: $T/missing.so: No such file or directory"
printf 'not an object\n' >"$T/junk.so"
with_config junk handler "$T/junk.so"
try "$T/junk.out" -t -c "$T/junk.ini"
assert_eq "-t with a handler that is not a shared object" 78 $rc
has "$T/junk.out" "$T/junk.ini:$hline: [worker] handler: $T/junk.so: cannot load: "
! grep -q "/proc/self/fd" "$T/junk.out" || fail "the message names /proc/self/fd, not the file"
mkdir "$T/dir.so"
with_config dirso handler "$T/dir.so"
try "$T/dirso.out" -t -c "$T/dirso.ini"
has "$T/dirso.out" "$T/dirso.ini:$hline: [worker] handler: $T/dir.so is not a regular file"
if command -v cc >/dev/null; then
	printf 'int not_a_handler;\n' >"$T/nosym.c"
	cc -shared -fPIC -o "$T/nosym.so" "$T/nosym.c"
	with_config nosym handler "$T/nosym.so"
	try "$T/nosym.out" -t -c "$T/nosym.ini"
	assert_eq "-t with a .so without rm_handler_entry" 78 $rc
	has "$T/nosym.out" "$T/nosym.ini:$hline: [worker] handler: $T/nosym.so: no symbol 'rm_handler_entry'"
fi
ok "handler load errors name the file and line of the setting"
