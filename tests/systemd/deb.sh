#!/usr/bin/env bash
# deb.sh SOURCE_DIR WORK_DIR — the Debian package in a throw-away systemd:
# dpkg -i creates the user and the spool and leaves the service disabled;
# systemctl start loads a file; a corrupt file's failure is explained by the
# journal catalog (journalctl -x); the man pages render; dpkg --purge
# removes it all.  Needs root (exit 77 otherwise).
set -euo pipefail
SRC=$(readlink -f "$1")
WORK=$(readlink -f "$2")/deb-test
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"
sandbox_setup memc-deb

# build the package the way scripts/package does
cmake -S "$SRC" -B "$WORK" -DCMAKE_BUILD_TYPE=Release -DMEMC_TESTS=OFF \
    -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc >/dev/null
cmake --build "$WORK" -j "$(nproc)" --target memc-load memc-gen >/dev/null
rm -f "$WORK"/memc-load_*.deb
(cd "$WORK" && cpack -G DEB >/dev/null)
DEB=$(ls "$WORK"/memc-load_*.deb)

# the man pages render
for page in "$SRC/man/memc-load.8" "$SRC/man/memc-load.conf.5"; do
    out=$(MANWIDTH=80 man -l "$page" 2>&1) || fail "man -l $page failed"
    echo "$out" | grep -q "SEE ALSO" || fail "man -l $page rendered nothing useful"
done

$SB up >/dev/null
ROOT=$($SB root)
cp "$DEB" "$ROOT/var/tmp/memc-load.deb"
cp "$WORK/memc-gen" "$ROOT/var/tmp/memc-gen"
X dpkg -i /var/tmp/memc-load.deb >/dev/null
X id memc-load >/dev/null || fail "no memc-load user"
[ "$(X stat -c '%U %a' /var/spool/memc-load)" = "memc-load 2775" ] || fail "spool not created right"
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

echo "--- journalctl -x -u memc-load (the forced failure, with its catalog text)"
X journalctl -x -u memc-load --no-pager MESSAGE_ID=4d0bc1b3e5a04c0a9e3f6a1c2b7d8e02 |
    tee /tmp/x.$$ | sed 's/^/    /'
grep -q "Subject: memc-load failed to load bad.tsv.gz (corrupt)" /tmp/x.$$ ||
    { rm -f /tmp/x.$$; fail "journalctl -x does not show the catalog"; }
grep -q 'the gzip data is broken' /tmp/x.$$ || { rm -f /tmp/x.$$; fail "catalog body missing"; }
rm -f /tmp/x.$$

X dpkg --purge memc-load >/dev/null
X test -e /usr/bin/memc-load && fail "binary still there after purge"
X test -e /lib/systemd/system/memc-load.service && fail "unit still there after purge"
X systemctl is-active --quiet memc-load && fail "still running after purge"
echo "1 passed, 0 failed"
