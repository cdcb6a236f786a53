# Every libFuzzer target (tests/fuzz/fuzz_*.c, built by `make test` into
# $B/fuzz with ASan and UBSan) runs for FUZZ_TEST_SECONDS (default 2, about
# 3 s with start and exit) from its seed corpus tests/fuzz/corpus/NAME, so a
# regression the fuzzer finds quickly fails the tests. `make fuzz` runs them
# longer. A crash leaves its input in $T, which is kept: make it a unit test
# (tests/fuzz/README).
. "$(dirname "$0")/lib.sh"
secs=${FUZZ_TEST_SECONDS:-2}
found=0
for src in "$TOP"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	name=${name#fuzz_}
	f=$TOP/$B/fuzz/fuzz_$name
	[ -x "$f" ] || fail "fuzz_$name is not built: 'make test' builds every tests/fuzz/fuzz_*.c"
	[ -d "$TOP/tests/fuzz/corpus/$name" ] || fail "no seed corpus tests/fuzz/corpus/$name"
	found=$((found + 1))
	mkdir -p "$T/corpus-$name"
	"$f" -max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix="$T/" \
		"$T/corpus-$name" "$TOP/tests/fuzz/corpus/$name" >"$T/fuzz-$name.log" 2>&1 \
		|| { tail -40 "$T/fuzz-$name.log"; fail "fuzz_$name failed: its input is in $T"; }
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/fuzz-$name.log")
	ok "fuzz_$name: ${runs:-?} inputs in ${secs}s, no crash"
done
[ $found -gt 0 ] || fail "no fuzz targets in tests/fuzz"
ok "$found fuzz targets"
