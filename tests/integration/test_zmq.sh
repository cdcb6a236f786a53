# The zmq source and output. Events pushed with `ringctl send` (in batches of
# lines, or --frames: one [key, payload] message each) end in the same state
# as a file-source run of the same file, with the same output lines but for
# the seq column (a counter here, byte offsets there); the counter goes on
# after a restart; malformed lines are dead-lettered with the file source's
# reasons; SIGTERM exits 0. Then one instance's zmq output feeds another's
# zmq source: every output line arrives, once.
. "$(dirname "$0")/lib.sh"
N=20000
"$RINGCTL" gen events --events $N --keys 2000 --seed 5 --skew 0.9 >"$T/events.tsv"
write_config "$T/file.ini"
"$RINGMASTER" -c "$T/file.ini" 2>"$T/file.log" || { cat "$T/file.log"; fail "file run"; }
"$RINGCTL" -c "$T/file.ini" dump-state >"$T/file.state"
all_output "$T/out" | cut -f2- | LC_ALL=C sort >"$T/file.out"

# A failed check also stops the instance running, if any.
eval "lib_$(declare -f fail)"
fail() {
	[ -z "${PID:-}" ] || kill -TERM "$PID" 2>/dev/null || true
	lib_fail "$@"
}

# poll_until SECONDS WHAT CMD...: until CMD succeeds.
poll_until() {
	local end=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		[ $SECONDS -lt $end ] || fail "timed out waiting for $what"
		sleep 0.1
	done
}

# zmq_start NAME [ringmaster options]: run $T/NAME.ini, a zmq source with
# its data, output and run directory in $T/NAME/, in the background on a
# free loopback port, trying other ports while the one picked is taken.
# Sets PORT and PID. `timeout` ends it should the test fail and leave it
# (--foreground: it passes our SIGTERM to ringmaster alone, once).
zmq_start() {
	local name=$1 try
	shift
	for try in 1 2 3 4 5 6 7 8; do
		PORT=$((20000 + RANDOM % 40000))
		SOURCE=zmq T="$T/$name" write_config "$T/$name.ini"
		sed -i "s|^type = zmq\$|&\\nbind = tcp://127.0.0.1:$PORT|" "$T/$name.ini"
		timeout --foreground -k 5 300 "$RINGMASTER" -c "$T/$name.ini" "$@" 2>>"$T/$name.log" &
		PID=$!
		poll_until 20 "$name to listen" listening "$name"
		grep -q "zmq source listening.*:$PORT " "$T/$name.log" && return 0
		grep -q "Address already in use" "$T/$name.log" || { cat "$T/$name.log"; fail "$name"; }
	done
	fail "no free port for $name after $try tries"
}
listening() { grep -qs "zmq source listening.*:$PORT " "$T/$1.log" || ! kill -0 $PID 2>/dev/null; }

zmq_stop() { # NAME: SIGTERM, which must end it with status 0
	local rc=0 pid=$PID
	PID=
	kill -TERM $pid
	wait $pid || rc=$?
	[ $rc -eq 0 ] || { tail "$T/$1.log"; fail "$1 exited $rc after SIGTERM"; }
}

send() { # NAME [send options] [FILE]: ringctl send, to the endpoint in the config
	local name=$1
	shift
	timeout 120 "$RINGCTL" -c "$T/$name.ini" send "$@" || fail "ringctl send to $name"
}

state_is() { # NAME FILE: the instance's state equals FILE
	"$RINGCTL" -c "$T/$1.ini" dump-state 2>/dev/null | cmp -s - "$2"
}

lines_are() { [ "$(cat "$T/$1/out"/p*.tsv 2>/dev/null | wc -l)" -eq "$2" ]; } # NAME N

# Batches of lines.
zmq_start batch
send batch "$T/events.tsv"
poll_until 120 "the state of the file run" state_is batch "$T/file.state"
zmq_stop batch
state_is batch "$T/file.state" || fail "state after the stop"
all_output "$T/batch/out" | cut -f2- | LC_ALL=C sort >"$T/batch.out"
assert_same_file "output but seq, zmq vs file" "$T/file.out" "$T/batch.out"
cut -f1 "$T/batch/out"/p*.tsv | sort -n >"$T/seqs"
seq 0 $((N - 1)) >"$T/want_seqs"
assert_same_file "seqs: the counter, from 0" "$T/want_seqs" "$T/seqs"
ok "ringctl send: same state and output as the file source"

# A restart goes on counting above every seq the shards have applied.
zmq_start batch
head -n 10 "$T/events.tsv" | send batch
poll_until 60 "the 10 new events" lines_are batch $((N + 10))
zmq_stop batch
seq $N $((N + 9)) >"$T/want_seqs"
cut -f1 "$T/batch/out"/p*.tsv | sort -n | tail -n 10 >"$T/seqs"
assert_same_file "seqs after a restart" "$T/want_seqs" "$T/seqs"
ok "the seq counter survives a restart"

# Two-frame messages.
zmq_start frames
send frames --frames "$T/events.tsv"
poll_until 120 "the state of the file run (--frames)" state_is frames "$T/file.state"
zmq_stop frames
ok "ringctl send --frames: same state as the file source"

# Malformed lines: the file source's reasons, at the line's seq.
long=$(head -c 70000 /dev/zero | tr '\0' x)
{
	printf 'acct00000001\tdeposit\t100\n'
	printf 'no delimiter here\n'
	printf '\n'
	printf '\tdeposit\t5\n'
	printf '%s\tdeposit\t5\n' "$(head -c 300 /dev/zero | tr '\0' k)"
	printf 'acct00000002\t%s\n' "$long"
	printf 'acct00000003\tdeposit\t300\r\n'
	printf 'acct00000004\tdeposit\t400'
} >"$T/bad.tsv"
zmq_start bad
send bad "$T/bad.tsv"
poll_until 60 "the malformed lines" lines_are bad 3
zmq_stop bad
sort -n "$T/bad/dead.tsv" | cut -f1,2 | tr '\t\n' ': ' >"$T/got"
printf '1:no_delimiter 2:empty_line 3:empty_key 4:key_too_long 5:too_long ' >"$T/want"
assert_same_file "dead letters" "$T/want" "$T/got"
ok "malformed lines dead-lettered as by the file source"

# zmq output: a file-source instance PUSHes its lines to a zmq-source
# instance counting them per key (the seq, the lines' first column).
zmq_start count -o worker.handler="$HANDLER_DIR/example_counter.so"
timeout --foreground -k 5 120 "$RINGMASTER" -c "$T/file.ini" -o ringmaster.data_dir="$T/push" -o output.dead_letter="$T/push.dead" \
	-o output.type=zmq -o output.connect=tcp://127.0.0.1:$PORT 2>"$T/push.log" ||
	{ cat "$T/push.log"; fail "push run"; }
all_output "$T/out" | awk -F'\t' '{ print $1 "\t1" }' | LC_ALL=C sort >"$T/want_count"
poll_until 60 "every output line at the consumer" state_is count "$T/want_count"
zmq_stop count
ok "zmq output: every line delivered once"
