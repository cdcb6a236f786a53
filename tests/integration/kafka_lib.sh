# kafka_lib.sh - shared by the Kafka tests (source it after lib.sh): a mock
# cluster (librdkafka's, on loopback ports: $B/tests/kafka_mock), instances
# of ringmaster in the background, and the conditions the tests wait for.
KAFKA_MOCK=${KAFKA_MOCK:-$TOP/${B:-build}/tests/kafka_mock}
GROUP=grp
TOPIC=events
CHANGELOG=$GROUP-$NAME-changelog

# A failed check leaves no instance behind, nor a worker of this test's
# (one stuck at its start would not follow its supervisor).
eval "lib_$(declare -f fail)"
fail() {
	local p
	for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	sleep 1
	for p in $(pgrep -f "^ringmaster: worker [0-9]+ \($NAME\)"); do kill -KILL "$p"; done
	lib_fail "$@"
}

# kafka_start_mock EVENTS_FILE [TOPIC...]: a cluster with the topic (the
# events in it, keyed by account, murmur2-partitioned), the changelog and
# the other topics named, $PARTITIONS (4) partitions each; with MOCK_RTT
# (ms), every broker answers that late. Sets BROKERS.
kafka_start_mock() {
	local events=$1 t extra=()
	shift
	for t in "$@"; do extra+=(-t "$t"); done
	"$KAFKA_MOCK" -p "${PARTITIONS:-4}" ${MOCK_RTT:+-r "$MOCK_RTT"} -t $TOPIC -t "$CHANGELOG" "${extra[@]}" -e "$events" \
		>"$T/mock.out" 2>"$T/mock.err" &
	MOCK_PID=$!
	BG_PIDS+=($MOCK_PID)
	wait_until 120 grep -q '^ready' "$T/mock.out" ||
		{ cat "$T/mock.err"; fail "the mock cluster did not start"; }
	BROKERS=$(sed -n 's/^bootstrap=//p' "$T/mock.out")
	[ -n "$BROKERS" ] || fail "no bootstrap address from the mock cluster"
}

kafka_stop_mock() { kill -TERM "$MOCK_PID" && wait "$MOCK_PID" || fail "the mock cluster did not exit 0"; }

# kafka_config NAME [extra INI lines...]: $T/NAME.ini, a Kafka source with
# its data, output and run directories in $T/NAME/, and short group
# timeouts (SESSION_MS, HEARTBEAT_MS) so that a dead member is noticed in
# seconds.
kafka_config() {
	local name=$1
	shift
	SOURCE=kafka T="$T/$name" write_config "$T/$name.ini" "[kafka]" \
		"session.timeout.ms = ${SESSION_MS:-6000}" \
		"heartbeat.interval.ms = ${HEARTBEAT_MS:-500}" "$@"
	sed -i "s|^type = kafka\$|&\\nbrokers = $BROKERS\\ntopic = $TOPIC\\ngroup = $GROUP|" \
		"$T/$name.ini"
}

# kafka_run NAME [ringmaster options]: start instance NAME in the
# background (log $T/NAME.log); sets PID_<NAME>, which the exit trap kills
# should the test fail (its workers follow it: PR_SET_PDEATHSIG). With
# SETSID=1 the instance gets a process group of its own (its pid).
kafka_run() {
	local name=$1
	shift
	${SETSID:+setsid} "$RINGMASTER" -c "$T/$name.ini" "$@" 2>>"$T/$name.log" &
	BG_PIDS+=($!)
	eval "PID_$name=$!"
}

# kafka_stop NAME: SIGTERM, which must end it with status 0.
kafka_stop() {
	local name=$1 rc=0 pid
	eval "pid=\$PID_$name"
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	[ $rc -eq 0 ] || { tail -20 "$T/$name.log"; fail "$name exited $rc after SIGTERM"; }
	# A released worker's exit status is not checked: its log is.
	! grep -E -A20 "Sanitizer|runtime error" "$T/$name.log" || fail "$name: see above"
}

# kafka_dump TOPIC: every record, partition<TAB>key<TAB>seq<TAB>value.
kafka_dump() { "$KAFKA_MOCK" -p "${PARTITIONS:-4}" -d "$1" -b "$BROKERS"; }

# processed NAME: events its workers have processed, by the control socket.
processed() { "$RINGCTL" -c "$T/$1.ini" status --json 2>/dev/null | jq -e '.processed'; }
processed_is() { [ "$(processed "$1")" = "$2" ]; } # NAME N

state_is() { # NAME FILE: the instance's state equals FILE
	"$RINGCTL" -c "$T/$1.ini" dump-state 2>/dev/null | cmp -s - "$2"
}

# reading NAME N: N partitions have been started since the log began.
reading() { [ "$(grep -c 'kafka: partition [0-9]*: reading from' "$T/$1.log")" -ge "$2" ]; }
