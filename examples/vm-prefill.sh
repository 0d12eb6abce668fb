#!/usr/bin/env bash
# vm-prefill.sh: a VM manager that prefills its guest's RAM with the library: `padctl
# hugetlb-fallocate FILE SIZE` populates the hugetlbfs file in parallel with the helpers
# paddd lends (libpadclient's pad_hugetlb_fallocate; without a broker it still works on one
# thread), then QEMU starts on that file with prealloc=on: its own preallocation finds every
# page already there and takes none from the pool, so QEMU is ready at once, and a guest
# that needs more pages than the pool has fails at the prefill, before QEMU runs. Prints the
# pool's free huge pages before, after the prefill and with QEMU up.
#
# usage: vm-prefill.sh FILE SIZE
#   FILE  the guest RAM's file on a hugetlbfs mount of 2 MiB pages
#   SIZE  its size (256M, 4G)
# environment: BUS_ADDRESS (padctl's --bus; default the system bus), PADCTL, QEMU
set -euo pipefail

FILE=${1:?usage: $0 FILE SIZE}
SIZE=${2:?usage: $0 FILE SIZE}
PADCTL=${PADCTL:-padctl}
# shellcheck source=examples/qmp.sh
source "$(dirname "$0")/qmp.sh"
POOL=/sys/kernel/mm/hugepages/hugepages-2048kB
log() { echo "vm-prefill: $*"; }
# Free and not promised to a mapping yet: what a new file may still take.
free_pages() { echo $(( $(cat "$POOL/free_hugepages") - $(cat "$POOL/resv_hugepages") )); }

[[ $(stat -f -c %T "$(dirname "$FILE")") == hugetlbfs ]] ||
        { log "$(dirname "$FILE") is not a hugetlbfs mount"; exit 1; }
QEMU_PID=''
trap '[[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null' EXIT

before=$(free_pages)
"$PADCTL" ${BUS_ADDRESS:+--bus "$BUS_ADDRESS"} hugetlb-fallocate "$FILE" "$SIZE"
prefilled=$(free_pages)

qmp_start -object "memory-backend-file,id=ram0,mem-path=$FILE,size=$SIZE,share=on,prealloc=on"
qmp_wait_ready
up=$(free_pages)
log "QEMU ready on $FILE"
log "free huge pages: before $before, after the prefill $prefilled, with QEMU up $up"
qmp_quit
log "QEMU quit"
