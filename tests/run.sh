#!/usr/bin/env bash
# run.sh - run every test: the cmocka unit binaries in $B/tests/unit, then the
# integration scripts in tests/integration. Prints one line per test program
# and a closing "N passed, N failed" line; exits non-zero if anything failed.
set -u
umask 022 # files the tests make must pass ringmaster's strict_modes
cd "$(dirname "$0")/.."
B=${B:-build}
export B
export RINGMASTER="$PWD/$B/bin/ringmaster" RINGCTL="$PWD/$B/bin/ringctl"
export HANDLER_DIR="$PWD/$B/handlers" TEST_HANDLER_DIR="$PWD/$B/test-handlers" TOP="$PWD"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log_dir="$B/test-logs"
rm -rf "$log_dir"; mkdir -p "$log_dir"
passed=0 failed=0 failures=()

run_one() { # name command...
	local name=$1; shift
	local log="$log_dir/${name//\//_}.log" start=$SECONDS
	# A hung test must fail, not hang CI: TEST_TIMEOUT seconds each.
	if timeout -k 10 "${TEST_TIMEOUT:-600}" "$@" >"$log" 2>&1; then
		passed=$((passed + 1)); printf 'PASS  %-40s %3ds\n' "$name" $((SECONDS - start))
	else
		failed=$((failed + 1)); failures+=("$name")
		printf 'FAIL  %-40s %3ds  (log: %s)\n' "$name" $((SECONDS - start)) "$log"
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
}

for t in "$B"/tests/unit/test_*; do
	[ -x "$t" ] || continue
	run_one "unit/${t##*/}" "$t"
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	run_one "integration/$(basename "$t" .sh)" bash "$t"
done

echo
[ $failed -eq 0 ] || echo "failed: ${failures[*]}"
echo "tests: $passed passed, $failed failed"
[ $failed -eq 0 ]
