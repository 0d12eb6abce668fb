# suite-lib.sh: owns the messages and exit codes the QEMU suites' run.sh scripts share.
# Source it after setting SUITE_NAME: log (to stderr), die (exit 1), skip (exit 77, meson's
# "skipped", always with the reason).
# shellcheck shell=bash

log() { echo "$SUITE_NAME: $*" >&2; }
die() { log "$*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }
