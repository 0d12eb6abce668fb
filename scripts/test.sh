#!/usr/bin/env bash
# Run every test suite from a clean checkout: installs what is missing, builds twice
# (plain with -Werror for all suites incl. the examples suite (examples/ with real QEMU), the
# QEMU vm suite and, after it, the system suite (Debian packages in a systemd guest), and
# ASan+UBSan for the unit, bus and stress suites),
# then the bus suite with paddd under valgrind, then the libFuzzer targets with clang for
# about a minute (the fuzz suite, skipped with its reason when clang or its fuzzer runtime
# is missing), and fails on the first failing suite.
# The stress suite (under a minute each way) runs in both builds: paddd under ASan meets its
# 2,000 clients and restarts too; the figures to quote (latency, ops/s, peak RSS) are the
# plain build's.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --vm --fuzz
# Without them the system suite skips (exit 77) and says why.
scripts/install-deps.sh --system || echo "test.sh: the system suite's tools cannot be installed"

setup() { # dir, extra meson options...
        local dir=$1; shift
        if [[ -d $dir ]]; then
                meson setup --reconfigure "$dir" -Dwerror=true "$@" >/dev/null
        else
                meson setup "$dir" -Dwerror=true "$@" >/dev/null
        fi
        ninja -C "$dir"
}

setup build-ci
setup build-ci-san -Db_sanitize=address,undefined -Db_lundef=false

export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=1
meson test -C build-ci-san --suite unit --suite bus --suite stress --print-errorlogs
meson test -C build-ci --suite unit --suite bus --suite stress --suite examples --suite vm \
        --suite system --print-errorlogs

# The bus suite again with every paddd under valgrind's memcheck (errors and leaks fail it).
PADDD_VALGRIND_BUILD=build-ci-valgrind scripts/valgrind-bus.sh
logs=(build-ci-san/meson-logs/testlog.json build-ci/meson-logs/testlog.json
      build-ci-valgrind/meson-logs/testlog.json)

# The fuzz tree: only its targets are built, with clang; each runs 20 s (fuzz/meson.build).
if command -v clang >/dev/null; then
        CC=clang meson setup $([[ -d build-ci-fuzz ]] && echo --reconfigure) build-ci-fuzz \
                -Dwerror=true -Dfuzz=true >/dev/null
        fuzz_targets=$(ninja -C build-ci-fuzz -t targets all | sed -n 's|^\(fuzz/fuzz-[a-z]*\): .*|\1|p')
        [[ -z $fuzz_targets ]] || ninja -C build-ci-fuzz $fuzz_targets
        meson test -C build-ci-fuzz --no-rebuild --suite fuzz --print-errorlogs
        logs+=(build-ci-fuzz/meson-logs/testlog.json)
else
        echo "fuzz: skipped: clang is not installed (scripts/install-deps.sh --fuzz, as root)"
fi

# One closing line over all runs, for whoever reads the log.
python3 - "${logs[@]}" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)["result"]
        key = "OK" if r == "OK" else "SKIP" if r == "SKIP" else "FAIL"
        counts[key] += 1
print(f"tests: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
