# The command line: version, help, -t on good and bad configs, usage errors.
. "$(dirname "$0")/lib.sh"

"$RINGMASTER" --version | grep -q '^ringmaster [0-9]' || fail "--version"
"$RINGMASTER" --help | grep -q 'usage: ringmaster' || fail "--help"
"$RINGCTL" --version | grep -q '^ringctl [0-9]' || fail "ringctl --version"

out=$("$RINGMASTER" -t -c "$TOP/etc/ringmaster.ini")
assert_eq "-t on the shipped config" "$TOP/etc/ringmaster.ini: configuration ok" "$out"

set +e
"$RINGMASTER" >/dev/null 2>&1; rc=$?
assert_eq "no -c exits EX_USAGE" 64 $rc
"$RINGMASTER" -c x --bogus >/dev/null 2>&1; rc=$?
assert_eq "unknown option exits EX_USAGE" 64 $rc

printf '[worker]\nbatch_max = 0\n[nope]\n' >"$T/bad.ini"
err=$("$RINGMASTER" -t -c "$T/bad.ini" 2>&1); rc=$?
set -e
assert_eq "bad config exits EX_CONFIG" 78 $rc
echo "$err" | grep -qF "$T/bad.ini:2: [worker] batch_max must be 1..1048576, got 0" \
	|| fail "message for batch_max: $err"
echo "$err" | grep -qF "$T/bad.ini:3: unknown section [nope]" || fail "message for section: $err"

write_config "$T/t.ini"
set +e
err=$("$RINGMASTER" -t -c "$T/t.ini" -o table.rules.path=/nonexistent.tsv 2>&1); rc=$?
set -e
assert_eq "missing table exits EX_CONFIG" 78 $rc
echo "$err" | grep -q "/nonexistent.tsv" || fail "message names the table file: $err"

set +e
err=$("$RINGMASTER" -t -c "$T/t.ini" -o worker.handler=/nonexistent.so 2>&1); rc=$?
set -e
assert_eq "missing handler exits EX_CONFIG" 78 $rc
echo "$err" | grep -q "nonexistent.so" || fail "message names the handler: $err"

set +e
"$RINGCTL" frobnicate >/dev/null 2>&1; rc=$?
set -e
assert_eq "ringctl unknown command exits 2" 2 $rc
ok "command line"
