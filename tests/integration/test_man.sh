# Every man page renders without a warning from groff, through man-db's
# `man --warnings -l` (what a packager's lint sees first).
. "$(dirname "$0")/lib.sh"
command -v man >/dev/null || fail "man is missing: run 'make deps' (package man-db)"
n=0
for page in "$TOP"/man/*.[1-8]; do
	warnings=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page" 2>&1 >/dev/null) \
		|| fail "man cannot render $page: $warnings"
	[ -z "$warnings" ] || fail "$(basename "$page"):"$'\n'"$warnings"
	n=$((n + 1))
done
[ $n -gt 0 ] || fail "no man pages in man/"
ok "$n man pages render without warnings"
