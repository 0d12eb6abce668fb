#!/usr/bin/env bash
# Install what paddd needs to build and test on Debian 12, only what is missing.
# Usage: scripts/install-deps.sh [--vm] [--system] [--fuzz]   (--vm adds what the QEMU test
# suite needs, with what its own guest kernel takes to build; --system what the system suite
# needs: QEMU, mmdebstrap and the Debian package tools; --fuzz clang and its fuzzer runtime,
# for fuzz/)
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc libc6-dev libsystemd-dev libnuma-dev libcap-dev
      libinih-dev check dbus-daemon dbus-bin systemd util-linux python3 procps valgrind
      python3-prometheus-client bash-completion groff-base)
for arg in "$@"; do
        case $arg in
        --vm) pkgs+=(qemu-system-x86 busybox-static cpio xz-utils
                     make bc bison flex libelf-dev libssl-dev) ;;
        --system) pkgs+=(qemu-system-x86 cpio mmdebstrap dpkg-dev debhelper lintian) ;;
        --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
        *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
        esac
done

missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: missing packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
