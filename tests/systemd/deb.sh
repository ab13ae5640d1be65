#!/usr/bin/env bash
# deb.sh SOURCE_DIR WORK_DIR — the Debian package, built by scripts/package:
# lintian --pedantic reports nothing (any error or warning fails), the man
# pages are mandoc -Tlint clean and render.  Then in a throw-away systemd:
# dpkg -i creates the user and the spool from the shipped sysusers.d /
# tmpfiles.d fragments and leaves the service disabled; systemctl start loads
# a file; a corrupt file's failure is explained by the journal catalog
# (journalctl -x); reinstalling (an upgrade) restarts the running daemon;
# dpkg -r stops it and keeps the producers' files in the spool; dpkg --purge
# forgets the enable symlink, so a reinstall comes back disabled.  Needs root
# (exit 77 otherwise).
set -euo pipefail
SRC=$(readlink -f "$1")
WORK=$(readlink -f "$2")/deb-test
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"
sandbox_setup memc-deb

# build the package exactly as scripts/package does (it is scripts/package)
DEB=$(bash "$SRC/scripts/package" "$WORK" | tail -1)
[ -f "$DEB" ] || fail "scripts/package built no .deb"
dpkg-deb -f "$DEB" Suggests | grep -q 'prometheus-node-exporter' ||
    fail "the package does not suggest prometheus-node-exporter"

echo "--- lintian --pedantic $(basename "$DEB")"
lintian --pedantic "$DEB" >/tmp/lintian.$$ 2>&1 || true
sed -i '/running with root privileges is not recommended/d' /tmp/lintian.$$
sed 's/^/    /' /tmp/lintian.$$
if grep -qE '^[EW]: |^internal error|^lintian: ' /tmp/lintian.$$; then
    rm -f /tmp/lintian.$$; fail "lintian reports errors or warnings"
fi
rm -f /tmp/lintian.$$
X() { :; } # no sandbox yet: fail() must not reach into one

# the man pages: mandoc -Tlint clean, and they render
for page in "$SRC/man/memc-load.8" "$SRC/man/memc-load.conf.5"; do
    lint=$(mandoc -Tlint "$page" 2>&1) || fail "mandoc -Tlint $page: $lint"
    [ -z "$lint" ] || fail "mandoc -Tlint $page: $lint"
    out=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l $page failed"
    echo "$out" | grep -q "SEE ALSO" || fail "man -l $page rendered nothing useful"
done
X() { $SB exec "$@"; }

$SB up >/dev/null
ROOT=$($SB root)
# A host that is itself a container (CI) may forbid service starts with
# policy-rc.d (exit 101), which deb-systemd-invoke obeys; the sandbox runs
# a real systemd, so drop it there (overlay: the host keeps its own).
X rm -f /usr/sbin/policy-rc.d
cp "$DEB" "$ROOT/var/tmp/memc-load.deb"
cp "$WORK/memc-gen" "$ROOT/var/tmp/memc-gen"
X dpkg -i /var/tmp/memc-load.deb >/dev/null
X id memc-load >/dev/null || fail "no memc-load user"
[ "$(X stat -c '%U:%G %a' /var/spool/memc-load)" = "memc-load:memc-load 2775" ] ||
    fail "spool not created right"
[ "$(X stat -c '%U %a' /var/lib/memc-load)" = "memc-load 750" ] || fail "no state directory"
X memc-load --check-config --no-probe >/dev/null || fail "--check-config --no-probe after dpkg -i"
[ "$(X systemctl is-enabled memc-load)" = disabled ] || fail "service should stay disabled"
X dpkg-query -W -f='${Conffiles}\n' memc-load | grep -q /etc/memc-load/memc-load.conf ||
    fail "config is not a conffile"

for i in 0 1 2 3; do
    X systemd-run --quiet --unit=memcached-$i /usr/bin/memcached -u nobody -l 127.0.0.1 \
        -p $((33013 + i)) -U 0 -m 64
