#!/usr/bin/env bash
# test-many-vms.sh: runs examples/many-vms.sh, 8 VM managers at once each asking for 16
# helpers (at least 1, with a wait) and preallocating a 64 MiB tmpfs guest with real QEMU,
# against paddd on a private bus whose config caps the machine at 4 helpers. Checks that
# all 8 finished, each with 1 to 4 helpers, that the sum of the grants held never passed 4
# at any moment (from the clients' timelines, and from InUse sampled meanwhile), and that
# some guest had to wait for its helpers.
# usage: test-many-vms.sh BUILD_DIR
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

CAP=4 VMS=8
PADDD_CONFIG=$WORKDIR/paddd.conf
printf '[Broker]\nMaxHelpers=%d\nMaxHelpersPerNode=%d\n' $CAP $CAP >"$PADDD_CONFIG"
private_bus_start
mkdir "$WORKDIR/vms"

# InUse as paddd reports it, sampled until the example ends.
sample() {
        while [[ ! -e $WORKDIR/done ]]; do
                busctl --address="$BUS_ADDRESS" get-property org.padata.Broker /org/padata/Broker \
                        org.padata.Broker InUse | cut -d' ' -f2
                sleep 0.05
        done >"$WORKDIR/in-use"
}
sample &
sampler=$!
start=$(date +%s.%N)
BUS_ADDRESS=$BUS_ADDRESS VM_MANAGER=$VM_MANAGER "$EXAMPLES/many-vms.sh" "$WORKDIR/vms" $VMS 16 64M \
        >"$WORKDIR/out" 2>&1 || { touch "$WORKDIR/done"; cat "$WORKDIR/out" >&2; die "many-vms.sh failed"; }
touch "$WORKDIR/done"
wait "$sampler"
log "$VMS guests in $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc -l)") s"
sed 's/^/  /' "$WORKDIR/out" >&2

timeline=$WORKDIR/vms/timeline
(( $(wc -l <"$timeline") == VMS )) || die "$(wc -l <"$timeline") of $VMS guests finished"
awk -v cap=$CAP '$2 < 1 || $2 > cap { exit 1 }' "$timeline" || die "a grant outside 1..$CAP"
peak=$(awk '{ print $3, 1, $2; print $4, 0, -$2 }' "$timeline" | sort -k1,1n -k2,2n |
        awk '{ held += $3; if (held > peak) peak = held } END { print peak + 0 }')
(( peak >= 1 && peak <= CAP )) || die "the guests held $peak helpers at once (cap $CAP)"
in_use_max=$(sort -n "$WORKDIR/in-use" | tail -n1)
(( in_use_max <= CAP )) || die "paddd's InUse reached $in_use_max (cap $CAP)"
awk '$5 >= 100000 { found = 1 } END { exit !found }' "$timeline" || die "no guest waited 0.1 s for its helpers"
log "all $VMS done, each with 1..$CAP helpers, at most $peak held at once (InUse at most ${in_use_max:-0})"
