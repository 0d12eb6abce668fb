#!/usr/bin/env bash
# Run the bus suite (or the suites given) with every paddd the tests start under valgrind's
# memcheck, through the fixture's PADDD_WRAPPER: builds a plain tree (build-valgrind, or
# $PADDD_VALGRIND_BUILD), keeps one valgrind log per paddd in its meson-logs/valgrind/, and
# ends with the time taken and each log that reports an error or a leak, with its stacks.
# Fails when a test fails or valgrind reports anything; exits 77 without valgrind.
# Usage: scripts/valgrind-bus.sh [suite...] [-- meson test options]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
        echo "valgrind-bus: skipped: valgrind is not installed (apt-get install valgrind)"
        exit 77
fi
suites=()
while [[ $# -gt 0 && $1 != -- ]]; do suites+=(--suite "$1"); shift; done
[[ ${1:-} == -- ]] && shift
[[ ${#suites[@]} -gt 0 ]] || suites=(--suite bus)

dir=${PADDD_VALGRIND_BUILD:-build-valgrind}
meson setup $([[ -d $dir ]] && echo --reconfigure) "$dir" -Dwerror=true >/dev/null
ninja -C "$dir" >/dev/null

logs=$PWD/$dir/meson-logs/valgrind
rm -rf "$logs"
mkdir -p "$logs"
vg=(valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --num-callers=30 --log-file="$logs/paddd.%p.log")
export PADDD_WRAPPER="${vg[*]}"

start=$(date +%s)
rc=0
meson test -C "$dir" --no-rebuild "${suites[@]}" --timeout-multiplier 4 --print-errorlogs "$@" || rc=$?
took=$(($(date +%s) - start))

bad=0
for f in "$logs"/paddd.*.log; do
        [[ -e $f ]] || continue
        if grep -qE 'ERROR SUMMARY: [1-9]' "$f"; then
                bad=$((bad + 1))
                echo "---- $f ----"
                grep -vE '^==[0-9]+== *$' "$f" | sed -n '/Command:/,$p' | head -n 120
        fi
done
n=$(find "$logs" -name 'paddd.*.log' | wc -l)
ended=$(grep -l 'ERROR SUMMARY' "$logs"/paddd.*.log 2>/dev/null | wc -l)
unhandled=$(grep -hoE 'unhandled amd64-linux syscall: [0-9]+' "$logs"/paddd.*.log 2>/dev/null | sort | uniq -c || true)
echo "valgrind-bus: ${took}s, $n paddd runs under valgrind ($((n - ended)) killed before a summary)," \
     "$bad with errors or leaks (logs: $logs)"
if [[ -n $unhandled ]]; then
        echo "valgrind-bus: syscalls valgrind does not know (paddd got ENOSYS), times seen:"
        echo "$unhandled"
fi
[[ $rc -eq 0 && $bad -eq 0 ]]
