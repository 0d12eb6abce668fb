#!/usr/bin/env bash
# many-vms.sh: many VM managers at once against one paddd: starts VMS copies of vm-manager
# (examples/vm-manager.c) together, each asking for HELPERS helpers for its guest (at least
# one, waiting up to WAIT_SECONDS for it) and holding them while QEMU preallocates its
# SIZE of RAM in DIR; paddd's machine cap (MaxHelpers) decides who gets what and who waits.
# Prints each one's grant, wait and hold, and the most helpers held at once as the clients'
# own timelines tell it (each interval starts after the grant arrived and ends before the
# Release is sent, so it lies within what paddd counted). The timelines stay in
# DIR/timeline: "TAG GRANTED ACQUIRED_US RELEASING_US WAITED_US", CLOCK_MONOTONIC.
#
# usage: many-vms.sh DIR [VMS (8)] [HELPERS (16)] [SIZE (64M)]
# environment: BUS_ADDRESS (default: the system bus), VM_MANAGER (default vm-manager),
#   WAIT_SECONDS (default 20, paddd's MaxWaitUSec), QEMU
set -euo pipefail

DIR=${1:?usage: $0 DIR [VMS] [HELPERS] [SIZE]}
VMS=${2:-8}
HELPERS=${3:-16}
SIZE=${4:-64M}
VM_MANAGER=${VM_MANAGER:-vm-manager}
WAIT_SECONDS=${WAIT_SECONDS:-20}
bus=(--system) manager_bus=()
if [[ -n ${BUS_ADDRESS:-} ]]; then
        bus=(--address="$BUS_ADDRESS")
        manager_bus=(--bus "$BUS_ADDRESS")
fi

cap=$(busctl "${bus[@]}" get-property org.padata.Broker /org/padata/Broker org.padata.Broker MaxHelpers)
echo "many-vms: $VMS guests of $SIZE, each asking for $HELPERS helpers (at least 1, waiting up to" \
     "${WAIT_SECONDS} s); the broker lends ${cap#u } at most"

pids=()
for i in $(seq "$VMS"); do
        "$VM_MANAGER" "${manager_bus[@]}" ${QEMU:+--qemu "$QEMU"} --helpers "$HELPERS" --min 1 \
                --wait "$WAIT_SECONDS" --tag "vm$i" "$DIR/vm$i.ram" "$SIZE" >"$DIR/vm$i.log" 2>&1 &
        pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
                echo "many-vms: vm$(( i + 1 )) failed:"
                sed 's/^/  /' "$DIR/vm$(( i + 1 )).log"
                failed=1
        fi
done
rm -f "$DIR"/vm*.ram
sed -n 's/^vm-manager: timeline //p' "$DIR"/vm*.log | sort -k3,3n >"$DIR/timeline"

printf '%-6s %8s %9s %9s\n' guest granted waited held
awk '{ printf "%-6s %8d %8.3fs %8.3fs\n", $1, $2, $5 / 1e6, ($4 - $3) / 1e6 }' "$DIR/timeline"
# The most held at once: a sweep over the intervals, a release before a grant at the same instant.
awk '{ print $3, 1, $2; print $4, 0, -$2 }' "$DIR/timeline" | sort -k1,1n -k2,2n |
        awk '{ held += $3; if (held > peak) peak = held } END { print "many-vms: at most " peak " helpers held at once" }'
exit "$failed"
