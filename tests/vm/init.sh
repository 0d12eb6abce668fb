#!/bin/sh
# init.sh: owns the guest's /init for the vm suite. It mounts the kernel file systems, loads
# the modules run.sh packed (in dependency order; none with the suite's own kernel, which
# has everything built in), reserves 2 MiB huge pages on each NUMA node, binds the edu
# device (1234:11e8) to vfio-pci (and finds its VFIO cdev when the kernel has them), turns the first NVDIMM's raw namespace
# into device-DAX and the second into fsdax (both through libnvdimm's sysfs, as ndctl
# would), then runs /test/guest-test with the devices it found in its environment, prints
# one "VM-RESULT: PASS|FAIL ..." line on the console, naming the VFIO paths the tests
# exercised (or why iommufd was skipped), and powers the machine off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/test LD_LIBRARY_PATH=/usr/local/lib
HUGEPAGES_PER_NODE=32
GUEST_TEST_TIMEOUT=${GUEST_TEST_TIMEOUT:-200}
SETUP_ERRORS=""

setup_error() {
        echo "vm-init: $*"
        SETUP_ERRORS="$SETUP_ERRORS; $*"
}

finish() {
        echo "VM-RESULT: $*"
        sync
        poweroff -f
        echo o >/proc/sysrq-trigger
        sleep 10
}

dump_state() {
        echo "---- processes ----"
        ps -o pid,ppid,stat,args
        for f in /tmp/*/paddd.log; do
                [ -e "$f" ] && { echo "---- $f ----"; cat "$f"; }
        done
        for p in /proc/[0-9]*; do
                case "$(cat "$p/comm" 2>/dev/null)" in
                guest-test|paddd|dbus-daemon)
                        echo "---- ${p#/proc/} $(cat "$p/comm") ----"
                        for t in "$p"/task/*; do
                                # state, then the CPU it last ran on
                                echo "${t##*/}: $(cat "$t/wchan" 2>/dev/null)" \
                                     "$(cut -d' ' -f3,39 "$t/stat")"
                        done ;;
                esac
        done
        echo "---- kernel log (tail) ----"
        dmesg | tail -n 30
}

mount_basics() {
        mount -t proc proc /proc
        mount -t sysfs sys /sys
        mount -t devtmpfs dev /dev
        mkdir -p /dev/hugepages /dev/shm
        mount -t hugetlbfs -o pagesize=2M hugetlbfs /dev/hugepages
        mount -t tmpfs tmpfs /tmp
        mount -t tmpfs tmpfs /run
}

load_modules() {
        [ -e /lib/modules/load-order ] || return 0
        for m in $(cat /lib/modules/load-order); do
                insmod "/lib/modules/$m" || setup_error "insmod $m failed"
        done
}

reserve_hugepages() {
        for n in /sys/devices/system/node/node[0-9]*; do
                f=$n/hugepages/hugepages-2048kB/nr_hugepages
                echo "$HUGEPAGES_PER_NODE" >"$f"
                [ "$(cat "$f")" = "$HUGEPAGES_PER_NODE" ] ||
                        setup_error "${n##*/}: only $(cat "$f") huge pages"
        done
}

