#!/bin/bash
# build-kernel.sh: owns the vm suite's own kernel. Debian 12's kernel has no IOMMUFD (nor do
# Debian's later ones), so this fetches Debian's linux-source-6.12 from bookworm-backports
# through a private apt configuration under CACHE/apt (its own sources.list naming the
# Debian mirror the machine's apt already uses, its own lists and archives; the machine's
# apt configuration is never touched), and builds a small kernel from allnoconfig plus
# tests/vm/kernel.config (everything built in, no modules). The bzImage is cached as
# CACHE/kernel-<source version>-<sha256 of the fragment, 16 digits>/bzImage, so the build
# happens once per source version and fragment; builds run under nice 19 and idle I/O.
#
# Usage: build-kernel.sh [CACHE_DIR]   (default /var/cache/paddd-test)
# Exit: 0 with the bzImage's path on stdout (the build log goes to stderr), 1 with the
# reason on stderr.
set -euo pipefail

SRCDIR=$(cd "$(dirname "$0")" && pwd)
CACHE=${1:-/var/cache/paddd-test}
FRAGMENT="$SRCDIR/kernel.config"
SRCPKG=linux-source-6.12
APTDIR="$CACHE/apt"
JOBS=${KERNEL_JOBS:-$(nproc)}

say() { echo "build-kernel: $*" >&2; }
fail() { say "$*"; exit 1; }

# The URI of the machine's main Debian archive (the one serving bookworm), from its own
# deb822 or one-line sources.
debian_mirror() {
        local f uri=
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -e "$f" ] || continue
                uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
                        /(^|\n)Suites:[^\n]*(^| )bookworm( |\n|$)/ {
                                for (i = 1; i <= NF; i++)
                                        if ($i ~ /^URIs:/) { split($i, a, " "); print a[2]; exit }
                        }' "$f")
                [ -n "$uri" ] && break
        done
        if [ -z "$uri" ]; then
                uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                        awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
        fi
        echo "$uri"
}

private_apt() {
        apt-get -q -o Dir::Etc::SourceList="$APTDIR/sources.list" \
                -o Dir::Etc::SourceParts="$APTDIR/sources.list.d" \
                -o Dir::State="$APTDIR/state" -o Dir::Cache="$APTDIR/cache" \
                -o Debug::NoLocking=1 "$@"
}

private_apt_cache() {
        apt-cache -o Dir::Etc::SourceList="$APTDIR/sources.list" \
                -o Dir::Etc::SourceParts="$APTDIR/sources.list.d" \
                -o Dir::State="$APTDIR/state" -o Dir::Cache="$APTDIR/cache" "$@"
}

# Leaves the newest linux-source .deb in CACHE/apt/debs and its path in SRCDEB.
fetch_source() {
        local mirror ver
        mkdir -p "$APTDIR"/{sources.list.d,state/lists/partial,cache/archives/partial,debs} ||
                true
        mirror=$(debian_mirror)
        if [ -n "$mirror" ] && [ -w "$APTDIR" ]; then
                echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
                     "$mirror bookworm-backports main" >"$APTDIR/sources.list"
                # The lists are refreshed once a day at most: a warm run stays quick.
                if [ -z "$(find "$APTDIR/updated" -mmin -1440 2>/dev/null)" ]; then
                        if private_apt update >"$APTDIR/update.log" 2>&1; then
                                touch "$APTDIR/updated"
                        else
                                say "apt-get update of bookworm-backports failed (see $APTDIR/update.log)"
                        fi
                fi
                ver=$(private_apt_cache policy "$SRCPKG" 2>/dev/null |
                        sed -n 's/^ *Candidate: //p')
                if [ -n "$ver" ] && [ "$ver" != "(none)" ]; then
                        SRCDEB="$APTDIR/debs/${SRCPKG}_${ver//:/%3a}_all.deb"
                        if [ ! -s "$SRCDEB" ]; then
                                say "downloading $SRCPKG $ver"
                                (cd "$APTDIR/debs" &&
                                 private_apt download "$SRCPKG=$ver" >"$APTDIR/download.log" 2>&1) ||
                                        fail "apt-get download $SRCPKG=$ver failed (see $APTDIR/download.log)"
                        fi
                        return 0
                fi
        elif [ -z "$mirror" ]; then
                say "no Debian mirror for bookworm in /etc/apt"
        fi
        SRCDEB=$(ls "$APTDIR"/debs/${SRCPKG}_*.deb 2>/dev/null | sort -V | tail -n1)
        [ -n "$SRCDEB" ] || fail "no $SRCPKG: bookworm-backports unreachable and nothing cached"
}

mkdir -p "$CACHE"
# One build at a time; a reader that cannot write the cache only looks it up.
if [ -w "$CACHE" ]; then
        exec 9>>"$CACHE/.build-kernel.lock"
        flock 9
fi
fetch_source
ver=$(basename "$SRCDEB" _all.deb)
ver=${ver#${SRCPKG}_}
key="$ver-$(sha256sum "$FRAGMENT" | cut -c1-16)"
OUT="$CACHE/kernel-$key"
if [ -s "$OUT/bzImage" ]; then
        echo "$OUT/bzImage"
        exit 0
fi

# An interrupted build is picked up where it stopped: the tree stays until the bzImage is in
# the cache.
work="$CACHE/.kernel-build-$key"
mkdir -p "$work"
say "building $SRCPKG $ver with $(basename "$FRAGMENT") in $work (log: $work/build.log)"
start=$(date +%s)
{
        src=$(find "$work" -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
        if [ -z "$src" ] || [ ! -e "$src/.unpacked" ]; then
                rm -rf "${work:?}"/linux-source-*
                dpkg-deb --fsys-tarfile "$SRCDEB" | tar -x -C "$work" --wildcards '*.tar.xz'
                tarball=$(find "$work" -name 'linux-source-*.tar.xz' | head -n1)
                [ -n "$tarball" ] || { echo "no source tarball in $SRCDEB"; exit 1; }
                nice -n 19 ionice -c3 tar -xJ -C "$work" -f "$tarball"
                rm -rf "${work:?}/usr"
                src=$(find "$work" -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
                touch "$src/.unpacked"
        fi
        cd "$src"
        # merge_config.sh names every value the fragment asked for that did not stick.
        scripts/kconfig/merge_config.sh -n "$FRAGMENT"
        nice -n 19 ionice -c3 make -j"$JOBS" bzImage
} >>"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "kernel build failed"; }
src=$(find "$work" -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
cp "$src/arch/x86/boot/bzImage" "$OUT.tmp/bzImage"
cp "$src/.config" "$OUT.tmp/config"
grep -A1 '^Value requested' "$work/build.log" >"$OUT.tmp/config-misses" || true
echo "$(( $(date +%s) - start ))" >"$OUT.tmp/build-seconds"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
rm -rf "${work:?}"
say "built in $(cat "$OUT/build-seconds")s: $OUT/bzImage"
echo "$OUT/bzImage"
