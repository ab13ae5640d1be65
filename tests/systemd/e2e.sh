#!/usr/bin/env bash
# e2e.sh — memc-load under a real systemd (PID 1 in throw-away namespaces):
# cmake --install, then systemd-sysusers and systemd-tmpfiles --create (the
# user and the spool come from the installed fragments, nothing else);
# --check-config reads the installed config; systemd-analyze security is at
# most 1.1; systemctl start, files dropped into the spool are loaded
# (records counted in memcached) and dot-renamed, systemctl status shows the
# STATUS line, journalctl shows the structured "file loaded" entries; the
# state directory keeps memcached identities and a restarted memcached is
# re-warmed; a load over TLS with authentication, the password and the
# client key passed in as systemd credentials (LoadCredential=);
# systemctl reload with a bad config fails and the daemon keeps the old one;
# systemctl stop; a bad config at start fails the unit instead of restarting
# it forever.  Prints the status and journal excerpts it captured (they go
# into the closing notes).
#
# usage: e2e.sh BUILD_DIR      (needs root; skipped with exit 77 otherwise)
set -euo pipefail
BUILD=$(readlink -f "$1")
HERE=$(dirname "$(readlink -f "$0")")
. "$HERE/common.sh"
sandbox_setup memc-e2e
STAGE=$(mktemp -d /var/tmp/memc-e2e-stage.XXXXXX)
STAGE_DIRS+=("$STAGE")

# PATTERN is in memc-load's journal.  The journal is read whole first: with
# pipefail, `journalctl | grep -q` fails when grep quits early and
# journalctl dies of SIGPIPE on what it still had to write.
journal_has() {
    local j
    j=$(X journalctl -u memc-load --no-pager)
    grep -q -- "$1" <<<"$j"
}

$SB up
# systemd mounts each unit's credentials in a namespace of its own and moves
# them into place: that reaches the unit only under a shared root
X mount --make-rshared /
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
PREFIX=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
UNIT=$(cd "$STAGE" && find . -name memc-load.service | cut -c2-)
CONF=$(cd "$STAGE" && find . -path '*/memc-load/memc-load.conf' | cut -c2-)
BIN=$(cd "$STAGE" && find . -path '*/bin/memc-load' | cut -c2-)
if [ "$PREFIX" != /usr ]; then
    [ "$UNIT" = "${PREFIX%/}/lib/systemd/system/memc-load.service" ] ||
        fail "unit installed at '$UNIT', not under the prefix $PREFIX"
fi
X id memc-load >/dev/null 2>&1 && fail "the sandbox already has a memc-load user"
# the user and the directories: the two commands the README names
X systemd-sysusers memc-load.conf
X systemd-tmpfiles --create memc-load.conf
X id memc-load >/dev/null || fail "systemd-sysusers created no memc-load user"
[ "$(X stat -c '%U:%G %a' /var/spool/memc-load)" = "memc-load:memc-load 2775" ] ||
    fail "spool: $(X stat -c '%U:%G %a' /var/spool/memc-load), want memc-load:memc-load 2775"
[ "$(X stat -c '%U %a' /var/lib/memc-load)" = "memc-load 750" ] || fail "no state directory"
# the unit must pass systemd's own checks
X systemd-analyze verify "$UNIT" 2>&1 | grep -v "^$" | tee /tmp/verify.$$ || true
if grep -qiE "memc-load.service.*(error|unknown|failed)" /tmp/verify.$$; then
    rm -f /tmp/verify.$$; fail "systemd-analyze verify complained"
fi
rm -f /tmp/verify.$$
X systemctl daemon-reload
echo "--- systemd-analyze security memc-load.service"
X systemd-analyze security --no-pager memc-load.service | tee /tmp/sec.$$ | grep -v '^✓' | sed 's/^/    /'
score=$(sed -n 's/.*Overall exposure level for memc-load.service: \([0-9.]*\).*/\1/p' /tmp/sec.$$)
rm -f /tmp/sec.$$
[ -n "$score" ] || fail "no exposure level from systemd-analyze security"
awk -v s="$score" 'BEGIN { exit !(s <= 1.1) }' || fail "exposure level $score, want <= 1.1"

