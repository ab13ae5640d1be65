#!/bin/sh
# docker/entrypoint.sh — starts as root, gives the daemon a spool it can
# write, then drops to an unprivileged user and runs memc-load in the
# foreground with the arguments given (docker-compose.yml's command).
#
# A bind-mounted ./spool that Docker created itself is root-owned: it becomes
# memc-load's (2775, producers in group memc-load may write), and the daemon
# runs as memc-load.  A spool some host user already owns stays theirs: the
# daemon runs as that user and group, so the producers' files and the
# renames keep the host's ownership.
set -eu
spool=/var/spool/memc-load
mkdir -p "$spool"
uid=$(stat -c %u "$spool")
gid=$(stat -c %g "$spool")
if [ "$uid" = 0 ]; then
    chown memc-load:memc-load "$spool"
    chmod 2775 "$spool"
    exec setpriv --reuid=memc-load --regid=memc-load --init-groups -- /usr/bin/memc-load "$@"
fi
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- /usr/bin/memc-load "$@"
