# A Lua handler runs a batch's events in one call into Lua: an event that
# fails (an error, a bad return, rm.reject, a bad rm call) stops the run,
# is dead-lettered with its effects undone, and the run goes on from the
# next event; the first and the last of a batch, and two in a row, too.
# Every event sees its own seq, key, payload and partition, and the result
# is the same whatever the batch size.
. "$(dirname "$0")/lib.sh"
PARTITIONS=1
: >"$T/events.tsv"
for i in $(seq 1 40); do printf 'k%02d\tp%02d\n' "$i" "$i" >>"$T/events.tsv"; done

cat >"$T/batch.lua" <<'LUA'
function process(ev)
	local k = ev.key
	rm.state_put(k, "touched")
	rm.count("seen")
	rm.emit(ev.seq, " ", k, " ", ev.partition, " ", rm.payload_sub())
	if k == "k01" or k == "k40" then error("edge " .. k) end
	if k == "k10" or k == "k11" then error("in a row " .. k) end
	if k == "k15" then return rm.reject("no k15") end
	if k == "k16" then return "0" end -- a number as a string: rm.OK, as before
	if k == "k17" then return false end
	if k == "k18" then return rm.REJECT end
	if k == "k20" then rm.state_put("", "x") end
	if k == "k21" then return rm.OK end
	if k == "k22" then return true end
end
LUA
chmod 0644 "$T/batch.lua"

# The events' seqs are their offsets in the file (8 bytes a line).
: >"$T/want"
for i in $(seq 1 40); do
	case $i in 1 | 40 | 10 | 11 | 15 | 17 | 18 | 20) continue ;; esac
	printf '%d k%02d 0 p%02d\n' $(((i - 1) * 8)) "$i" "$i" >>"$T/want"
done
want_dead="0 lua_error 72 lua_error 80 lua_error 112 no k15 128 lua_error 136 rejected 152 lua_error 312 lua_error "

for b in 512 3 1; do
	BATCH_MAX=$b HANDLER="$T/batch.lua" write_config "$T/b$b.ini"
	"$RINGMASTER" -c "$T/b$b.ini" -o ringmaster.data_dir="$T/b$b" -o output.dir="$T/out$b" \
		-o output.dead_letter="$T/dead$b.tsv" 2>"$T/b$b.log" \
		|| { cat "$T/b$b.log"; fail "run, batch_max=$b"; }
	assert_same_file "output, batch_max=$b" "$T/want" "$T/out$b/p0.tsv"
	assert_eq "dead letters (seq, reason), batch_max=$b" "$want_dead" \
		"$(cut -f1,2 "$T/dead$b.tsv" | tr '\t\n' '  ')"
	"$RINGCTL" -c "$T/b$b.ini" -o ringmaster.data_dir="$T/b$b" dump-state >"$T/state$b"
	assert_eq "state of the events that went through, batch_max=$b" 32 \
		"$(grep -c '	touched$' "$T/state$b")"
	for k in k01 k10 k11 k15 k17 k18 k20 k40; do
		grep -q "^$k	" "$T/state$b" && fail "batch_max=$b: $k's state_put was not undone"
	done
	grep -q "seen=32" "$T/b$b.log" || { cat "$T/b$b.log"; fail "counts of failed events"; }
	for m in "batch.lua:6: edge k01" "batch.lua:6: edge k40" "batch.lua:7: in a row k10" \
		"batch.lua:7: in a row k11" "process seq=128: lua_error: it returned neither" \
		"batch.lua:12: rm.state_put: a key is 1..255 bytes, got 0"; do
		grep -qF "$m" "$T/b$b.log" || { cat "$T/b$b.log"; fail "batch_max=$b: no '$m'"; }
	done
done
ok "one call per batch: failed events dead-lettered and undone one by one, any batch size"
