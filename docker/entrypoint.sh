#!/bin/sh
# docker/entrypoint.sh — starts as root, gives the daemon a spool it can
# write without taking it from its owner, then drops to an unprivileged user
# and runs memc-load in the foreground with the arguments given
# (docker-compose.yml's command).
#
# A spool some host user owns (mkdir spool before "docker compose up", as
# the README says) stays theirs: the daemon runs as that user and group, so
# the producers' files and the renames keep the host's ownership.  A
# root-owned one (Docker created the missing ./spool itself) keeps its owner
# too: it only gets group write for the image's memc-load group (setgid, so
# new files stay in it), and the daemon runs as memc-load.  The state
# directory (a named volume) is the daemon's own: it gets the daemon's user.
set -eu
spool=/var/spool/memc-load
state=/var/lib/memc-load
mkdir -p "$spool" "$state"
uid=$(stat -c %u "$spool")
gid=$(stat -c %g "$spool")
if [ "$uid" = 0 ]; then
    echo "memc-load-entrypoint: $spool is root's (was ./spool missing? mkdir spool" \
        "first); adding group write for memc-load, the owner stays" >&2
    chgrp memc-load "$spool"
    chmod g+rwxs "$spool"
    chown -R memc-load:memc-load "$state"
    exec setpriv --reuid=memc-load --regid=memc-load --init-groups -- /usr/bin/memc-load "$@"
fi
chown -R "$uid:$gid" "$state"
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- /usr/bin/memc-load "$@"
