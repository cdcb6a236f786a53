# `make deb` and the package on a minimal Debian: in a chroot made with
# debootstrap (cached in $DEB_TEST_CACHE), `apt-get install ./ringmaster_*.deb`
# brings its dependencies and adduser and creates the ringmaster user; the
# daemon runs as that user on the packaged configuration (as the unit would:
# no systemd in a chroot), ringctl finds it without -c, takes events and
# stops it; a purge removes the user, /var/lib/ringmaster and /etc/ringmaster.
# Needs root and the apt mirror; not under ASan (it packages the plain build).
. "$(dirname "$0")/lib.sh"

if [ "${ASAN:-}" = 1 ]; then
	echo "skipped: under ASan (the package is the plain build; make test runs it)"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (debootstrap, chroot)"; exit 0; }
command -v debootstrap >/dev/null \
	|| DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 \
	|| { echo "skipped: no debootstrap and apt-get cannot install it"; exit 0; }

suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$suite" ] && [ -n "$mirror" ] || { echo "skipped: not Debian, or no apt mirror configured"; exit 0; }
cache=${DEB_TEST_CACHE:-/var/tmp/ringmaster-deb-$suite.tar}

# The chroot lives outside $T, and is unmounted before anything is removed:
# lib.sh's exit trap runs after ours, on success and failure alike.
root=$(mktemp -d /var/tmp/ringmaster-deb.XXXXXX)
unmount_root() {
	# Whatever still runs inside it (a worker of a daemon that failed).
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	for m in dev/pts dev/shm dev proc; do
		mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
	done
	# Nothing may be mounted under it any more before it goes.
	if grep -q " $root/" /proc/mounts; then
		echo "test_deb: $root still has mounts, left in place" >&2
	else
		rm -rf --one-file-system "$root"
	fi
}
eval "set -- $(trap -p EXIT)"
trap 'rc=$?; set +e; unmount_root; (exit $rc); '"$3" EXIT
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"; }

start=$SECONDS
make -s -C "$TOP" deb >"$T/make-deb.log" 2>&1 || { tail -30 "$T/make-deb.log"; fail "make deb"; }
deb=$(ls "$TOP"/build/ringmaster_*_"$(dpkg --print-architecture)".deb)
ok "make deb: ${deb##*/} ($((SECONDS - start)) s)"

if [ ! -s "$cache" ]; then
	debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$T/debootstrap.log" 2>&1 \
		|| { tail -20 "$T/debootstrap.log"; fail "debootstrap $suite $mirror"; }
	tar -C "$root" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
	ok "a minimal $suite made with debootstrap, cached in $cache"
else
	tar -C "$root" -xf "$cache"
fi
chmod 0755 "$root" # the chroot's /, which the ringmaster user must traverse (mktemp made it 0700)
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
	rm -f "$root/etc/apt/sources.list"
fi
# A /dev of its own (not the host's bound in), /proc for pgrep and the boot id.
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755 dev "$root/dev"
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
	IFS=: read -r n maj min <<<"$d"
	mknod -m 0666 "$root/dev/$n" c "$maj" "$min"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"

cp "$deb" "$root/tmp/"
in_root apt-get update -qq >"$T/apt.log" 2>&1 || { tail -20 "$T/apt.log"; fail "apt-get update in the chroot"; }
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	"/tmp/${deb##*/}" >>"$T/apt.log" 2>&1 || { tail -30 "$T/apt.log"; fail "apt-get install ./${deb##*/}"; }
ok "apt-get install ./${deb##*/} with its dependencies"

in_root getent passwd ringmaster >/dev/null || fail "no ringmaster user after install"
owner=$(in_root stat -c %U:%G:%a /var/lib/ringmaster)
assert_eq "/var/lib/ringmaster" "ringmaster:ringmaster:750" "$owner"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}' ringmaster)
for f in ringmaster.ini rules.tsv accounts.tsv; do
	echo "$conffiles" | grep -q " /etc/ringmaster/$f " || fail "/etc/ringmaster/$f is not a conffile: $conffiles"
done
for f in /usr/sbin/ringmaster /usr/bin/ringctl /lib/systemd/system/ringmaster.service \
	/usr/share/man/man8/ringmaster.8.gz /usr/include/ringmaster.h \
	/usr/share/doc/ringmaster/examples/example_counter.c /usr/share/bash-completion/completions/ringmaster \
	/usr/share/bash-completion/completions/ringctl; do
	[ -e "$root$f" ] || fail "$f is not installed"
done
[ -e "$root/etc/systemd/system/multi-user.target.wants/ringmaster.service" ] \
	&& fail "the package enabled the unit"
ok "ringmaster user, /var/lib/ringmaster 0750, conffiles, nothing enabled"

# As the unit runs it: the check, then the daemon, as the user, with
# /run/ringmaster made as RuntimeDirectory= would.
in_root install -d -o ringmaster -g ringmaster -m 0750 /run/ringmaster
as_user() { in_root setpriv --reuid=ringmaster --regid=ringmaster --init-groups "$@"; }
out=$(as_user /usr/sbin/ringmaster -t -c /etc/ringmaster/ringmaster.ini 2>&1) \
	|| fail "ringmaster -t on the packaged config: $out"
# Not through the function: $! must be the daemon (chroot, env and setpriv
# each exec the next), not a subshell.
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setpriv --reuid=ringmaster \
	--regid=ringmaster --init-groups /usr/sbin/ringmaster -c /etc/ringmaster/ringmaster.ini \
	2>"$T/daemon.log" &
pid=$!
BG_PIDS+=($pid)
in_root ringctl wait -t 30 >/dev/null || { cat "$T/daemon.log"; fail "ringctl wait: the daemon did not answer"; }
status=$(in_root ringctl status) || fail "ringctl status: $status"
echo "$status" | grep -q ringmaster || fail "ringctl status does not name the instance: $status"
ok "the daemon runs as ringmaster; ringctl (no -c) status answers"
# By number: ps on the host would name it from the host's passwd.
assert_eq "the daemon's uid" "$(in_root id -u ringmaster)" "$(ps -o uid= -p $pid | tr -d ' ')"

in_root sh -c 'ringctl gen events --events 2000 | ringctl send' >/dev/null || fail "ringctl send"
wait_until 30 test -n "$(in_root ringctl dump-state 2>/dev/null | head -1)"
ok "events sent through the packaged zmq source reach the state"

kill -TERM $pid
wait $pid || fail "ringmaster exited $? on SIGTERM: $(cat "$T/daemon.log")"

in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq ringmaster >>"$T/apt.log" 2>&1 \
	|| { tail -20 "$T/apt.log"; fail "apt-get purge ringmaster"; }
in_root getent passwd ringmaster >/dev/null && fail "the ringmaster user is left after purge"
in_root getent group ringmaster >/dev/null && fail "the ringmaster group is left after purge"
for d in /var/lib/ringmaster /etc/ringmaster /run/ringmaster /usr/sbin/ringmaster; do
	[ ! -e "$root$d" ] || fail "$d is left after purge"
done
ok "purge removed the user, its state and the configuration ($((SECONDS - start)) s in all)"
