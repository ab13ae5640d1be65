#!/usr/bin/env bash
# valgrind.sh MEMC_LOAD MEMC_GEN — the one-shot path (master and its forked
# workers, every thread) under valgrind memcheck: zero errors, zero leaks.
set -euo pipefail
memc=$1 gen=$2
command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 77; }
work=$(mktemp -d /tmp/memc-valgrind-XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib/memcached-start"
memcached_start -U 0 -m 64
mc=$MC_PID port=$MC_PORT
trap 'kill $mc 2>/dev/null || true; rm -rf "$work"' EXIT
"$gen" -n 3000 -f 2 -e 0.01 "$work/spool" >/dev/null
printf 'not gzip\n' >"$work/spool/zz-corrupt.tsv.gz"
a=127.0.0.1:$port
set +e
valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
    --child-silent-after-fork=no --log-file="$work/vg.%p" \
    "$memc" --oneshot --config /dev/null --pattern "$work/spool/*.tsv.gz" \
    --idfa "$a" --gaid "$a" --adid "$a" --dvid "$a" 2>"$work/log"
rc=$?
set -e
# with --quiet valgrind writes only what it finds: every log must be empty
bad=0
for f in "$work"/vg.*; do [ -s "$f" ] && { cat "$f"; bad=1; }; done
# 1 is expected (the corrupt file failed); 99 is valgrind's own verdict
if [ $rc -ne 1 ] || [ $bad -ne 0 ] || grep -q "exited with status [^0]" "$work/log"; then
    echo "valgrind reported problems (exit $rc)"
    cat "$work/log"
    exit 1
fi
echo "$(ls "$work"/vg.* | wc -l) processes checked, 0 errors, 0 leaks"
echo "1 passed, 0 failed"
