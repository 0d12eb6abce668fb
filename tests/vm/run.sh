#!/bin/bash
# run.sh: owns the host side of the vm suite. It makes sure QEMU, a static busybox and cpio
# are installed, takes the suite's own kernel (tests/vm/build-kernel.sh: Debian's 6.12
# source with IOMMUFD and the VFIO device cdev, everything built in, built once and cached
# under /var/cache/paddd-test/) or, when that cannot be had or PADDD_VM_KERNEL=debian,
# Debian 12's kernel package (tests/debian-kernel.sh, never installed on the host) with the
# modules the tests need (with their dependencies, read from each module's .modinfo), on
# which the iommufd tests are skipped with the reason; builds an initramfs holding busybox,
# the guest test program, paddd, padctl, dbus-daemon, mkfs.ext4 and every shared library
# they load, boots it under TCG on a q35 machine with an emulated IOMMU,
# the edu device, two NVDIMMs (one becomes device-DAX, one fsdax) and two NUMA nodes of one
# CPU each, and waits for the guest's verdict on the serial console (tests/vm/init.sh
# prints it).
#
# Usage: run.sh --workdir DIR --paddd BIN --padctl BIN --guest-test BIN [--timeout SEC]
# Exit: 0 when the guest printed "VM-RESULT: PASS", 77 when QEMU cannot be installed or
# started at all, 1 on anything else (the guest's console log is printed).
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")" && pwd)
WORKDIR= PADDD= PADCTL= GUEST_TEST= TIMEOUT=280
MODULES="vfio vfio_iommu_type1 vfio-pci irqbypass libnvdimm nfit nd_pmem nd_btt device_dax
         dax_pmem iommufd ext4 crc32c_generic"

SUITE_NAME=vm
# shellcheck source=../suite-lib.sh
. "$SRCDIR/../suite-lib.sh"

parse_args() {
        while [ $# -gt 0 ]; do
                case "$1" in
                --workdir) WORKDIR=$2; shift 2 ;;
                --paddd) PADDD=$2; shift 2 ;;
                --padctl) PADCTL=$2; shift 2 ;;
                --guest-test) GUEST_TEST=$2; shift 2 ;;
                --timeout) TIMEOUT=$2; shift 2 ;;
                *) die "unknown argument '$1'" ;;
                esac
        done
        [ -n "$WORKDIR" ] && [ -n "$PADDD" ] && [ -n "$PADCTL" ] && [ -n "$GUEST_TEST" ] ||
                die "usage: run.sh --workdir DIR --paddd BIN --padctl BIN --guest-test BIN"
        for f in "$PADDD" "$PADCTL" "$GUEST_TEST"; do
                [ -x "$f" ] || die "$f: not an executable"
        done
        mkdir -p "$WORKDIR"
        WORKDIR=$(cd "$WORKDIR" && pwd)
}

# apt-get install, quietly; refresh the package lists once if a package is unknown.
apt_install() {
        local aptlog="$WORKDIR/apt.log"
        command -v apt-get >/dev/null || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
                >"$aptlog" 2>&1 && return 0
        apt-get update -q >>"$aptlog" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
                >>"$aptlog" 2>&1
}