# the compiled-in default config is the installed one; the service user can
# write the spool (no memcached probes yet: --no-probe)
X "$BIN" --check-config --no-probe >/tmp/check.$$ 2>&1 || { cat /tmp/check.$$; fail "--check-config --no-probe"; }
grep -q "^config: *$CONF\$" /tmp/check.$$ || { cat /tmp/check.$$; fail "check did not read $CONF"; }
grep -q "writable by memc-load" /tmp/check.$$ || { cat /tmp/check.$$; fail "spool writability not checked"; }
rm -f /tmp/check.$$

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

# the state directory keeps the servers' identities; a restarted memcached
# (idfa) is re-warmed from the retained files
mc_items() {
    X bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; printf 'stats\r\nquit\r\n' >&3; \
        grep -a 'STAT curr_items' <&3 | tr -dc 0-9"
}
idfa=$(mc_items 33013)
for _ in $(seq 100); do X test -s /var/lib/memc-load/servers && break; sleep 0.1; done
X grep -q "^127.0.0.1:33013 " /var/lib/memc-load/servers || fail "no identities in the state directory"
[ "$(X stat -c %U /var/lib/memc-load/servers)" = memc-load ] || fail "state file not the service user's"
X systemctl stop memcached-0
X systemd-run --quiet --unit=memcached-0b /usr/bin/memcached -u nobody -l 127.0.0.1 -p 33013 -U 0 -m 64
for _ in $(seq 300); do
    journal_has "re-warm of 127.0.0.1:33013 finished" && break
    sleep 0.1
done
echo "--- re-warm of a restarted memcached"
X journalctl -u memc-load --no-pager | grep "re-warm" | sed 's/^/    /'
journal_has "re-warm of 127.0.0.1:33013 finished: 3 files" ||
    fail "no re-warm of the restarted memcached"
[ "$(mc_items 33013)" = "$idfa" ] || fail "re-warmed idfa holds $(mc_items 33013) items, want $idfa"
# every memcached takes the probe write (one more key each: after the count)
X "$BIN" --check-config >/dev/null || fail "--check-config with every memcached up"

sleep 1.2 # let STATUS catch up with the last result
echo "--- systemctl status memc-load"
X systemctl status memc-load --no-pager | tee /tmp/status.$$ | sed 's/^/    /'
grep -qE "Status: \"idle; 0 queued; last appsinstalled-000[0-2].tsv.gz: loaded" /tmp/status.$$ ||
    { rm -f /tmp/status.$$; fail "STATUS line not as expected"; }
rm -f /tmp/status.$$

echo "--- journalctl -u memc-load -o verbose (one file loaded entry)"
# to a file first: "| tee | head" would die of SIGPIPE (pipefail) once the
# journal is longer than head reads
X journalctl -u memc-load -o verbose --no-pager MESSAGE_ID=4d0bc1b3e5a04c0a9e3f6a1c2b7d8e01 \
    >/tmp/journal.$$
head -40 /tmp/journal.$$ | sed 's/^/    /'
[ "$(grep -c 'MEMC_RECORDS=20000' /tmp/journal.$$)" = 3 ] ||
    { rm -f /tmp/journal.$$; fail "no structured 'file loaded' entries"; }
grep -q "MEMC_ERROR_RATE=0.000000" /tmp/journal.$$ || fail "no MEMC_ERROR_RATE field"
rm -f /tmp/journal.$$

X systemctl reload memc-load
sleep 0.5
journal_has "configuration reloaded" || fail "reload not logged"
# ExecReload='s check: its one verdict line, no server table, the name once
journal_has "memc-load.conf: check passed" || fail "the reload's check said nothing"
journal_has "TYPE   SERVER" && fail "the reload's check wrote its table into the journal"
journal_has "memc-load\[[0-9]*\]: memc-load: " && fail "a journal line names memc-load twice"
X systemctl is-active --quiet memc-load || fail "not active after reload"

