#!/usr/bin/env bash
# vm-manager-busctl.sh: what a VM manager does with paddd, from a shell, with busctl for the
# broker's API: borrow preallocation helpers for the node the guest's RAM lives on, start
# QEMU with a thread-context on the lease's node and prealloc-threads = granted + 1 (the
# helpers plus QEMU's own main thread), wait until the RAM is preallocated, show the lease
# while it is held, release it, then quit QEMU.
#
# usage: vm-manager-busctl.sh MEM_PATH SIZE [NODE]
#   MEM_PATH  the guest RAM's file: on a hugetlbfs mount, or on tmpfs such as /dev/shm
#   SIZE      the guest RAM's size as QEMU takes it (256M, 4G)
#   NODE      the NUMA node of MEM_PATH's memory (default 0)
# environment: BUS_ADDRESS (default: the system bus), HELPERS (default: online CPUs - 1),
#   WAIT_SECONDS for the helpers (default 0), TAG (default vm-PID), QEMU, PADCTL (padctl,
#   used to hold the lease; see below).
#
# A lease lives as long as the bus connection that acquired it, and every `busctl call`
# is a connection of its own that ends when busctl exits: a lease acquired with `busctl
# call ... Acquire` is reclaimed before the next command runs (try it: ListLeases is empty
# right after). So the one process that holds the lease here is `padctl acquire`, which
# calls Acquire on its connection, keeps it open and calls Release on SIGTERM. Every other
# question to the broker is busctl's. A VM manager in C holds its own connection
# (vm-manager.c).
set -euo pipefail

MEM_PATH=${1:?usage: $0 MEM_PATH SIZE [NODE]}
SIZE=${2:?usage: $0 MEM_PATH SIZE [NODE]}
NODE=${3:-0}
HELPERS=${HELPERS:-$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))}
WAIT_SECONDS=${WAIT_SECONDS:-0}
TAG=${TAG:-vm-$$}
PADCTL=${PADCTL:-padctl}
# shellcheck source=examples/qmp.sh
source "$(dirname "$0")/qmp.sh"

bus=(--system)
padctl_bus=()
if [[ -n ${BUS_ADDRESS:-} ]]; then
        bus=(--address="$BUS_ADDRESS")
        padctl_bus=(--bus "$BUS_ADDRESS")
fi
broker() { busctl "${bus[@]}" "$@"; }
log() { echo "vm-manager-busctl: $*"; }

HOLDER_PID='' QEMU_PID=''
HOLDER_LOG=$(mktemp /tmp/vm-manager-busctl.XXXXXX)
cleanup() {
        [[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null
        [[ -n $HOLDER_PID ]] && kill "$HOLDER_PID" 2>/dev/null
        rm -f "$HOLDER_LOG"
}
trap cleanup EXIT

# 1. Borrow helpers for NODE: Acquire(u helpers, i node, a{sv} {tag, wait_usec}) on the
#    holder's connection; its first line is "/org/padata/Broker/lease/N: ...".
"$PADCTL" "${padctl_bus[@]}" acquire "$HELPERS" --node "$NODE" --tag "$TAG" \
        --wait "$WAIT_SECONDS" >"$HOLDER_LOG" &
HOLDER_PID=$!
lease=''
for _ in $(seq 600); do
        lease=$(sed -n 's|^\(/org/padata/Broker/lease/[0-9]*\):.*|\1|p' "$HOLDER_LOG")
        [[ -n $lease ]] && break
        kill -0 "$HOLDER_PID" 2>/dev/null || { log "no lease"; exit 1; }
        sleep 0.05
done
[[ -n $lease ]] || { log "no lease after 30 s"; exit 1; }

# 2. The lease's grant and placement: "u 1" and "a(iu) 1 0 1" (one entry: node 0, 1 helper).
read -r _ granted < <(broker get-property org.padata.Broker "$lease" org.padata.Broker.Lease Granted)
read -r _ entries placement_node _ < <(broker get-property org.padata.Broker "$lease" \
        org.padata.Broker.Lease Placement)
(( entries > 0 )) || placement_node=$NODE       # a grant of 0 has no placement
log "lease $lease: granted $granted of $HELPERS on node $placement_node"

# 3. QEMU: its preallocation threads start in a thread-context bound to the lease's node.
threads=$(( granted + 1 ))
qmp_start -object "thread-context,id=tc0,node-affinity=$placement_node" \
        -object "memory-backend-file,id=ram0,mem-path=$MEM_PATH,size=$SIZE,share=on,prealloc=on,prealloc-threads=$threads,prealloc-context=tc0"
qmp_wait_ready
answer=$(qmp_call qom-get '{"path": "/objects/ram0", "property": "prealloc-threads"}')
log "QEMU ready: RAM preallocated, prealloc-threads $(qmp_return "$answer")"
answer=$(qmp_call qom-get '{"path": "/objects/tc0", "property": "cpu-affinity"}')
log "thread-context tc0 on CPUs $(sed -n 's/^{"return": \(\[.*\]\), "id".*/\1/p' <<<"$answer")"

# 4. The lease while it is held, as the broker lists it and as an admin sees it.
log "leases on the broker:"
broker call org.padata.Broker /org/padata/Broker org.padata.Broker ListLeases
if command -v "$PADCTL" >/dev/null; then
        "$PADCTL" "${padctl_bus[@]}" status
fi

# 5. Release (the holder calls Release on SIGTERM); the lease object is gone after it.
kill -TERM "$HOLDER_PID"
wait "$HOLDER_PID"
HOLDER_PID=''
if broker get-property org.padata.Broker "$lease" org.padata.Broker.Lease Granted >/dev/null 2>&1; then
        log "$lease still exists after its release"
        exit 1
fi
log "released $lease"

# 6. The guest would run now; this example quits QEMU.
qmp_quit
log "QEMU quit"