done
X systemctl start memc-load || fail "systemctl start failed"
X mkdir -p /var/spool/in
X /var/tmp/memc-gen -n 2000 -s 3 /var/spool/in >/dev/null
X sh -c 'printf "not gzip at all" > /var/spool/in/bad.tsv.gz'
X sh -c 'mv /var/spool/in/*.tsv.gz /var/spool/memc-load/'
for _ in $(seq 200); do
    X test -e /var/spool/memc-load/.bad.tsv.gz.failed &&
        X test -e /var/spool/memc-load/.appsinstalled-0000.tsv.gz && break
    sleep 0.1
done
X test -e /var/spool/memc-load/.appsinstalled-0000.tsv.gz || fail "file not loaded"
X test -e /var/spool/memc-load/.bad.tsv.gz.failed || fail "corrupt file not set aside"
# no node-exporter in the sandbox: its missing directory is one info line
X journalctl -u memc-load --no-pager -o cat -p info >/tmp/x.$$
[ "$(grep -c 'no metrics: directory /var/lib/prometheus/node-exporter does not exist' /tmp/x.$$)" = 1 ] ||
    { rm -f /tmp/x.$$; fail "the missing metrics directory is not one line"; }
X journalctl -u memc-load --no-pager -o cat -p warning | grep -q metrics &&
    { rm -f /tmp/x.$$; fail "the missing metrics directory is a warning"; }
rm -f /tmp/x.$$

echo "--- journalctl -x -u memc-load (the forced failure, with its catalog text)"
X journalctl -x -u memc-load --no-pager MESSAGE_ID=4d0bc1b3e5a04c0a9e3f6a1c2b7d8e0e |
    tee /tmp/x.$$ | sed 's/^/    /'
grep -q "Subject: memc-load set bad.tsv.gz aside as .bad.tsv.gz.failed (corrupt)" /tmp/x.$$ ||
    { rm -f /tmp/x.$$; fail "journalctl -x does not show the catalog"; }
grep -q 'The gzip data of bad.tsv.gz is broken' /tmp/x.$$ || { rm -f /tmp/x.$$; fail "catalog body missing"; }
grep -q 'error_threshold' /tmp/x.$$ && { rm -f /tmp/x.$$; fail "the corrupt file's text tells the error-rate story"; }
rm -f /tmp/x.$$

# an upgrade (the same package again) restarts the running daemon
pid=$(X systemctl show -P MainPID memc-load)
X dpkg -i /var/tmp/memc-load.deb >/dev/null
X systemctl is-active --quiet memc-load || fail "not running after the upgrade"
[ "$(X systemctl show -P MainPID memc-load)" != "$pid" ] || fail "the upgrade did not restart it"

# enabled, then removed: stopped, the producers' files stay
X systemctl enable --quiet memc-load
X sh -c 'printf "waiting" > /var/spool/memc-load/later.tsv.gz.part'
X dpkg -r memc-load >/dev/null
X systemctl is-active --quiet memc-load && fail "still running after dpkg -r"
X test -e /var/spool/memc-load/later.tsv.gz.part || fail "dpkg -r removed a producer's file"
X test -e /usr/bin/memc-load && fail "binary still there after dpkg -r"
# purged: the enable symlink is forgotten, a non-empty spool stays
X dpkg --purge memc-load >/dev/null
X test -e /var/spool/memc-load/later.tsv.gz.part || fail "purge removed a producer's file"
X test -e /lib/systemd/system/memc-load.service && fail "unit still there after purge"
X test -L /etc/systemd/system/multi-user.target.wants/memc-load.service &&
    fail "enable symlink still there after purge"
X dpkg -i /var/tmp/memc-load.deb >/dev/null
[ "$(X systemctl is-enabled memc-load)" = disabled ] || fail "purge + reinstall came back enabled"
X systemctl is-active --quiet memc-load && fail "running after purge + reinstall"
X dpkg --purge memc-load >/dev/null
X test -e /usr/bin/memc-load && fail "binary still there after purge"
echo "1 passed, 0 failed"
