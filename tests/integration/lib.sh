# lib.sh - shared by the integration tests: a scratch directory, a config
# writer, and assertions that say what differed. Source it; it sets -eu.
set -eu
: "${RINGMASTER:?run through make test}" "${RINGCTL:?run through make test}"
: "${TOP:?run through make test}"
T=$(mktemp -d "${TMPDIR:-/tmp}/ringmaster-test.XXXXXX")
# A name of its own, so that process lookups never find another test's workers.
NAME=t${T##*.}
# The raw control socket client (tests/integration/control_client.c).
CONTROL_CLIENT=${CONTROL_CLIENT:-$TOP/${B:-build}/tests/control_client}
BG_PIDS=() # background instances the test started: killed on exit
# Their workers too: one stuck where it cannot see its supervisor die (an
# ASan allocator lock taken across fork) would spin on for ever.
# At the end, every log record the test produced must be logfmt a parser
# reads (logcheck.c): a test that passes fails if one is not.
LOGCHECK=${LOGCHECK:-$TOP/${B:-build}/tests/logcheck}
check_logs() {
	local files
	[ -x "$LOGCHECK" ] || return 0
	files=$(grep -rlI --exclude-dir=data -e '^ts=' "$T" 2>/dev/null) || return 0
	# shellcheck disable=SC2086
	"$LOGCHECK" $files >&2 || { echo "FAIL: log records that are not logfmt (above)" >&2; return 1; }
}
trap 'rc=$?; set +e; for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	pkill -KILL -f "^ringmaster: worker [0-9]+ \($NAME\)" 2>/dev/null
	[ $rc -ne 0 ] || check_logs || rc=1
	[ $rc -eq 0 ] && rm -rf "$T" || echo "kept $T for a look"; exit $rc' EXIT
trap 'exit 143' TERM # a test timed out: the EXIT trap still cleans up

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# write_config FILE [extra INI lines...]: a small ledger setup in $T with the
# shipped tables; extra lines are appended as they are (later sections can add
# keys to [source] etc. only through -o, so prefer -o for overrides).
write_config() {
	local f=$1; shift
	cat >"$f" <<INI
[ringmaster]
name = $NAME
partitions = ${PARTITIONS:-4}
data_dir = $T/data
run_dir = $T/run
log_level = ${LOG_LEVEL:-info}
stop_timeout = 10s

[worker]
batch_max = ${BATCH_MAX:-512}
ring_size = ${RING_SIZE:-1M}
handler = ${HANDLER:-ledger}

[source]
type = ${SOURCE:-file}
path = ${SOURCE_PATH:-$T/events.tsv}

[output]
type = file
dir = $T/out
dead_letter = $T/dead.tsv

[store]
map_size = 64M
sync = periodic

[table.rules]
path = ${RULES:-$TOP/etc/rules.tsv}

[table.accounts]
path = ${ACCOUNTS:-$TOP/etc/accounts.tsv}
INI
	for line in "$@"; do printf '%s\n' "$line" >>"$f"; done
}

# ref_run NAME CONFIG [ringmaster options...]: an uninterrupted run of
# CONFIG into $T/NAME/ (data, out, dead.tsv, run), the state it ends with
# in $T/NAME.state: what a test compares its faulty runs with.
ref_run() {
	local name=$1 ini=$2
	shift 2
	"$RINGMASTER" -c "$ini" -o ringmaster.data_dir="$T/$name/data" -o output.dir="$T/$name/out" \
		-o output.dead_letter="$T/$name/dead.tsv" -o ringmaster.run_dir="$T/$name/run" "$@" \
		2>"$T/$name.log" || { cat "$T/$name.log"; fail "reference run $name"; }
	"$RINGCTL" -c "$ini" -o ringmaster.data_dir="$T/$name/data" dump-state >"$T/$name.state"
}

# all_output DIR: every partition's output lines, sorted, on stdout.
all_output() { cat "$1"/p*.tsv 2>/dev/null | LC_ALL=C sort; }

assert_eq() { # what expected actual
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

assert_same_file() { # what expected_file actual_file
	cmp -s "$2" "$3" || { diff -u "$2" "$3" | head -40 >&2; fail "$1 differs"; }
}

# json_get FILE KEY: a top-level number or boolean from a summary file.
json_get() { grep -o "\"$2\":[^,}]*" "$1" | head -1 | cut -d: -f2; }

# wait_until SECONDS CMD...: poll CMD every 0.05 s until it succeeds; fail
# after SECONDS.
wait_until() {
	local limit=$1; shift
	local end=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || fail "timed out after ${limit}s waiting for: $*"
		sleep 0.05
	done
}

# log_messages FILE: each log record's msg, unescaped; other lines as they are.
log_messages() {
	sed -E 's/^ts=[^ ]+ level=[a-z]+ proc=[^ ]+ pid=[0-9]+ msg=("(([^"\\]|\\.)*)"|([^ ]*)).*$/\2\4/' "$1" |
		sed -E 's/\\"/"/g; s/\\t/\t/g; s/\\\\/\\/g'
}

# log_has FILE PATTERN [COUNT]: FILE has at least COUNT (1) lines matching.
log_has() { [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ]; }

# worker_pid N: the pid of worker N of this test's instance.
worker_pid() {
	local pid
	pid=$(pgrep -f "^ringmaster: worker $1 \($NAME\)" | head -1)
	[ -n "$pid" ] && echo "$pid"
}
# workers_gone: no worker of this test's instance is left.
workers_gone() { ! pgrep -f "^ringmaster: worker [0-9]+ \($NAME\)" >/dev/null; }

# same_run DIR_A DIR_B: equal state (dump-state) and equal output files,
# byte for byte, partition by partition.
same_outputs() {
	local a=$1 b=$2
	for f in "$a"/p*.tsv; do
		cmp -s "$f" "$b/${f##*/}" || { diff <(head -c 2000 "$f") <(head -c 2000 "$b/${f##*/}") | head >&2; fail "${f##*/} differs from the uninterrupted run"; }
	done
	[ "$(ls "$a" | wc -l)" = "$(ls "$b" | wc -l)" ] || fail "output file sets differ"
}
