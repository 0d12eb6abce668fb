#!/usr/bin/env bash
# run-fuzz.sh: runs one libFuzzer target of paddd for a bounded time, as a test of the meson
# suite "fuzz" and for scripts/fuzz.sh. It replays the seed corpus (fuzz/corpus/<name>/,
# never written to) and then fuzzes, keeping what it finds in WORKDIR/corpus and any crash
# in WORKDIR/crashes/; it fails when the target crashes, leaks, trips a sanitizer or an
# invariant check, and exits 77 when the targets could not be built.
#
# Usage: run-fuzz.sh TARGET SEED_CORPUS WORKDIR SECONDS
#        run-fuzz.sh --skip REASON
set -euo pipefail

if [[ ${1:-} == --skip ]]; then
        echo "skipped: ${2:-the fuzz targets are not built}"
        exit 77
fi
if [[ $# -ne 4 ]]; then
        echo "usage: run-fuzz.sh TARGET SEED_CORPUS WORKDIR SECONDS" >&2
        exit 2
fi
target=$1 seeds=$2 work=$3 seconds=$4
name=$(basename "$seeds")
dict=$(dirname "$seeds")/../dict/$name.dict

mkdir -p "$work/corpus" "$work/crashes"
args=(-max_total_time="$seconds" -runs=$((seconds * 2000000)) -timeout=10 -rss_limit_mb=2048
      -max_len=4096 -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 -artifact_prefix="$work/crashes/")
[[ -f $dict ]] && args+=(-dict="$dict")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
"$target" "${args[@]}" "$work/corpus" "$seeds" || rc=$?
if [[ $rc -ne 0 ]]; then
        echo "$name: failed (exit $rc); the crashing input is in $work/crashes/:" >&2
        ls -l "$work/crashes/" >&2
        echo "replay: $target $work/crashes/<file>" >&2
        exit 1
fi
echo "$name: no crash in ${seconds}s; corpus $(find "$work/corpus" "$seeds" -type f | wc -l) inputs"
