# shellcheck shell=bash
# lib.sh: what the tests of the examples suite share. Source it with the build dir as $1:
# sets SRC, BUILD, PADCTL, VM_MANAGER, EXAMPLES and WORKDIR (removed at exit), skips (77)
# without QEMU or dbus-daemon, and has the private bus (scripts/private-bus.sh), the huge
# page pool (the same lock and add-only-our-own-pages rule as tests/hugetlb-pool.h) and the
# checks of a guest RAM file.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(realpath "${1:?usage: $0 BUILD_DIR}")
SUITE_NAME=$(basename "$0" .sh)
# shellcheck source=tests/suite-lib.sh
source "$SRC/tests/suite-lib.sh"
# shellcheck source=scripts/private-bus.sh
source "$SRC/scripts/private-bus.sh"
# For the tests that source this file:
# shellcheck disable=SC2034
PADCTL=$BUILD/tools/padctl VM_MANAGER=$BUILD/examples/vm-manager EXAMPLES=$SRC/examples
REAL_QEMU=$(command -v qemu-system-x86_64) || skip "qemu-system-x86_64 is not installed"
command -v dbus-daemon >/dev/null || skip "dbus-daemon is not installed"
command -v busctl >/dev/null || skip "busctl is not installed"
export QEMU=$REAL_QEMU

HUGE_SYS=/sys/kernel/mm/hugepages/hugepages-2048kB
HUGE_MNT='' POOL_ADDED=0
# Guest RAM files go to tmpfs (/dev/shm) or to the hugetlbfs mounted by pool_take.
WORKDIR=$(mktemp -d /dev/shm/paddd-examples.XXXXXX)
examples_cleanup() {
        set +e
        private_bus_stop
        if [[ -n $HUGE_MNT ]]; then
                rm -f "$HUGE_MNT"/*
                umount "$HUGE_MNT"
        fi
        if (( POOL_ADDED > 0 )); then
                local nr; nr=$(cat "$HUGE_SYS/nr_hugepages")
                echo $(( nr > POOL_ADDED ? nr - POOL_ADDED : 0 )) >"$HUGE_SYS/nr_hugepages"
        fi
        rm -rf "$WORKDIR"
}
trap examples_cleanup EXIT
trap 'exit 130' INT TERM

huge_free() { echo $(( $(cat "$HUGE_SYS/free_hugepages") - $(cat "$HUGE_SYS/resv_hugepages") )); }

# pool_take PAGES: adds PAGES huge pages of 2 MiB to the pool (taken back at exit) and mounts
# a hugetlbfs at $HUGE_MNT; fails with the reason in POOL_WHY.
pool_take() {
        POOL_WHY=''
        if (( $(id -u) != 0 )); then
                POOL_WHY="needs root (reserves huge pages, mounts hugetlbfs)"
        elif [[ ! -w $HUGE_SYS/nr_hugepages ]]; then
                POOL_WHY="this kernel has no 2 MiB huge pages"
        else
                exec {POOL_LOCK}>/tmp/paddd-hugetlb-pool.lock
                flock "$POOL_LOCK"
                local nr; nr=$(cat "$HUGE_SYS/nr_hugepages")
                echo $(( nr + $1 )) >"$HUGE_SYS/nr_hugepages" || true
                POOL_ADDED=$(( $(cat "$HUGE_SYS/nr_hugepages") - nr ))
                (( $(huge_free) >= $1 )) || POOL_WHY="could reserve only $(huge_free) of $1 huge pages"
        fi
        [[ -z $POOL_WHY ]] || return 1
        mkdir "$WORKDIR/huge"
        mount -t hugetlbfs -o pagesize=2M none "$WORKDIR/huge"
        HUGE_MNT=$WORKDIR/huge
}

# check_populated FILE BYTES: every page of FILE is there (tmpfs and hugetlbfs both count
# a file's pages in st_blocks).
check_populated() {
        local blocks; blocks=$(stat -c %b "$1")
        (( blocks * 512 == $2 )) || die "$1: $(( blocks * 512 )) of $2 bytes populated"
}

# A stand-in for qemu-system-x86_64 that records, before it becomes QEMU, its command line
# and `padctl status` (so what the broker shows while QEMU starts and preallocates) into
# $WORKDIR/qemu.record.
make_recording_qemu() {
        cat >"$WORKDIR/qemu" <<SH
#!/bin/sh
# The examples suite's QEMU: records its arguments and the broker's leases, then is QEMU.
{ echo "argv: \$*"; "$PADCTL" --bus "$BUS_ADDRESS" status; } >>"$WORKDIR/qemu.record" 2>&1
exec "$REAL_QEMU" "\$@"
SH
        chmod +x "$WORKDIR/qemu"
        echo "$WORKDIR/qemu"
}
