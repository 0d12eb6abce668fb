#!/usr/bin/env bash
# run-qemu-prealloc.sh: how long a hugetlbfs guest of SIZE_GIB takes from QEMU's start to
# QMP answering (QEMU greets only once its RAM is preallocated, examples/qmp.sh), three ways,
# ROUNDS rounds interleaved, each on a fresh file, medians:
#   qemu-1    QEMU alone, prealloc=on, prealloc-threads=1
#   qemu-N    QEMU alone, prealloc=on, prealloc-threads=N (online CPUs)
#   prefill   `padctl hugetlb-fallocate` (helpers from a private paddd with its default
#             config), then QEMU with prealloc=on on the prefilled file (examples/vm-prefill.sh)
# Takes the huge pages and mounts the hugetlbfs as the examples suite does (its lib.sh) and
# gives them back at exit. Needs root; skipped (77) with the reason without a pool or QEMU.
# usage: bench/run-qemu-prealloc.sh BUILD_DIR [SIZE_GIB (4)] [ROUNDS (3)]
set -euo pipefail
SIZE_GIB=${2:-4}
ROUNDS=${3:-3}
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/../tests/examples/lib.sh" "${1:?usage: $0 BUILD_DIR [SIZE_GIB] [ROUNDS]}"
# shellcheck source=examples/qmp.sh
source "$EXAMPLES/qmp.sh"
N=$(nproc)
PAGES=$(( SIZE_GIB * 512 ))
FILE=$WORKDIR/huge/guest

pool_take $(( PAGES + 16 )) || skip "$POOL_WHY"
private_bus_start
# Fresh guest memory is slow on its first touch (the host faults it in): touch the pool
# twice, untimed, so that every method meets the same warm pages.
for _ in 1 2; do fallocate -l "${SIZE_GIB}G" "$FILE"; rm "$FILE"; done

now() { date +%s.%N; }
# qemu_ready THREADS: QEMU on $FILE with prealloc=on; prints the seconds to QMP's greeting.
qemu_ready() {
        local t; t=$(now)
        qmp_start -object "memory-backend-file,id=ram0,mem-path=$FILE,size=${SIZE_GIB}G,share=on,prealloc=on,prealloc-threads=$1"
        qmp_wait_ready
        echo "$(now) - $t" | bc -l
        qmp_quit
}
m_qemu_1() { qemu_ready 1; }
m_qemu_n() { qemu_ready "$N"; }
m_prefill() {
        local t; t=$(now)
        "$PADCTL" --bus "$BUS_ADDRESS" --quiet hugetlb-fallocate "$FILE" "${SIZE_GIB}G" >&2
        local q; q=$(qemu_ready 1)
        echo "$q" >>"$WORKDIR/t.prefill_qemu"
        echo "$(now) - $t" | bc -l
}

METHODS="qemu_1 qemu_n prefill"
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for _ in $(seq "$ROUNDS"); do
        for m in $METHODS; do
                "m_$m" >>"$WORKDIR/t.$m"
                rm -f "$FILE"
                (( $(huge_free) >= PAGES )) || die "the pool's pages did not come back after $m"
        done
done

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
base=$(median "$WORKDIR/t.qemu_1")
echo "machine: $N CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)," \
     "$(free -g | awk '/Mem:/ { print $2 }') GiB RAM; $("$REAL_QEMU" --version | head -n1)"
echo "paddd: default config, lends $(busctl --address="$BUS_ADDRESS" get-property org.padata.Broker \
        /org/padata/Broker org.padata.Broker MaxHelpers | cut -d' ' -f2) helper(s) at most"
echo "QEMU start to QMP answering, ${SIZE_GIB} GiB hugetlbfs guest (2 MiB pages), $ROUNDS rounds interleaved, median"
echo "load average before the rounds: $LOAD"
printf '%-52s %9s %10s\n' way seconds "vs qemu-1"
row() { printf '%-52s %9.3f %9.2fx\n' "$1" "$2" "$(echo "$base / $2" | bc -l)"; }
row "QEMU alone, prealloc-threads=1" "$base"
row "QEMU alone, prealloc-threads=$N" "$(median "$WORKDIR/t.qemu_n")"
row "padctl hugetlb-fallocate, then QEMU (prealloc=on)" "$(median "$WORKDIR/t.prefill")"
row "  of which QEMU on the prefilled file" "$(median "$WORKDIR/t.prefill_qemu")"
echo "load average after the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"
