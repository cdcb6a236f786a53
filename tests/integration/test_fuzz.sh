# Every libFuzzer target (built by `make test` into $B/fuzz, with ASan and
# UBSan) runs for FUZZ_TEST_SECONDS (default 5) from its seed corpus, so a
# regression the fuzzer finds quickly fails the tests. `make fuzz` runs them
# longer. A crash leaves its input in $T, which is kept.
. "$(dirname "$0")/lib.sh"
secs=${FUZZ_TEST_SECONDS:-5}
found=0
for f in "$TOP/$B"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	found=1
	name=${f##*/fuzz_}
	[ -d "$TOP/tests/fuzz/corpus/$name" ] || fail "no seed corpus tests/fuzz/corpus/$name"
	mkdir -p "$T/corpus-$name"
	"$f" -max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix="$T/" \
		"$T/corpus-$name" "$TOP/tests/fuzz/corpus/$name" >"$T/fuzz-$name.log" 2>&1 \
		|| { tail -40 "$T/fuzz-$name.log"; fail "fuzz_$name failed: its input is in $T"; }
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/fuzz-$name.log")
	ok "fuzz_$name: ${runs:-?} inputs in ${secs}s, no crash"
done
[ $found = 1 ] || fail "no fuzz targets in $B/fuzz: 'make test' builds them"
