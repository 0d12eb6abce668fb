#!/usr/bin/env bash
# test-vm-manager.sh: runs both VM managers over D-Bus (examples/vm-manager-busctl.sh and
# examples/vm-manager.c) against paddd on a private bus, each on a 256 MiB guest RAM file
# (hugetlbfs when the huge page pool can be had, else tmpfs), and checks: the lease is
# listed with its tag by `padctl status` when QEMU starts (recorded by a stand-in QEMU) and
# by the example's own ListLeases once QEMU is ready; QEMU's prealloc-threads (on its
# command line and as QEMU answers qom-get) is granted + 1; the thread-context runs on node
# 0's CPUs (qom-get cpu-affinity); every page of the file is there
# afterwards (and, on hugetlbfs, the pool's free count fell by exactly its pages); the lease
# is gone afterwards.
# usage: test-vm-manager.sh BUILD_DIR
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

SIZE_MIB=256
if pool_take $(( 2 * SIZE_MIB / 2 )); then
        dir=$HUGE_MNT kind=hugetlbfs
else
        log "$POOL_WHY: the guest RAM goes to tmpfs"
        dir=$WORKDIR kind=tmpfs
fi
private_bus_start
max=$(busctl --address="$BUS_ADDRESS" get-property org.padata.Broker /org/padata/Broker \
        org.padata.Broker MaxHelpers | cut -d' ' -f2)
qemu=$(make_recording_qemu)
# Node 0's CPUs as QEMU lists them ("0-1,4" is "0, 1, 4"); every node of Linux has a node0.
node0_cpus=$(tr ',' '\n' </sys/devices/system/node/node0/cpulist |
        awk -F- '{ for (c = $1; c <= ($2 == "" ? $1 : $2); c++) printf "%s%d", n++ ? ", " : "", c }')

run_example() { # name file tag
        case $1 in
        busctl) BUS_ADDRESS=$BUS_ADDRESS PADCTL=$PADCTL QEMU=$qemu HELPERS=3 TAG=$3 \
                "$EXAMPLES/vm-manager-busctl.sh" "$2" ${SIZE_MIB}M 0 ;;
        c)      "$VM_MANAGER" --bus "$BUS_ADDRESS" --qemu "$qemu" --helpers 3 --tag "$3" \
                "$2" ${SIZE_MIB}M ;;
        esac
}

for example in busctl c; do
        file=$dir/guest-$example tag=examples-$example-$$
        out=$WORKDIR/$example.out
        rm -f "$WORKDIR/qemu.record"
        [[ $kind == tmpfs ]] || free_before=$(huge_free)
        start=$(date +%s.%N)
        run_example $example "$file" "$tag" >"$out" 2>&1 || { cat "$out" >&2; die "$example: failed"; }
        log "$example ($kind): $(printf '%.2f' "$(echo "$(date +%s.%N) - $start" | bc -l)") s"
        sed "s/^/  /" "$out" >&2

        granted=$(sed -n 's/.*: granted \([0-9]*\) of 3 on node .*/\1/p' "$out")
        [[ -n $granted ]] || die "$example: no grant in its output"
        (( max == 0 || granted >= 1 )) || die "$example: granted 0 of 3 by a broker lending $max"
        grep -q "prealloc-threads $(( granted + 1 ))\$" "$out" ||
                die "$example: QEMU did not answer prealloc-threads $(( granted + 1 ))"
        grep -q "^argv: .*,prealloc-threads=$(( granted + 1 )),prealloc-context=tc0" "$WORKDIR/qemu.record" ||
                die "$example: QEMU was not started with prealloc-threads=$(( granted + 1 ))"
        grep -q "^argv: .*thread-context,id=tc0,node-affinity=0 " "$WORKDIR/qemu.record" ||
                die "$example: QEMU's thread-context is not on the lease's node 0"
        grep -q "thread-context tc0 on CPUs \[$node0_cpus\]\$" "$out" ||
                die "$example: QEMU's thread-context is not on node 0's CPUs [$node0_cpus]"
        grep -Eq "^ +[0-9]+ .* $granted +0:$granted +.* $tag\$" "$WORKDIR/qemu.record" ||
                die "$example: padctl status did not list the lease tagged $tag when QEMU started"
        grep -q "\"$tag\"\|tag $tag\$" "$out" || die "$example: its ListLeases did not show $tag"
        (( $(grep -n 'QEMU ready' "$out" | cut -d: -f1) < $(grep -n 'released' "$out" | cut -d: -f1) )) ||
                die "$example: released the lease before QEMU was ready"

        check_populated "$file" $(( SIZE_MIB << 20 ))
        if [[ $kind == hugetlbfs ]]; then
                fell=$(( free_before - $(huge_free) ))
                (( fell == SIZE_MIB / 2 )) || die "$example: the pool's free count fell by $fell, not $(( SIZE_MIB / 2 ))"
        fi
        leases=$(busctl --address="$BUS_ADDRESS" call org.padata.Broker /org/padata/Broker org.padata.Broker ListLeases)
        [[ $leases == 'a(ouuuss) 0' ]] || die "$example: leases left after it: $leases"
        rm -f "$file"
done
log "both examples: lease listed while QEMU preallocated, prealloc-threads = granted + 1, $kind file populated, lease gone"
