#!/bin/bash
# run.sh: owns the host side of the system suite. It makes sure QEMU, mmdebstrap and the
# package build tools are installed, builds the Debian packages (scripts/build-deb.sh, with
# lintian), builds a Debian 12 base root file system with mmdebstrap (cached as an
# uncompressed initramfs under /var/cache/paddd-test/, keyed by its package list and their
# versions), appends an overlay holding the .debs, the guest checks (checks.sh, sys-client)
# and the unit that runs them, and the database-like example (examples/db-service/: its
# unit, sysusers.d entry and stand-in program, in /test/db-service for the guest to
# install), boots it under TCG with Debian 12's kernel, systemd as PID 1 and a pool of huge
# pages reserved on the kernel command line, and passes the guest's verdict out. The guest
# installs the packages itself, as an admin would, and writes one line per check to its
# second serial port.
#
# Usage: run.sh --workdir DIR --sys-client BIN --db-example BIN [--timeout SEC]
# Exit: 0 when the guest printed "SYSTEM-RESULT: PASS", 77 when QEMU or mmdebstrap cannot be
# installed or QEMU cannot start, 1 on anything else (the guest's console log is printed).
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")" && pwd)
TOPDIR=$(cd "$SRCDIR/../.." && pwd)
CACHE=/var/cache/paddd-test
WORKDIR= SYS_CLIENT= DB_EXAMPLE= TIMEOUT=600
SUITE=bookworm
# The suites the host's apt uses too, so the versions in the cache key are the guest's.
MIRRORS=("deb http://deb.debian.org/debian bookworm main"
         "deb http://deb.debian.org/debian bookworm-updates main"
         "deb http://deb.debian.org/debian-security bookworm-security main")
# The guest: systemd as PID 1 with the system bus, and what paddd's packages depend on (so
# apt installs them offline). util-linux (runuser, mount) is essential in minbase.
GUEST_PACKAGES="systemd systemd-sysv dbus libnuma1 libinih1 libcap2 libsystemd0"
MMDEBSTRAP_OPTS=(--variant=minbase
                 --dpkgopt='path-exclude=/usr/share/doc/*'
                 --dpkgopt='path-exclude=/usr/share/locale/*'
                 --dpkgopt='path-exclude=/usr/share/man/*')

SUITE_NAME=system
# shellcheck source=../suite-lib.sh
. "$SRCDIR/../suite-lib.sh"

parse_args() {
        while [ $# -gt 0 ]; do
                case "$1" in
                --workdir) WORKDIR=$2; shift 2 ;;
                --sys-client) SYS_CLIENT=$2; shift 2 ;;
                --db-example) DB_EXAMPLE=$2; shift 2 ;;
                --timeout) TIMEOUT=$2; shift 2 ;;
                *) die "unknown argument '$1'" ;;
                esac
        done
        [ -n "$WORKDIR" ] && [ -x "$SYS_CLIENT" ] && [ -x "$DB_EXAMPLE" ] ||
                die "usage: run.sh --workdir DIR --sys-client BIN --db-example BIN [--timeout SEC]"
        mkdir -p "$WORKDIR"
        WORKDIR=$(cd "$WORKDIR" && pwd)
}

