# common.sh — sourced by e2e.sh and deb.sh: the throw-away systemd sandbox
# (sandbox.sh) under a per-run name, a command runner inside it, and a
# failure path that shows the unit's journal.  Needs root: exits 77
# (ctest's "skipped") otherwise.
#
#   sandbox_setup NAME     sets SB, X(), fail(); STAGE_DIRS are removed at exit
[ "$(id -u)" -eq 0 ] || { echo "needs root: skipped"; exit 77; }

sandbox_setup() {
    export SYSD_CT_NAME=$1-$$
    export SYSD_CT_STATE=/tmp/$1-$$
    SB="bash $(dirname "${BASH_SOURCE[0]}")/sandbox.sh"
    STAGE_DIRS=()
    trap '$SB down >/dev/null 2>&1 || true; rm -rf "$SYSD_CT_STATE" "${STAGE_DIRS[@]}"' EXIT
}

X() { $SB exec "$@"; }
fail() { echo "FAIL: $*"; X journalctl -u memc-load --no-pager | tail -40 || true; exit 1; }
