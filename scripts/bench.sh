#!/usr/bin/env bash
# Run the benchmarks side by side and print their tables (needs root for hugetlb).
# Usage: scripts/bench.sh [broker|jobs|memory|populate|qemu]...   (default: all; memory = hugetlb
#        and pmem, populate = pad_mem_populate, qemu = a hugetlbfs guest's QEMU start to QMP,
#        with and without a padctl prefill)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}

scripts/install-deps.sh
[[ -d $BUILD ]] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" >/dev/null
export PADDD_BIN=$PWD/$BUILD/daemon/paddd PADCTL_BIN=$PWD/$BUILD/tools/padctl

which=("$@")
[[ ${#which[@]} -eq 0 ]] && which=(broker jobs memory populate qemu)
for b in "${which[@]}"; do
        echo "=== $b"
        case $b in
        broker)  "$BUILD/bench/bench-broker" ;;
        jobs)    "$BUILD/bench/bench-jobs" ;;
        memory)  bench/run-hugetlb.sh "$BUILD" ;;
        populate) bench/run-populate.sh "$BUILD" ;;
        qemu)    bench/run-qemu-prealloc.sh "$BUILD" ;;
        *) echo "bench: unknown benchmark '$b' (broker, jobs, memory, populate, qemu)" >&2; exit 2 ;;
        esac
done
