#!/usr/bin/env bash
# Run every test suite from a clean checkout: installs what is missing, builds twice
# (plain with -Werror for all suites incl. the QEMU vm suite and, after it, the system suite
# (Debian packages in a systemd guest), and ASan+UBSan for the unit, bus and stress suites),
# and fails on the first failing suite. The stress suite (under a minute each way) runs in
# both builds: paddd under ASan meets its 2,000 clients and restarts too; the figures to
# quote (latency, ops/s, peak RSS) are the plain build's.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --vm
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
meson test -C build-ci --suite unit --suite bus --suite stress --suite vm --suite system --print-errorlogs

# One closing line over both runs, for whoever reads the log.
python3 - build-ci-san/meson-logs/testlog.json build-ci/meson-logs/testlog.json <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)["result"]
        key = "OK" if r == "OK" else "SKIP" if r == "SKIP" else "FAIL"
        counts[key] += 1
print(f"tests: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
