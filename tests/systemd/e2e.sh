#!/usr/bin/env bash
# e2e.sh — memc-load under a real systemd (PID 1 in throw-away namespaces):
# cmake --install, systemctl start, files dropped into the spool are loaded
# (records counted in memcached) and dot-renamed, systemctl status shows the
# STATUS line, journalctl shows the structured "file loaded" entries,
# systemctl reload, systemctl stop.  Prints the status and journal excerpts
# it captured (they go into the closing notes).
#
# usage: e2e.sh BUILD_DIR      (needs root; skipped with exit 77 otherwise)
set -euo pipefail
BUILD=$(readlink -f "$1")
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"
sandbox_setup memc-e2e
STAGE=$(mktemp -d /var/tmp/memc-e2e-stage.XXXXXX)
STAGE_DIRS+=("$STAGE")

$SB up
# four memcached inside the sandbox's private network, as transient units
for i in 0 1 2 3; do
    X systemd-run --quiet --unit=memcached-$i /usr/bin/memcached -u nobody -l 127.0.0.1 \
        -p $((33013 + i)) -U 0 -m 64
done

# install exactly as an operator would (cmake --install, with the prefix the
# build was configured with), staged on the host and copied into the
# sandbox: its /tmp is private, so the build tree may not be visible inside
DESTDIR=$STAGE cmake --install "$BUILD" >/dev/null
ROOT=$($SB root)
(cd "$STAGE" && tar -c -- *) | tar -C "$ROOT" -x --keep-directory-symlink --no-overwrite-dir
cp "$BUILD/memc-gen" "$ROOT/usr/local/bin/memc-gen"
X useradd --system --no-create-home --shell /usr/sbin/nologin memc-load
X install -d -o memc-load -g memc-load -m 2775 /var/spool/memc-load
# the unit must pass systemd's own checks
X systemd-analyze verify /lib/systemd/system/memc-load.service 2>&1 | grep -v "^$" | tee /tmp/verify.$$ || true
if grep -qiE "memc-load.service.*(error|unknown|failed)" /tmp/verify.$$; then
    rm -f /tmp/verify.$$; fail "systemd-analyze verify complained"
fi
rm -f /tmp/verify.$$

X systemctl daemon-reload
X systemctl start memc-load || fail "systemctl start failed"
X systemctl is-active --quiet memc-load || fail "memc-load is not active after start"

# drop files the producer way: write elsewhere on the same fs, rename in
X mkdir -p /var/spool/incoming
X /usr/local/bin/memc-gen -n 20000 -f 3 -s 5 /var/spool/incoming >/dev/null
X sh -c 'for f in /var/spool/incoming/*.tsv.gz; do mv "$f" /var/spool/memc-load/; done'
for _ in $(seq 300); do
    n=$(X sh -c 'ls -A /var/spool/memc-load | grep -c "^\.appsinstalled-000[0-2]\.tsv\.gz$"' || true)
    [ "$n" = 3 ] && break
    sleep 0.1
done
[ "$n" = 3 ] || fail "files were not loaded and renamed"

# every record is in memcached: 60000 items over the four servers
items=0
for i in 0 1 2 3; do
    c=$(X bash -c "exec 3<>/dev/tcp/127.0.0.1/$((33013 + i)); printf 'stats\r\nquit\r\n' >&3; \
        grep -a 'STAT curr_items' <&3 | tr -dc 0-9")
    items=$((items + c))
done
[ "$items" = 60000 ] || fail "memcached holds $items items, want 60000"

sleep 1.2 # let STATUS catch up with the last result
echo "--- systemctl status memc-load"
X systemctl status memc-load --no-pager | tee /tmp/status.$$ | sed 's/^/    /'
grep -qE "Status: \"idle; 0 queued; last appsinstalled-000[0-2].tsv.gz: loaded" /tmp/status.$$ ||
    { rm -f /tmp/status.$$; fail "STATUS line not as expected"; }
rm -f /tmp/status.$$

echo "--- journalctl -u memc-load -o verbose (one file loaded entry)"
X journalctl -u memc-load -o verbose --no-pager MESSAGE_ID=4d0bc1b3e5a04c0a9e3f6a1c2b7d8e01 \
    | tee /tmp/journal.$$ | head -40 | sed 's/^/    /'
[ "$(grep -c 'MEMC_RECORDS=20000' /tmp/journal.$$)" = 3 ] ||
    { rm -f /tmp/journal.$$; fail "no structured 'file loaded' entries"; }
grep -q "MEMC_ERROR_RATE=0.000000" /tmp/journal.$$ || fail "no MEMC_ERROR_RATE field"
rm -f /tmp/journal.$$

X systemctl reload memc-load
sleep 0.5
X journalctl -u memc-load --no-pager | grep -q "configuration reloaded" || fail "reload not logged"
X systemctl is-active --quiet memc-load || fail "not active after reload"

X systemctl stop memc-load
X systemctl is-active --quiet memc-load && fail "still active after stop"
X journalctl -u memc-load --no-pager | grep -q "exiting with status 0" || fail "no clean exit"
echo "--- journalctl -u memc-load (whole run)"
X journalctl -u memc-load --no-pager | sed 's/^/    /' | tail -25
echo "1 passed, 0 failed"
