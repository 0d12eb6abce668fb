#!/usr/bin/env bash
# test-vm-prefill.sh: runs examples/vm-prefill.sh against paddd on a private bus with a
# 256 MiB hugetlbfs guest and checks that the prefill took exactly the guest's pages from
# the pool, that QEMU then came up with prealloc=on without taking one more, and that every
# page of the file is there. Skips (77) when the huge page pool cannot be had.
# usage: test-vm-prefill.sh BUILD_DIR
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

SIZE_MIB=256
pages=$(( SIZE_MIB / 2 ))
pool_take $(( pages + 16 )) || skip "$POOL_WHY"
private_bus_start
out=$WORKDIR/prefill.out
BUS_ADDRESS=$BUS_ADDRESS PADCTL=$PADCTL "$EXAMPLES/vm-prefill.sh" "$HUGE_MNT/guest" ${SIZE_MIB}M \
        >"$out" 2>&1 || { cat "$out" >&2; die "vm-prefill.sh failed"; }
sed "s/^/  /" "$out" >&2

grep -q '^vm-prefill: QEMU ready' "$out" || die "QEMU did not come up"
read -r before prefilled up < <(sed -n 's/.*before \([0-9]*\), after the prefill \([0-9]*\), with QEMU up \([0-9]*\)$/\1 \2 \3/p' "$out")
[[ -n ${up:-} ]] || die "no pool counts in the output"
(( before - prefilled == pages )) || die "the prefill took $(( before - prefilled )) pages, not $pages"
(( up == prefilled )) || die "QEMU's preallocation took $(( prefilled - up )) more pages"
check_populated "$HUGE_MNT/guest" $(( SIZE_MIB << 20 ))
log "prefill took $pages pages, QEMU took none more and came up"