# a bad config: the reload fails with the message, the daemon keeps its
# config and goes on loading
pid=$(X systemctl show -P MainPID memc-load)
X cp "$CONF" /var/tmp/good.conf
X sh -c "printf 'nope = 1\n' >> $CONF"
X systemctl reload memc-load 2>/tmp/reload.$$ && fail "reload with a bad config succeeded"
for _ in $(seq 150); do # journald may take a moment to have it
    journal_has "memc-load.conf:[0-9]*: nope: unknown key" && break
    sleep 0.1
done
journal_has "memc-load.conf:[0-9]*: nope: unknown key" ||
    fail "the failed reload does not say why"
echo "--- systemctl reload with a bad config"
sed 's/^/    /' /tmp/reload.$$; rm -f /tmp/reload.$$
X journalctl -u memc-load --no-pager | grep "nope: unknown key" | tail -1 | sed 's/^/    /'
X systemctl is-active --quiet memc-load || fail "not active after a failed reload"
[ "$(X systemctl show -P MainPID memc-load)" = "$pid" ] || fail "the daemon was restarted"
X /usr/local/bin/memc-gen -n 1000 -s 9 /var/spool/incoming >/dev/null
X mv /var/spool/incoming/appsinstalled-0000.tsv.gz /var/spool/memc-load/after-reload.tsv.gz
for _ in $(seq 100); do
    X test -e /var/spool/memc-load/.after-reload.tsv.gz && break
    sleep 0.1
done
X test -e /var/spool/memc-load/.after-reload.tsv.gz || fail "not loading after a failed reload"
X cp /var/tmp/good.conf "$CONF"

# a file the service may not read (mode 000, dropped by root): one journal
# entry, retried with a back-off, never set aside; loaded once it is readable
X /usr/local/bin/memc-gen -n 1000 -s 10 -p denied- /var/spool/incoming >/dev/null
X chmod 000 /var/spool/incoming/denied-0000.tsv.gz
X mv /var/spool/incoming/denied-0000.tsv.gz /var/spool/memc-load/
for _ in $(seq 100); do
    journal_has "denied-0000.tsv.gz cannot be read: Permission denied" && break
    sleep 0.1
done
journal_has "denied-0000.tsv.gz cannot be read: Permission denied; trying again" ||
    fail "a mode-000 file is not reported"
X test -e /var/spool/memc-load/.denied-0000.tsv.gz.failed && fail "a mode-000 file was set aside"
sleep 2.5 # tried again meanwhile (1 s, 2 s): still said once
[ "$(X journalctl -u memc-load --no-pager | grep -c 'denied-0000.tsv.gz cannot be read')" = 1 ] ||
    fail "a mode-000 file is reported at every try"
X chmod 0644 /var/spool/memc-load/denied-0000.tsv.gz
for _ in $(seq 100); do # the next try: within 4 s
    X test -e /var/spool/memc-load/.denied-0000.tsv.gz && break
    sleep 0.1
done
X test -e /var/spool/memc-load/.denied-0000.tsv.gz || fail "a mode-000 file made readable was not loaded"
echo "--- a mode-000 file in the spool"
X journalctl -u memc-load --no-pager | grep "denied-0000" | tail -3 | sed 's/^/    /'

X systemctl stop memc-load
X systemctl is-active --quiet memc-load && fail "still active after stop"
journal_has "exiting with status 0" || fail "no clean exit"
echo "--- journalctl -u memc-load (whole run)"
X journalctl -u memc-load --no-pager | sed 's/^/    /' | tail -25

# TLS and authentication with the secrets as systemd credentials: the
# password and the client key in /etc/memc-load/credentials (root, 0700,
# files 0600: memc-load cannot read them itself), passed in by the unit's
# LoadCredential=; memcached with -Z (client certificate required) and -Y
bash "$HERE/../lib/tls-certs" "$ROOT/etc/memc-load/pki"
X chmod 0644 /etc/memc-load/pki/server.key # memcached reads it as nobody
X sh -c 'printf "loader:e2e-secret\n" >/etc/memc-load/pki/memcached.auth'
X chmod 0644 /etc/memc-load/pki/memcached.auth
X systemd-run --quiet --unit=memcached-tls /usr/bin/memcached -u nobody -l 127.0.0.1 -p 33017 \
    -U 0 -m 64 -Z -Y /etc/memc-load/pki/memcached.auth \
    -o ssl_chain_cert=/etc/memc-load/pki/server.pem,ssl_key=/etc/memc-load/pki/server.key,ssl_ca_cert=/etc/memc-load/pki/ca.pem,ssl_verify_mode=2