ensure_tools() {
        local want=()
        command -v qemu-system-x86_64 >/dev/null || want+=(qemu-system-x86)
        [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod ||
                want+=(busybox-static)
        command -v cpio >/dev/null || want+=(cpio)
        command -v objcopy >/dev/null || want+=(binutils)
        [ ${#want[@]} -eq 0 ] && return 0
        log "installing ${want[*]}"
        if ! apt_install "${want[@]}"; then
                command -v qemu-system-x86_64 >/dev/null ||
                        skip "qemu-system-x86 cannot be installed (see $WORKDIR/apt.log)"
                die "cannot install ${want[*]} (see $WORKDIR/apt.log)"
        fi
        command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 after install"
}

# Leaves in KDIR (per kernel package and module list): vmlinuz, version, and modules/ with
# the modules of $MODULES and their dependencies, uncompressed, plus modules/load-order
# listing them dependencies first. The package itself comes from tests/debian-kernel.sh
# (cached under /var/cache/paddd-test/kernel/); the rest of it is dropped here.
fetch_kernel() {
        local deb pkg full
        deb=$("$SRCDIR/../debian-kernel.sh") || die "cannot fetch Debian's kernel package"
        pkg=$(basename "$deb" .deb)
        KDIR="$WORKDIR/kernel/$pkg"
        if [ "$(cat "$KDIR/.modules" 2>/dev/null)" != "$(echo $MODULES)" ]; then
                log "unpacking $pkg"
                rm -rf "$KDIR" && mkdir -p "$KDIR/modules"
                full="$KDIR/full"
                dpkg -x "$deb" "$full"
                VMLINUZ=$(ls "$full"/boot/vmlinuz-* | head -n1)
                KVER=${VMLINUZ##*/vmlinuz-}
                MODDIR="$full/lib/modules/$KVER"
                [ -d "$MODDIR" ] || die "no modules in $pkg"
                for m in $MODULES; do
                        module_add "$m"
                done
                for f in "${MODULE_ORDER[@]}"; do
                        module_copy "$f" "$KDIR/modules"
                done
                cp "$VMLINUZ" "$KDIR/vmlinuz"
                echo "$KVER" >"$KDIR/version"
                rm -rf "$full"
                echo $MODULES >"$KDIR/.modules"
        fi
        VMLINUZ="$KDIR/vmlinuz"
        KVER=$(cat "$KDIR/version")
}

# The suite's own kernel, else Debian's. Sets VMLINUZ, KVER and KDIR (modules for the
# initramfs: none for the own kernel).
choose_kernel() {
        local img
        if [ "${PADDD_VM_KERNEL:-}" = debian ]; then
                log "PADDD_VM_KERNEL=debian: Debian's kernel, the iommufd tests will be skipped"
        elif img=$("$SRCDIR/build-kernel.sh" 2>"$WORKDIR/build-kernel.log"); then
                VMLINUZ=$img
                KVER="own kernel $(basename "$(dirname "$img")")"
                KDIR="$WORKDIR/kernel/own"
                rm -rf "$KDIR" && mkdir -p "$KDIR/modules"
                return 0
        else
                log "no kernel with IOMMUFD ($(tail -n1 "$WORKDIR/build-kernel.log")):" \
                    "Debian's kernel, the iommufd tests will be skipped"
        fi
        fetch_kernel
}

# Path of module $1 (dashes and underscores are the same), or nothing.
module_path() {
        local pat
        pat=$(echo "$1" | sed 's/[-_]/[-_]/g')
        find "$MODDIR/kernel" -regextype posix-extended \
             -regex ".*/$pat\.ko(\.xz|\.zst|\.gz)?" | head -n1
}

module_depends() {
        local f=$1 tmp
        tmp=$(mktemp)
        case "$f" in
        *.xz) xz -dc "$f" >"$tmp" ;;
        *.zst) zstd -qdc "$f" >"$tmp" ;;
        *.gz) gzip -dc "$f" >"$tmp" ;;
        *) cp "$f" "$tmp" ;;
        esac
        objcopy -O binary -j .modinfo "$tmp" /dev/stdout 2>/dev/null | tr '\0' '\n' |
                sed -n 's/^depends=//p' | tr ',' ' '
        rm -f "$tmp"
}

# Adds module $1 after its dependencies to MODULE_ORDER (a dependency-first list).
declare -A MODULE_SEEN=()
MODULE_ORDER=()
module_add() {
        local name=${1//-/_} f dep
        [ -n "${MODULE_SEEN[$name]:-}" ] && return 0
        MODULE_SEEN[$name]=1
        f=$(module_path "$1")
        if [ -z "$f" ]; then
                grep -q "/${name//_/[-_]}\.ko" "$MODDIR/modules.builtin" ||
                        log "$1: not in kernel $KVER (the guest tests what it offers)"
                return 0
        fi
        for dep in $(module_depends "$f"); do
                module_add "$dep"
        done
        MODULE_ORDER+=("$f")
}

# Copies module file $1 into folder $2 uncompressed (busybox insmod reads plain .ko) and
# appends its name to $2/load-order.
module_copy() {
        local f=$1 dir=$2 base
        base=$(basename "$f")
        case "$base" in
        *.xz) base=${base%.xz}; xz -dc "$f" >"$dir/$base" ;;
        *.zst) base=${base%.zst}; zstd -qdc "$f" >"$dir/$base" ;;
        *.gz) base=${base%.gz}; gzip -dc "$f" >"$dir/$base" ;;
        *) cp "$f" "$dir/$base" ;;
        esac
        echo "$base" >>"$dir/load-order"
}

# Copies binary $1 and every shared library it needs (and the loader) into the root.
copy_elf() {
        local bin=$1 dest=${2:-} lib
        [ -n "$dest" ] || dest=$bin
        mkdir -p "$ROOT$(dirname "$dest")"
        cp -L "$bin" "$ROOT$dest"
        # System libraries keep their path; the build tree's (found through a RUNPATH
        # relative to $ORIGIN, or meson's LD_LIBRARY_PATH) go to /usr/local/lib, which the
        # guest's init puts on LD_LIBRARY_PATH.
        { ldd "$bin" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\// { print $1 }' |
        while read -r lib; do
                case "$lib" in
                /lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*) dest=$lib ;;
                *) dest=/usr/local/lib/$(basename "$lib") ;;
                esac
                [ -e "$ROOT$dest" ] && continue
                mkdir -p "$ROOT$(dirname "$dest")"
                cp -L "$lib" "$ROOT$dest"
        done
}

