# A file made by `ringctl gen events` and the generate source with the same
# parameters give byte-identical output and state.
. "$(dirname "$0")/lib.sh"
args="--events 40000 --keys 3000 --seed 11 --skew 0.99"
"$RINGCTL" gen events $args >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/log1" || { cat "$T/log1"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/state_file"
all_output "$T/out" >"$T/out_file"

mkdir "$T/gen"
SOURCE=generate write_config "$T/gen.ini"
o="-o ringmaster.data_dir=$T/gen/data -o output.dir=$T/gen/out -o output.dead_letter=$T/gen/dead.tsv"
o="$o -o source.events=40000 -o source.keys=3000 -o source.seed=11 -o source.skew=0.99"
"$RINGMASTER" -c "$T/gen.ini" $o 2>"$T/log2" || { cat "$T/log2"; fail "generate run"; }
"$RINGCTL" -c "$T/gen.ini" $o dump-state >"$T/state_gen"
all_output "$T/gen/out" >"$T/out_gen"
assert_same_file "state, file vs generate" "$T/state_file" "$T/state_gen"
assert_same_file "output, file vs generate" "$T/out_file" "$T/out_gen"
[ -s "$T/out_gen" ] || fail "no output"
ok "file run equals generate run"