X install -d -m 0700 /etc/memc-load/credentials
X sh -c 'printf "e2e-secret\n" >/etc/memc-load/credentials/password'
X install -m 0600 /etc/memc-load/pki/client.key /etc/memc-load/credentials/client.key
X chmod 0600 /etc/memc-load/credentials/password
X runuser -u memc-load -- cat /etc/memc-load/credentials/password >/dev/null 2>&1 &&
    fail "memc-load can read the password file itself"
X sh -c "sed 's/^idfa = .*/idfa = 127.0.0.1:33017/' /var/tmp/good.conf >$CONF && cat >>$CONF <<EOF
idfa_tls = on
tls_ca_file = /etc/memc-load/pki/ca.pem
tls_cert_file = /etc/memc-load/pki/client.pem
tls_key_file = /etc/memc-load/credentials/client.key
idfa_auth_user = loader
idfa_auth_password_file = /etc/memc-load/credentials/password
EOF"
# a config naming secret files must not be readable by others
X "$BIN" --check-config --no-probe >/tmp/check.$$ 2>&1 && fail "a world-readable config naming secrets passed"
grep -q "others may read it" /tmp/check.$$ || { cat /tmp/check.$$; fail "no reason for refusing the config"; }
X chgrp memc-load "$CONF"
X chmod 0640 "$CONF"
X "$BIN" --check-config >/tmp/check.$$ 2>&1 || { cat /tmp/check.$$; fail "--check-config over TLS"; }
echo "--- --check-config over TLS with authentication"
sed 's/^/    /' /tmp/check.$$
grep -q "tls:  TLSv1.3 .*certificate CN=memcached, issued by CN=memc-load test CA" /tmp/check.$$ ||
    fail "--check-config shows no certificate"
rm -f /tmp/check.$$
X systemctl start memc-load || fail "systemctl start with credentials failed"
X /usr/local/bin/memc-gen -n 5000 -s 12 -t idfa -p tls- /var/spool/incoming >/dev/null
X mv /var/spool/incoming/tls-0000.tsv.gz /var/spool/memc-load/
for _ in $(seq 200); do
    X test -e /var/spool/memc-load/.tls-0000.tsv.gz && break
    sleep 0.1
done
X test -e /var/spool/memc-load/.tls-0000.tsv.gz || fail "no load over TLS with credentials"
journal_has "tls-0000.tsv.gz loaded: 5000 records stored" || fail "the TLS load is not in the journal"
journal_has "e2e-secret" && fail "the password is in the journal"
X systemctl stop memc-load
X cp /var/tmp/good.conf "$CONF"
X chmod 0644 "$CONF"
X chgrp root "$CONF"
echo "--- a load over TLS with authentication, secrets as credentials"
X journalctl -u memc-load --no-pager | grep "tls-0000" | tail -2 | sed 's/^/    /'

# a bad config at start: exit 78 fails the unit (RestartPreventExitStatus=),
# no restart loop
X sh -c "printf 'nope = 1\n' >> $CONF"
X systemctl start memc-load && fail "started with a bad config"
sleep 5 # RestartSec=2s: a restart would have happened by now
echo "--- systemctl status memc-load (bad config)"
X systemctl status memc-load --no-pager >/tmp/status.$$ || true
head -12 /tmp/status.$$ | sed 's/^/    /'
rm -f /tmp/status.$$
[ "$(X systemctl show -P ActiveState memc-load)" = failed ] || fail "unit not failed with a bad config"
[ "$(X systemctl show -P NRestarts memc-load)" = 0 ] || fail "restarted with a bad config"
[ "$(X systemctl show -P ExecMainStatus memc-load)" = 78 ] || fail "exit status not 78"
echo "1 passed, 0 failed"
