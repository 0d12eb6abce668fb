#!/bin/bash
# debian-kernel.sh: owns the download of Debian 12's kernel package for the QEMU suites.
# Resolves linux-image-amd64 to the real package, fetches it with `apt-get download` into
# /var/cache/paddd-test/kernel/ (keyed by package name and version, never installed on the
# host) and prints the path of the cached .deb. With apt offline it falls back to the
# newest cached .deb.
#
# Usage: debian-kernel.sh [CACHE_DIR]     (default /var/cache/paddd-test/kernel)
# Exit: 0 with the .deb's path on stdout, 1 with the reason on stderr.
set -euo pipefail

CACHE=${1:-/var/cache/paddd-test/kernel}
META=linux-image-amd64

resolve() {
        apt-cache depends "$META" 2>/dev/null |
                sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1
}

mkdir -p "$CACHE"
pkg=$(resolve)
if [ -z "$pkg" ]; then
        apt-get update -q >/dev/null 2>&1 || true
        pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
        deb=$(ls "$CACHE"/linux-image-*.deb 2>/dev/null | tail -n1)
        [ -n "$deb" ] || { echo "cannot resolve $META to a kernel package" >&2; exit 1; }
        echo "$deb"
        exit 0
fi
ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
deb="$CACHE/${pkg}_${ver//:/%3a}_amd64.deb"
if [ ! -s "$deb" ]; then
        tmp=$(mktemp -d "$CACHE/.download.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        (cd "$tmp" && apt-get download -q "$pkg=$ver" >"$tmp/log" 2>&1) ||
                { echo "apt-get download $pkg=$ver failed: $(cat "$tmp/log")" >&2; exit 1; }
        mv "$tmp"/*.deb "$deb"
fi
echo "$deb"