build_initramfs() {
        ROOT="$WORKDIR/root"
        rm -rf "$ROOT"
        mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,var/run,lib/modules,test}
        cp /bin/busybox "$ROOT/bin/busybox"
        ln -s busybox "$ROOT/bin/sh"
        install -m 0755 "$SRCDIR/init.sh" "$ROOT/init"

        copy_elf "$GUEST_TEST" /test/guest-test
        copy_elf "$PADDD" /test/paddd
        copy_elf "$PADCTL" /test/padctl
        copy_elf "$(command -v dbus-daemon)" /usr/bin/dbus-daemon
        copy_elf "$(command -v mkfs.ext4)" /sbin/mkfs.ext4
        echo "root:x:0:0:root:/root:/bin/sh" >"$ROOT/etc/passwd"
        echo "nobody:x:65534:65534:nobody:/:/bin/false" >>"$ROOT/etc/passwd"
        printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
        # mkfs.ext4 takes the ext4 feature set from it.
        if [ -e /etc/mke2fs.conf ]; then
                cp /etc/mke2fs.conf "$ROOT/etc/mke2fs.conf"
        else
                touch "$ROOT/etc/mke2fs.conf"
        fi

        if [ -e "$KDIR/modules/load-order" ]; then
                cp "$KDIR"/modules/* "$ROOT/lib/modules/"
        fi

        INITRD="$WORKDIR/initramfs.cpio"
        (cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet) >"$INITRD"
}

boot() {
        local nv0="$WORKDIR/nvdimm0.img" nv1="$WORKDIR/nvdimm1.img" rc=0
        CONSOLE="$WORKDIR/console.log"
        rm -f "$nv0" "$nv1" "$CONSOLE"
        truncate -s 256M "$nv0" "$nv1"
        log "booting $KVER (timeout ${TIMEOUT}s, console: $CONSOLE)"
        # -cpu max: the guest gets clwb/clflushopt for the pmem flushes. kernel-irqchip=split
        # only matters under KVM, but keeps the command line valid there too.
        timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
                -accel tcg \
                -M q35,kernel-irqchip=split,nvdimm=on \
                -cpu max \
                -m 1G,slots=2,maxmem=4G -smp 2 \
                -object memory-backend-ram,id=m0,size=512M \
                -object memory-backend-ram,id=m1,size=512M \
                -numa node,nodeid=0,cpus=0,memdev=m0 \
                -numa node,nodeid=1,cpus=1,memdev=m1 \
                -object memory-backend-file,id=nv0,share=on,mem-path="$nv0",size=256M,align=2M \
                -device nvdimm,memdev=nv0,id=nvdimm0,node=0 \
                -object memory-backend-file,id=nv1,share=on,mem-path="$nv1",size=256M,align=2M \
                -device nvdimm,memdev=nv1,id=nvdimm1,node=1 \
                -device intel-iommu,intremap=on \
                -device edu \
                -kernel "$VMLINUZ" -initrd "$INITRD" \
                -append "console=ttyS0 intel_iommu=on loglevel=4 panic=-1 tsc=reliable" \
                -display none -vga none -net none -monitor none \
                -serial file:"$CONSOLE" -no-reboot 2>"$WORKDIR/qemu.err" || rc=$?
        case $rc in
        126|127) skip "qemu-system-x86_64 cannot be executed: $(cat "$WORKDIR/qemu.err")" ;;
        esac
        QEMU_RC=$rc
}

verdict() {
        if tr -d '\r' <"$CONSOLE" | grep -q '^VM-RESULT: PASS'; then
                tr -d '\r' <"$CONSOLE" | grep '^VM-RESULT:'
                return 0
        fi
        log "no PASS from the guest (qemu exit $QEMU_RC); guest console follows"
        [ -e "$CONSOLE" ] && tr -d '\r' <"$CONSOLE" >&2
        [ -s "$WORKDIR/qemu.err" ] && { log "qemu stderr:"; cat "$WORKDIR/qemu.err" >&2; }
        [ "$QEMU_RC" = 124 ] && log "guest timed out after ${TIMEOUT}s"
        return 1
}

main() {
        parse_args "$@"
        ensure_tools
        choose_kernel
        build_initramfs
        boot
        verdict
}

main "$@"
