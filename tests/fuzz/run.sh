#!/usr/bin/env bash
# run.sh FUZZER SEED_DIR SECONDS — a bounded libFuzzer run for CI: new inputs
# go to a scratch corpus (the committed seeds are only read), crashes are
# reported and fail the run.  A crash found here is added to SEED_DIR as a
# regression input, so every later run replays it first.
set -euo pipefail
fuzzer=$1 seeds=$2 secs=$3
work=$(mktemp -d /tmp/memc-fuzz-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$fuzzer" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/" \
    "$work" "$seeds" 2>&1 | tail -20