ensure_tools() {
        local want=() aptlog="$WORKDIR/apt.log"
        [ "$(id -u)" = 0 ] || skip "needs root (mmdebstrap, the image and the package build)"
        command -v qemu-system-x86_64 >/dev/null || want+=(qemu-system-x86)
        command -v mmdebstrap >/dev/null || want+=(mmdebstrap)
        command -v cpio >/dev/null || want+=(cpio)
        command -v dpkg-buildpackage >/dev/null || want+=(dpkg-dev)
        command -v lintian >/dev/null || want+=(lintian)
        [ -e /usr/share/perl5/Debian/Debhelper/Sequence/installsysusers.pm ] || want+=(debhelper)
        [ ${#want[@]} -eq 0 ] && return 0
        log "installing ${want[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y -q --no-install-recommends "${want[@]}" >"$aptlog" 2>&1; then
                apt-get update -q >>"$aptlog" 2>&1 || true
                apt-get install -y -q --no-install-recommends "${want[@]}" >>"$aptlog" 2>&1 || true
        fi
        command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86 cannot be installed (see $aptlog)"
        command -v mmdebstrap >/dev/null || skip "mmdebstrap cannot be installed (see $aptlog)"
        command -v dpkg-buildpackage >/dev/null && command -v lintian >/dev/null ||
                die "cannot install the package build tools (see $aptlog)"
}

build_debs() {
        DEBS="$WORKDIR/debs"
        # nocheck: the unit suite runs on its own in scripts/test.sh; here only the packages
        # matter (and their build must not depend on the host's huge pages).
        DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" "$TOPDIR/scripts/build-deb.sh" --lintian "$DEBS" >"$WORKDIR/build-deb.log" 2>&1 ||
                { cat "$WORKDIR/build-deb.log" >&2; die "building the Debian packages failed"; }
        grep -E '^(W|E): ' "$DEBS/lintian.log" >&2 || true
}

fetch_kernel() {
        local deb
        deb=$("$TOPDIR/tests/debian-kernel.sh" "$CACHE/kernel") || die "cannot fetch Debian's kernel"
        VMLINUZ="${deb%.deb}.vmlinuz"
        if [ ! -s "$VMLINUZ" ]; then
                dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './boot/vmlinuz-*' >"$VMLINUZ.tmp"
                mv "$VMLINUZ.tmp" "$VMLINUZ"
        fi
}

# The base image's key: the options, the package list and the versions apt would install.
base_key() {
        {
                echo "$SUITE ${MIRRORS[*]} ${MMDEBSTRAP_OPTS[*]} $GUEST_PACKAGES"
                # shellcheck disable=SC2086
                apt-cache policy $GUEST_PACKAGES 2>/dev/null | sed -n 's/^ *Candidate: //p'
        } | sha256sum | cut -c1-16
}

build_base() {
        local key tmp
        key=$(base_key)
        BASE="$CACHE/base-$SUITE-$key.cpio"
        [ -s "$BASE" ] && return 0
        log "building the $SUITE base image (mmdebstrap; cached as $BASE)"
        mkdir -p "$CACHE"
        tmp=$(mktemp -d "$CACHE/.base.XXXXXX")
        # shellcheck disable=SC2064
        trap "rm -rf '$tmp'" EXIT
        mmdebstrap "${MMDEBSTRAP_OPTS[@]}" --include="${GUEST_PACKAGES// /,}" \
                "$SUITE" "$tmp/root.tar" "${MIRRORS[@]}" >"$WORKDIR/mmdebstrap.log" 2>&1 ||
                { tail -n 30 "$WORKDIR/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
        mkdir "$tmp/root"
        tar -C "$tmp/root" -xpf "$tmp/root.tar"
        (cd "$tmp/root" && find . -print0 | cpio --null -o -H newc --quiet) >"$tmp/base.cpio"
        mv "$tmp/base.cpio" "$BASE"
        rm -rf "$tmp"
        trap - EXIT
}

# What this run adds on top of the base: the packages, the checks and their unit.
build_overlay() {
        local o="$WORKDIR/overlay" unit=paddd-system-test.service
        rm -rf "$o"
        mkdir -p "$o/debs" "$o/test" "$o/etc/systemd/system/multi-user.target.wants"
        cp "$DEBS"/paddd_*.deb "$DEBS"/libpadclient0_*.deb "$DEBS"/libpadclient-dev_*.deb "$o/debs/"
        install -m 0755 "$SRCDIR/checks.sh" "$o/test/checks.sh"
        install -m 0755 "$SYS_CLIENT" "$o/test/sys-client"
        install -D -m 0755 "$DB_EXAMPLE" "$o/test/db-service/paddd-db-example"
        install -m 0644 "$TOPDIR/examples/db-service/paddd-db-example.service" \
                "$TOPDIR/examples/db-service/paddd-db-example.sysusers" "$o/test/db-service/"
        install -m 0644 "$SRCDIR/$unit" "$o/etc/systemd/system/$unit"
        ln -s "../$unit" "$o/etc/systemd/system/multi-user.target.wants/$unit"
        # The console is for the kernel and systemd; the verdict goes to ttyS1.
        ln -s /dev/null "$o/etc/systemd/system/serial-getty@ttyS0.service"
        echo paddd-guest >"$o/etc/hostname"
        INITRD="$WORKDIR/initrd.cpio"
        cp "$BASE" "$INITRD"
        (cd "$o" && find . -print0 | cpio --null -o -H newc --quiet) >>"$INITRD"
}

# The guest's huge page pool, reserved at boot as on a database server (the kernel takes
# them before memory fragments): 128 pages of 2 MiB, 256 MiB of the guest's 2 GiB, for
# the hugetlb job (256 MiB) and the database example (192 MiB), one after the other.
HUGEPAGES="hugepagesz=2M hugepages=128"

boot() {
        local rc=0
        CONSOLE="$WORKDIR/console.log" VERDICT="$WORKDIR/verdict.log"
        rm -f "$CONSOLE" "$VERDICT"
        log "booting $(basename "$VMLINUZ") (timeout ${TIMEOUT}s, console: $CONSOLE)"
        timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
                -accel tcg -M q35 -cpu max -m 2G -smp 2 \
                -kernel "$VMLINUZ" -initrd "$INITRD" \
                -append "console=ttyS0 rdinit=/lib/systemd/systemd loglevel=4 panic=-1 systemd.show_status=0 tsc=reliable $HUGEPAGES" \
                -display none -vga none -net none -monitor none \
                -serial file:"$CONSOLE" -serial file:"$VERDICT" -no-reboot 2>"$WORKDIR/qemu.err" || rc=$?
        case $rc in
        126|127) skip "qemu-system-x86_64 cannot be executed: $(cat "$WORKDIR/qemu.err")" ;;
        esac
        QEMU_RC=$rc
}

verdict() {
        [ -e "$VERDICT" ] && tr -d '\r' <"$VERDICT"
        if tr -d '\r' <"$VERDICT" 2>/dev/null | grep -q '^SYSTEM-RESULT: PASS'; then
                return 0
        fi
        log "no PASS from the guest (qemu exit $QEMU_RC)"
        if ! tr -d '\r' <"$VERDICT" 2>/dev/null | grep -q '^SYSTEM-RESULT:'; then
                log "the guest gave no verdict; its console follows"
                [ -e "$CONSOLE" ] && tr -d '\r' <"$CONSOLE" | tail -n 80 >&2
        fi
        [ -s "$WORKDIR/qemu.err" ] && { log "qemu stderr:"; cat "$WORKDIR/qemu.err" >&2; }
        [ "$QEMU_RC" = 124 ] && log "guest timed out after ${TIMEOUT}s"
        return 1
}

main() {
        local t0=$SECONDS
        parse_args "$@"
        ensure_tools
        build_debs
        fetch_kernel
        build_base
        build_overlay
        log "image ready after $((SECONDS - t0)) s"
        boot
        log "guest done after $((SECONDS - t0)) s"
        verdict
}

main "$@"
