#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine: install what is missing, build, start paddd on
# a private bus with its embedded default config, reserve huge pages and mount hugetlbfs,
# then allocate SIZE (default 1G) of a hugetlbfs file in parallel with a grant from paddd,
# beside the kernel's single-threaded fallocate(2) of the same size. Leaves the machine as
# it found it (huge page pool, mounts, processes).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1G}
BUILD=${BUILD:-build-demo}

scripts/install-deps.sh
[[ -d $BUILD ]] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" daemon/paddd tools/padctl >/dev/null

if [[ $(id -u) -ne 0 ]]; then
        echo "demo: reserving huge pages (/proc/sys/vm/nr_hugepages) and mounting hugetlbfs need root:" >&2
        echo "      sudo $0" >&2
        exit 1
fi
if [[ ! -e /sys/kernel/mm/hugepages/hugepages-2048kB ]]; then
        echo "demo: this kernel has no 2 MiB huge pages (CONFIG_HUGETLBFS)" >&2
        exit 1
fi

WORKDIR=$(mktemp -d /tmp/paddd-demo.XXXXXX)
NR=/proc/sys/vm/nr_hugepages
ORIG_PAGES=$(cat $NR)
cleanup() {
        rm -f "$WORKDIR"/hugetlb/* 2>/dev/null || true
        mountpoint -q "$WORKDIR/hugetlb" && umount "$WORKDIR/hugetlb"
        echo "$ORIG_PAGES" >$NR
        private_bus_stop
        rm -rf "$WORKDIR"
}
# shellcheck source=scripts/private-bus.sh
source scripts/private-bus.sh
trap cleanup EXIT
trap 'exit 130' INT TERM

private_bus_start
echo "== paddd is up on a private bus ($BUS_ADDRESS), embedded default config"
"$BUILD/tools/padctl" --bus "$BUS_ADDRESS" status

bytes=$(numfmt --from=iec "$SIZE")
pages=$(( 2 * bytes / (2 * 1024 * 1024) ))   # the parallel file and the kernel's twin
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
if (( free < pages )); then
        echo $(( ORIG_PAGES + pages - free )) >$NR
        free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
        if (( free < pages )); then
                echo "demo: could reserve only $free of $pages huge pages of 2 MiB (memory too fragmented or too small)" >&2
                exit 1
        fi
fi
mkdir "$WORKDIR/hugetlb"
mount -t hugetlbfs -o pagesize=2M none "$WORKDIR/hugetlb"
echo "== $pages huge pages of 2 MiB reserved, hugetlbfs mounted at $WORKDIR/hugetlb"
# On a virtual machine the first touch of fresh memory is slow (the host faults it in):
# touch the pool once so both runs below measure the guest kernel, not the host.
fallocate -l $(( pages * 2 * 1024 * 1024 )) "$WORKDIR/hugetlb/warm-up" && rm "$WORKDIR/hugetlb/warm-up"
echo "== padctl hugetlb-fallocate $SIZE (all helpers paddd grants) vs the kernel's fallocate(2)"
"$BUILD/tools/padctl" --bus "$BUS_ADDRESS" hugetlb-fallocate "$WORKDIR/hugetlb/demo" "$SIZE" --compare-kernel
echo "== after the job, every slot is back:"
"$BUILD/tools/padctl" --bus "$BUS_ADDRESS" status
