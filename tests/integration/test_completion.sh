# The bash completion, etc/ringmaster.bash-completion: sourced as bash
# loads it, asked with COMP_WORDS/COMP_CWORD as bash splits a line (at '='
# too), it offers ringctl's commands, both programs' options, the setting
# names after -o (ringmaster --list-settings: common/cfg.c's table) and the
# values of those that have a closed set.
. "$(dirname "$0")/lib.sh"

# --list-settings: every setting once, enums with their values.
"$RINGMASTER" --list-settings >"$T/settings.txt"
grep -qx $'source.type\tfile generate zmq kafka spool' "$T/settings.txt" \
	|| fail "source.type in --list-settings: $(grep '^source.type' "$T/settings.txt")"
grep -qx 'ringmaster.data_dir' "$T/settings.txt" || fail "no ringmaster.data_dir in --list-settings"
[ -z "$(cut -f1 "$T/settings.txt" | sort | uniq -d)" ] || fail "a setting listed twice"
cmp -s "$T/settings.txt" <("$RINGCTL" --list-settings) || fail "ringctl --list-settings differs"
ok "--list-settings: $(wc -l <"$T/settings.txt") settings, the same from both programs"

set +eu # as in an interactive shell, where completion runs
. "$TOP/etc/ringmaster.bash-completion"
complete -p ringctl >/dev/null && complete -p ringmaster >/dev/null || fail "complete -F not registered"

# completes FUNCTION PROGRAM WORD...: COMPREPLY for the last word, sorted,
# on one line.
completes() {
	local fn=$1 prog=$2
	shift 2
	COMP_WORDS=("${prog##*/}" "$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	"$fn" "$prog" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'
}
expect() { # what expected actual
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}
has() { # what word actual
	[[ " $3 " == *" $2 "* ]] || fail "$1: '$2' not offered in '$3'"
}

all=$(completes _ringctl "$RINGCTL" "")
for c in status workers metrics reload stop restart-worker ping top wait state dump-state gen send \
	replay load-state forget-replay savepoint savepoint-status rescale; do
	has "ringctl <TAB>" "$c" "$all"
done
expect "ringctl st<TAB>" "stages state status stop" "$(completes _ringctl "$RINGCTL" st)"
expect "ringctl -c x.ini -o a.b=1 gen <TAB>" "accounts events rules" \
	"$(completes _ringctl "$RINGCTL" -c x.ini -o a.b = 1 gen "")"
expect "ringctl status --j<TAB>" "--json" "$(completes _ringctl "$RINGCTL" status --j)"
has "ringctl --<TAB>" "--json" "$(completes _ringctl "$RINGCTL" --)"
expect "ringctl load-state --r<TAB>" "--replace" "$(completes _ringctl "$RINGCTL" load-state --r)"
: >"$T/dead_letter.tsv"
expect "ringctl replay $T/dead<TAB>" "$T/dead_letter.tsv" "$(completes _ringctl "$RINGCTL" replay "$T/dead")"
ok "ringctl: commands, their arguments, options"

expect "ringctl -o source.ty<TAB>" "source.type=" "$(completes _ringctl "$RINGCTL" -o source.ty)"
expect "ringctl -o source.type=<TAB>" "file generate kafka spool zmq" \
	"$(completes _ringctl "$RINGCTL" -o source.type =)"
expect "ringmaster -o store.sync=p<TAB>" "periodic" \
	"$(completes _ringmaster "$RINGMASTER" -c x.ini -o store.sync = p)"
expect "ringmaster -o ringmaster.log_level=d<TAB>" "debug" \
	"$(completes _ringmaster "$RINGMASTER" -o ringmaster.log_level = d)"
expect "ringmaster --set worker.strict<TAB>" "" "$(completes _ringmaster "$RINGMASTER" --set worker.strict)"
expect "ringmaster -o ringmaster.strict_modes=<TAB>" "no yes" \
	"$(completes _ringmaster "$RINGMASTER" -o ringmaster.strict_modes =)"
ok "-o: setting names from --list-settings, and the values of closed sets"

expect "ringmaster --fo<TAB>" "--force-recover" "$(completes _ringmaster "$RINGMASTER" --fo)"
expect "ringmaster --fr<TAB>" "--from-savepoint" "$(completes _ringmaster "$RINGMASTER" --fr)"
mkdir "$T/spdir"
expect "ringmaster --from-savepoint $T/spd<TAB>" "$T/spdir" \
	"$(completes _ringmaster "$RINGMASTER" --from-savepoint "$T/spd")"
expect "ringctl savepoint --v<TAB>" "--verify" "$(completes _ringctl "$RINGCTL" savepoint --v)"
expect "ringctl savepoint --verify $T/spd<TAB>" "$T/spdir" \
	"$(completes _ringctl "$RINGCTL" savepoint --verify "$T/spd")"
expect "ringmaster --res<TAB>" "--rescale" "$(completes _ringmaster "$RINGMASTER" --res)"
: >"$T/conf.ini"
expect "ringmaster -c $T/con<TAB>" "$T/conf.ini" "$(completes _ringmaster "$RINGMASTER" -c "$T/con")"
ok "ringmaster: options, a file after -c"
