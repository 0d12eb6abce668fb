#!/usr/bin/env bash
# build-deb.sh: owns building the Debian packages (paddd, libpadclient0, libpadclient-dev)
# from this checkout's files (tracked and new, not ignored) with `dpkg-buildpackage -us -uc
# -b` in a scratch copy, and putting the .debs, the .buildinfo/.changes and the build log
# into OUTDIR. OUTDIR/source.sha256 records what they were built from: a second run on the
# same files does nothing. tests/system/ is left out of that hash (nothing in it is
# packaged). With --lintian, lintian checks the result (errors fail the build).
#
# Usage: scripts/build-deb.sh [--lintian] [OUTDIR]   (default OUTDIR: build-deb)
# Extra dpkg-buildpackage build options come from $DEB_BUILD_OPTIONS (e.g. nocheck).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

LINTIAN=no
if [[ ${1:-} == --lintian ]]; then
        LINTIAN=yes; shift
fi
OUT=${1:-build-deb}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

files() {
        git -C "$SRC" ls-files -co --exclude-standard -z
}

hash=$(files | grep -zv '^tests/system/' | sort -z |
       xargs -0 sha256sum -- | sha256sum | cut -d' ' -f1)
if [[ $(cat "$OUT/source.sha256" 2>/dev/null) == "$hash" ]] && ls "$OUT"/paddd_*.deb >/dev/null 2>&1; then
        echo "build-deb: $OUT is up to date ($hash)"
        exit 0
fi

version=$(dpkg-parsechangelog -l debian/changelog -S Version)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/paddd-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/paddd-$version"
files | tar --null -T - -c | tar -x -C "$tmp/paddd-$version"

echo "build-deb: building paddd $version (log: $OUT/build.log)"
rm -f "$OUT"/*.deb "$OUT"/*.changes "$OUT"/*.buildinfo "$OUT/source.sha256"
if ! (cd "$tmp/paddd-$version" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1; then
        tail -n 40 "$OUT/build.log" >&2
        echo "build-deb: dpkg-buildpackage failed (log: $OUT/build.log)" >&2
        exit 1
fi
mv "$tmp"/*.deb "$tmp"/*.changes "$tmp"/*.buildinfo "$OUT/"

if [[ $LINTIAN == yes ]]; then
        lintian --info --display-info --pedantic "$OUT"/*.changes | tee "$OUT/lintian.log" || true
        if grep -q '^E:' "$OUT/lintian.log"; then
                echo "build-deb: lintian reports errors" >&2
                exit 1
        fi
fi
echo "$hash" >"$OUT/source.sha256"
ls "$OUT"/*.deb