# Binds the edu device to vfio-pci; sets VM_VFIO_DEVICE, VM_VFIO_GROUP and, when the kernel
# gives devices a VFIO cdev, VM_VFIO_CDEV.
bind_edu() {
        for d in /sys/bus/pci/devices/*; do
                [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ] || continue
                VM_VFIO_DEVICE=${d##*/}
        done
        [ -n "${VM_VFIO_DEVICE:-}" ] || { setup_error "no edu device"; return; }
        echo 1234 11e8 >/sys/bus/pci/drivers/vfio-pci/new_id
        group=$(readlink "/sys/bus/pci/devices/$VM_VFIO_DEVICE/iommu_group")
        VM_VFIO_GROUP=/dev/vfio/${group##*/}
        i=0
        while [ ! -c "$VM_VFIO_GROUP" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        [ -c "$VM_VFIO_GROUP" ] || setup_error "no $VM_VFIO_GROUP"
        export VM_VFIO_DEVICE VM_VFIO_GROUP
        cdev=$(ls "/sys/bus/pci/devices/$VM_VFIO_DEVICE/vfio-dev" 2>/dev/null | head -n1)
        [ -n "$cdev" ] || return 0
        # Linux 6.1 has the vfio-dev class device but no cdev behind it; a kernel with
        # iommufd must have one.
        i=0
        while [ ! -c "/dev/vfio/devices/$cdev" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        if [ -c "/dev/vfio/devices/$cdev" ]; then
                VM_VFIO_CDEV=/dev/vfio/devices/$cdev
                export VM_VFIO_CDEV
        elif [ -c /dev/iommu ]; then
                setup_error "/dev/iommu but no /dev/vfio/devices/$cdev"
        fi
}

# "type1 (N tests) iommufd (N tests)" from the guest test's log, and why iommufd was skipped.
vfio_paths() {
        out=""
        for p in type1 iommufd; do
                n=$(grep -c "^guest-test: vfio-path $p " /tmp/guest-test.log || true)
                [ "$n" -gt 0 ] && out="$out $p ($n tests)"
        done
        skipped=$(sed -n 's/^guest-test: iommufd tests skipped: //p' /tmp/guest-test.log | head -n1)
        [ -n "$skipped" ] && out="$out; iommufd skipped: $skipped"
        echo "vfio paths:${out:- none}"
}

# Puts region $1's raw namespace under the pfn or dax seed device $2 (pfn|dax) and binds it
# to driver $3 (nd_pmem|dax_pmem): the info block written at its start makes it stick.
claim_namespace() {
        r=/sys/bus/nd/devices/$1
        ns=$(basename "$(ls -d "$r"/namespace*.0 | head -n1)")
        seed=$(cat "$r/${2}_seed")
        [ -n "$ns" ] && [ -n "$seed" ] || { setup_error "$1: no namespace or $2 seed"; return 1; }
        [ -e "/sys/bus/nd/devices/$ns/driver" ] &&
                echo "$ns" >/sys/bus/nd/drivers/nd_pmem/unbind
        d=/sys/bus/nd/devices/$seed
        cat /proc/sys/kernel/random/uuid >"$d/uuid" &&
        echo 2097152 >"$d/align" &&
        echo pmem >"$d/mode" &&
        echo "$ns" >"$d/namespace" &&
        echo "$seed" >"/sys/bus/nd/drivers/$3/bind" || {
                setup_error "$1: cannot claim $ns as $2"; return 1; }
        CLAIMED=$seed
}

setup_nvdimms() {
        regions=$(cd /sys/bus/nd/devices && ls -d region* 2>/dev/null | sort)
        set -- $regions
        [ $# -ge 2 ] || { setup_error "expected 2 NVDIMM regions, found $#"; return; }
        if claim_namespace "$1" dax dax_pmem; then
                VM_DEVDAX=/dev/$(ls "/sys/bus/nd/devices/$CLAIMED/" | grep '^dax[0-9]' | head -n1)
                [ -c "$VM_DEVDAX" ] || setup_error "no device-DAX node for $CLAIMED"
                export VM_DEVDAX
        fi
        if claim_namespace "$2" pfn nd_pmem; then
                VM_FSDAX_DEV=/dev/$(ls "/sys/bus/nd/devices/$CLAIMED/block/" | head -n1)
                mkdir -p /mnt/pmem
                if [ -b "$VM_FSDAX_DEV" ] &&
                   mkfs.ext4 -q -F -b 4096 "$VM_FSDAX_DEV" >/tmp/mkfs.log 2>&1 &&
                   mount -t ext4 -o dax=always "$VM_FSDAX_DEV" /mnt/pmem; then
                        VM_FSDAX_MNT=/mnt/pmem
                        export VM_FSDAX_DEV VM_FSDAX_MNT
                else
                        cat /tmp/mkfs.log
                        setup_error "cannot make or mount ext4 -o dax on $VM_FSDAX_DEV"
                fi
        fi
}

mount_basics
load_modules
reserve_hugepages
bind_edu
setup_nvdimms
echo "vm-init: ready after $(cut -d' ' -f1 /proc/uptime)s on $(uname -r):" \
     "vfio=${VM_VFIO_GROUP:-none} cdev=${VM_VFIO_CDEV:-none} iommu=$([ -c /dev/iommu ] &&
     echo /dev/iommu || echo none) devdax=${VM_DEVDAX:-none} fsdax=${VM_FSDAX_DEV:-none}"

export PADDD_BIN=/test/paddd PADCTL_BIN=/test/padctl DBUS_DAEMON=/usr/bin/dbus-daemon
export CK_VERBOSITY=verbose CK_DEFAULT_TIMEOUT=60
cd /tmp
# The console shows the tests as they run; the log keeps them for the verdict. A guest
# test that hangs is reported with what the guest was doing, before the host's limit.
{ /test/guest-test; echo $? >/tmp/guest-test.rc; } 2>&1 | tee /tmp/guest-test.log &
waited=0
while [ ! -e /tmp/guest-test.rc ] && [ $waited -lt "$GUEST_TEST_TIMEOUT" ]; do
        sleep 1
        waited=$((waited + 1))
done
if [ ! -e /tmp/guest-test.rc ]; then
        dump_state
        finish "FAIL guest-test still running after ${GUEST_TEST_TIMEOUT}s${SETUP_ERRORS}"
fi
wait
rc=$(cat /tmp/guest-test.rc)
summary=$(grep -E '^[0-9]+%: Checks: ' /tmp/guest-test.log | tail -n1)
paths=$(vfio_paths)
echo "vm-init: $paths"
if [ $rc -eq 0 ] && [ -z "$SETUP_ERRORS" ] && [ -n "$summary" ]; then
        finish "PASS $summary; $paths"
else
        finish "FAIL guest-test exit $rc ($summary; $paths)${SETUP_ERRORS}"
fi
