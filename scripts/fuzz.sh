#!/usr/bin/env bash
# Run the libFuzzer targets of fuzz/ longer than the test suite does: builds them with clang
# in build-fuzz (only the targets), runs each in turn for SECONDS (default 300) from its
# seed corpus plus what earlier runs found, and says where any crash went. Inputs worth
# keeping can be copied from build-fuzz/fuzz/<target>.work/corpus into fuzz/corpus/.
# Usage: scripts/fuzz.sh [seconds] [target...]   (targets: config state budget)
# PADDD_FUZZ_BUILD names another build folder than build-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(config state budget)
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -lt 1 ]]; then
        echo "usage: scripts/fuzz.sh [seconds] [config|state|budget...]" >&2
        exit 2
fi
if ! command -v clang >/dev/null; then
        echo "fuzz: clang is not installed (scripts/install-deps.sh --fuzz, as root)" >&2
        exit 77
fi

dir=${PADDD_FUZZ_BUILD:-build-fuzz}
CC=clang meson setup $([[ -d $dir ]] && echo --reconfigure) "$dir" -Dwerror=true -Dfuzz=true >/dev/null
built=$(ninja -C "$dir" -t targets all)
for t in "${targets[@]}"; do
        if ! grep -q "^fuzz/fuzz-$t:" <<<"$built"; then
                echo "fuzz: no target fuzz-$t (clang's fuzzer runtime missing? see $dir/meson-logs)" >&2
                exit 77
        fi
done
ninja -C "$dir" "${targets[@]/#/fuzz/fuzz-}" >/dev/null

failed=()
for t in "${targets[@]}"; do
        work=$dir/fuzz/fuzz-$t.work
        echo "== fuzz-$t for ${seconds}s (corpus: $work/corpus, crashes: $work/crashes/)"
        if fuzz/run-fuzz.sh "$dir/fuzz/fuzz-$t" "fuzz/corpus/$t" "$work" "$seconds" >"$work.log" 2>&1; then
                grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$work.log" || true
                tail -n 1 "$work.log"
        else
                failed+=("$t")
                grep -E 'invariant violated|ERROR:|runtime error|SUMMARY' "$work.log" | head -n 5 || true
                echo "fuzz-$t crashed: input in $work/crashes/, log in $work.log"
        fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
        echo "fuzz: crashes in ${failed[*]}; replay one with: $dir/fuzz/fuzz-<target> <crash file>"
        exit 1
fi
echo "fuzz: no crash in ${targets[*]}"
