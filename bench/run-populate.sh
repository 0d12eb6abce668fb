#!/bin/bash
# run-populate.sh: the side-by-side benchmark of pad_mem_populate(). Reserves the huge pages
# the MAP_HUGETLB rows need (adding and removing only its own, under the pool lock the
# hugetlb tests take), starts a private dbus-daemon and paddd from the build tree for the
# broker column (scripts/private-bus.sh), and restores everything on exit. bench-populate
# then populates fresh anonymous mappings of 4 KiB pages, transparent huge pages and
# MAP_HUGETLB pages with one thread (madvise MADV_POPULATE_WRITE), a plain loop of N threads
# on disjoint ranges, and the library with N threads without and with the broker, rounds
# interleaved, medians (and every round below the table), after one untimed pass over the
# largest size. N = nproc. Goal: the library at least 0.95x the plain loop.
# usage: bench/run-populate.sh BUILD_DIR [SIZES (1G,4G)] [ROUNDS (5)]
set -euo pipefail

BUILD=$(realpath "${1:?usage: $0 BUILD_DIR [SIZES] [ROUNDS]}")
SIZES=${2:-1G,4G}
ROUNDS=${3:-5}
N=$(nproc)
BENCH="$BUILD/bench/bench-populate"
POOL=/sys/kernel/mm/hugepages/hugepages-2048kB

[ -x "$BENCH" ] || { echo "run-populate.sh: build $BENCH first"; exit 1; }
MAX_BYTES=0
for s in ${SIZES//,/ }; do
        b=$(numfmt --from=iec "$s")
        [ "$b" -gt "$MAX_BYTES" ] && MAX_BYTES=$b
done
PAGES=$((MAX_BYTES / (2 << 20)))

WORKDIR=$(mktemp -d /tmp/bench-populate.XXXXXX)
ADDED=0
# shellcheck source=../scripts/private-bus.sh
. "$(dirname "$0")/../scripts/private-bus.sh"
cleanup() {
        set +e
        private_bus_stop
        if [ "$ADDED" -gt 0 ]; then
                local nr; nr=$(cat "$POOL/nr_hugepages")
                echo $((nr > ADDED ? nr - ADDED : 0)) > "$POOL/nr_hugepages"
        fi
        rm -rf "$WORKDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KINDS="4k thp"
if [ "$(id -u)" = 0 ] && [ -w "$POOL/nr_hugepages" ]; then
        exec 9> /tmp/paddd-hugetlb-pool.lock
        flock 9
        NR0=$(cat "$POOL/nr_hugepages")
        echo $((NR0 + PAGES)) > "$POOL/nr_hugepages"
        ADDED=$(($(cat "$POOL/nr_hugepages") - NR0))
        if [ "$(cat "$POOL/free_hugepages")" -ge "$PAGES" ]; then
                KINDS="$KINDS hugetlb"
        else
                echo "note: the pool gave only $(cat "$POOL/free_hugepages") free 2 MiB pages: no hugetlb rows"
        fi
else
        echo "note: not root: no hugetlb rows"
fi

if command -v dbus-daemon >/dev/null && BUILD=$BUILD private_bus_start; then
        export PADCLIENT_BUS=$BUS_ADDRESS
else
        echo "note: no private paddd: no broker column"
fi

echo "machine: $N CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)," \
     "$(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "MADV_POPULATE_WRITE of fresh anonymous mappings, N=$N threads, $ROUNDS rounds interleaved, median seconds and GiB/s;"
echo "lib: pad_mem_populate, PAD_JOB_NO_BROKER with $((N - 1)) fallback helper(s); broker: helpers lent by paddd (default quota)"
# Fresh guest memory is slow on first touch: populate the largest size with each method, untimed.
"$BENCH" "$N" 1 "$((MAX_BYTES >> 20))M" 4k > /dev/null 2>&1
# shellcheck disable=SC2086
"$BENCH" "$N" "$ROUNDS" "$SIZES" $KINDS 2> "$WORKDIR/rounds" | tee "$WORKDIR/table"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# The first ratio of a row (a field ending in x) is the library's median against the loop's.
awk 'NR > 1 { for (i = 4; i <= NF; i++) if ($i ~ /x$/) { r = $i; break }
              sub(/x$/, "", r); if (r + 0 < 0.95) miss = miss " " $1 " " $2 $3 }
     END { print (miss == "" ? "goal met: the library >= 0.95x the plain loop on every row (medians)" : "goal missed on:" miss) }' "$WORKDIR/table"
echo "every round, seconds per method (round 1 first; the order of methods turns each round):"
sed 's/^/  /' "$WORKDIR/rounds"
