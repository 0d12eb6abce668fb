#!/bin/bash
# run-hugetlb.sh: the side-by-side benchmark of hugetlb population and pmem initialisation.
# Reserves the huge pages and mounts a hugetlbfs (and a tmpfs with huge=always for pmem) in a
# temporary folder, starts a private dbus-daemon and paddd from the build tree for padctl,
# and restores everything on exit. Every round runs each method once, in turn (rounds
# interleaved), on a fresh file; the table shows medians:
#   util-linux   `fallocate -l SIZE` (the kernel's single-threaded path), timed around the command
#   qemu         QEMU's own preallocation, prealloc-threads=N: a run with prealloc=on minus a
#                run with prealloc=off of the same command (startup, backend mmap, monitor
#                `quit`), median of each; QEMU prints no time of its own for the preallocation
#   padctl       `padctl hugetlb-fallocate` against the private paddd (default quota), timed
#                around the command (connection and lease included)
#   library      pad_hugetlb_fallocate() timed inside bench-hugetlb (broker, N threads)
#   plain loop   N threads calling MADV_POPULATE_WRITE on disjoint ranges (the machine's limit)
# Then bench-pmem: 4 GiB on the huge tmpfs and 1 GiB on /dev/shm (4 KiB pages).
# With `sizes` instead: the table of sizes 2 MiB to 16 GiB (as far as the pool allows) with
# fallocate(2), the library and the plain loop per call, then CALLS calls of 2-10 MiB in a
# row (bench-hugetlb sizes and calls).
# usage: bench/run-hugetlb.sh BUILD_DIR [SIZE_GIB (4)] [ROUNDS (3)]
#        bench/run-hugetlb.sh BUILD_DIR sizes [ROUNDS (3)] [CALLS (100000)]
set -euo pipefail

BUILD=$(realpath "${1:?usage: $0 BUILD_DIR [SIZE_GIB|sizes] [ROUNDS]}")
if [ "${2:-}" = sizes ]; then
        MODE=sizes SIZE_GIB=16 ROUNDS=${3:-3} CALLS=${4:-100000}
else
        MODE=table SIZE_GIB=${2:-4} ROUNDS=${3:-3}
fi
N=$(nproc)
BENCH="$BUILD/bench/bench-hugetlb"
PADCTL="$BUILD/tools/padctl"
PADDD="$BUILD/daemon/paddd"
QEMU=$(command -v qemu-system-x86_64 || true)
PAGES=$((SIZE_GIB * 512))

[ "$(id -u)" = 0 ] || { echo "run-hugetlb.sh: needs root (huge pages, mounts)"; exit 1; }
[ -x "$BENCH" ] || { echo "run-hugetlb.sh: build $BENCH first"; exit 1; }

# The pool is the machine's: serialise with test-hugetlb, add and remove our pages only.
exec 9> /tmp/paddd-hugetlb-pool.lock
flock 9
DIR=$(mktemp -d /tmp/bench-hugetlb.XXXXXX)
ADDED=0
DBUS_PID= PADDD_PID=
cleanup() {
        set +e
        [ -n "$PADDD_PID" ] && kill "$PADDD_PID" && wait "$PADDD_PID" 2>/dev/null
        [ -n "$DBUS_PID" ] && kill "$DBUS_PID"
        rm -f "$DIR"/huge/* "$DIR"/thp/* 2>/dev/null
        mountpoint -q "$DIR/huge" && umount "$DIR/huge"
        mountpoint -q "$DIR/thp" && umount "$DIR/thp"
        local nr; nr=$(cat /proc/sys/vm/nr_hugepages)
        echo $((nr > ADDED ? nr - ADDED : 0)) > /proc/sys/vm/nr_hugepages
        rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR/huge" "$DIR/thp"
NR0=$(cat /proc/sys/vm/nr_hugepages)
echo $((NR0 + PAGES + 16)) > /proc/sys/vm/nr_hugepages
ADDED=$(($(cat /proc/sys/vm/nr_hugepages) - NR0))
FREE=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
if [ "$MODE" = sizes ] && [ "$FREE" -lt "$PAGES" ]; then
        SIZE_GIB=$(((FREE - 16) / 512))
        echo "note: the pool gave only $FREE free pages: sizes up to ${SIZE_GIB} GiB"
        PAGES=$((SIZE_GIB * 512))
fi
[ "$FREE" -ge "$PAGES" ] || { echo "run-hugetlb.sh: only $FREE huge pages free, need $PAGES"; exit 1; }
mount -t hugetlbfs -o pagesize=2M none "$DIR/huge"
F="$DIR/huge/f"

# ---- the private broker ----------------------------------------------------------------------
USE_PADCTL=0
if [ -x "$PADDD" ] && [ -x "$PADCTL" ] && command -v dbus-daemon >/dev/null; then
        cat > "$DIR/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$DIR/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
        DBUS_PID=$(dbus-daemon --config-file="$DIR/bus.conf" --fork --print-pid)
        ADDR="unix:path=$DIR/bus"
        RUNTIME_DIRECTORY=$DIR "$PADDD" --bus "$ADDR" --embedded-config > "$DIR/paddd.log" 2>&1 &
        PADDD_PID=$!
        for _ in $(seq 50); do
                if "$PADCTL" --bus "$ADDR" --quiet hugetlb-fallocate "$F" 2M > "$DIR/smoke.log" 2>&1; then
                        USE_PADCTL=1
                        break
                fi
                sleep 0.1
        done
        rm -f "$F"
        export PADCLIENT_BUS="$ADDR"
fi
if [ "$USE_PADCTL" = 0 ]; then
        echo "note: padctl or paddd not usable here; the library row runs without a broker" \
             "(PADCLIENT_FALLBACK_HELPERS=$((N - 1)))"
        if [ -s "$DIR/smoke.log" ]; then sed 's/^/  padctl: /' "$DIR/smoke.log" | head -3 || true; fi
        export PADCLIENT_FALLBACK_HELPERS=$((N - 1))
fi

describe() {
        echo "machine: $N CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)," \
             "$(free -g | awk '/Mem:/ {print $2}') GiB RAM"
}

# ---- the table of sizes and the many small calls ------------------------------------------------
if [ "$MODE" = sizes ]; then
        SIZES=""
        for s in 2M 8M 32M 64M 128M 256M 1G 4G 16G; do
                b=$(numfmt --from=iec "$s")
                [ "$b" -le $((SIZE_GIB << 30)) ] && SIZES="$SIZES $s"
        done
        # Fresh guest memory is slow on first touch: populate the largest size twice, untimed.
        for _ in 1 2; do "$BENCH" loop "$F" "${SIZE_GIB}G" "$N" > /dev/null; rm -f "$F"; done
        echo
        describe
        echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "per call, 2 MiB pages, $N threads for the library and the loop, $ROUNDS rounds interleaved, median;"
        echo "each measurement repeats the call on a fresh file until 1 GiB is done; speed ratios (> 1: library faster);"
        echo "no broker: PAD_JOB_NO_BROKER, $((N - 1)) fallback helper(s) at the caller's priority"
        # shellcheck disable=SC2086
        PADCLIENT_FALLBACK_HELPERS=$((N - 1)) "$BENCH" sizes "$DIR/huge" "$N" "$ROUNDS" $SIZES
        echo
        "$BENCH" calls "$DIR/huge" "$CALLS" "$ROUNDS"
        echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
        exit 0
fi

# ---- the methods: each prints the seconds the population took ---------------------------------
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }

m_util() { local t; t=$(now); fallocate -l "${SIZE_GIB}G" "$F"; since "$t"; }
m_qemu() {      # $1: on|off
        local t; t=$(now)
        echo quit | "$QEMU" -M none -nodefaults -display none -monitor stdio -S \
                -object "memory-backend-file,id=m,size=${SIZE_GIB}G,mem-path=$F,share=on,prealloc=$1,prealloc-threads=$N" \
                > /dev/null
        since "$t"
}
m_padctl() {    # also keeps padctl's own timing of the call ("... in 0.213 s, ...")
        local t; t=$(now)
        "$PADCTL" --bus "$ADDR" hugetlb-fallocate "$F" "${SIZE_GIB}G" > "$DIR/padctl.log" 2>&1
        since "$t"
        sed -n 's/.* in \([0-9.]*\) s,.*/\1/p' "$DIR/padctl.log" | head -n1 >> "$DIR/t.padctl_call"
}
m_lib() { "$BENCH" lib "$F" "${SIZE_GIB}G" "$N" 2> "$DIR/lib.log"; }
m_loop() { "$BENCH" loop "$F" "${SIZE_GIB}G" "$N"; }

METHODS="util loop lib"
[ "$USE_PADCTL" = 1 ] && METHODS="$METHODS padctl"
[ -n "$QEMU" ] && METHODS="$METHODS qemu_on qemu_off"

# Fresh guest memory is slow on first touch: populate the whole size twice, untimed.
for _ in 1 2; do "$BENCH" loop "$F" "${SIZE_GIB}G" "$N" > /dev/null; rm -f "$F"; done

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
        for m in $METHODS; do
                case $m in
                qemu_on) s=$(m_qemu on) ;;
                qemu_off) s=$(m_qemu off) ;;
                *) s=$("m_$m") ;;
                esac
                echo "$s" >> "$DIR/t.$m"
                rm -f "$F"
                [ "$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)" -ge "$PAGES" ] ||
                        { echo "run-hugetlb.sh: pages not returned after $m"; exit 1; }
        done
done

median() { sort -g "$1" | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
for m in $METHODS; do declare "M_$m=$(median "$DIR/t.$m")"; done
[ -n "$QEMU" ] && M_qemu=$(echo "$M_qemu_on - $M_qemu_off" | bc -l)
if [ -s "$DIR/t.padctl_call" ]; then M_padctl_call=$(median "$DIR/t.padctl_call"); fi

echo
describe
[ -n "$QEMU" ] && echo "qemu: $("$QEMU" --version | head -1)"
echo "load average before the rounds: $LOAD"
echo "hugetlb population of $SIZE_GIB GiB of 2 MiB pages, $ROUNDS rounds interleaved, median, N=$N"
printf '%-44s %9s %8s %12s\n' method seconds GiB/s "vs util-linux"
row() { printf '%-44s %9.3f %8.2f %11.2fx\n' "$1" "$2" "$(echo "$SIZE_GIB / $2" | bc -l)" "$(echo "$M_util / $2" | bc -l)"; }
row "util-linux fallocate -l (kernel, 1 thread)" "$M_util"
[ -n "$QEMU" ] && row "QEMU prealloc-threads=$N (on - off)" "$M_qemu"
[ "$USE_PADCTL" = 1 ] && row "padctl hugetlb-fallocate (default quota)" "$M_padctl"
[ -n "${M_padctl_call:-}" ] && row "  the call alone, as padctl times it" "$M_padctl_call"
row "pad_hugetlb_fallocate, $N threads" "$M_lib"
row "plain loop, $N threads MADV_POPULATE_WRITE" "$M_loop"
[ -n "$QEMU" ] && printf '  (QEMU whole runs: prealloc=on %.3f s, prealloc=off %.3f s)\n' "$M_qemu_on" "$M_qemu_off"
sed -n '1p' "$DIR/lib.log" | sed 's/^/  library: /' || true
if [ "$USE_PADCTL" = 1 ]; then grep -v '^$' "$DIR/padctl.log" | head -3 | sed 's/^/  padctl: /' || true; fi

goal() { if [ "$(echo "$2" | bc -l)" = 1 ]; then echo "  goal met:    $1"; else echo "  goal missed: $1"; fi; }
goals() {       # $1: label, $2: median seconds
        goal "$1: $(printf '>= %.1fx util-linux (%.2fx)' "$(echo "0.9 * $N" | bc -l)" "$(echo "$M_util / $2" | bc -l)")" \
             "$M_util / $2 >= 0.9 * $N"
        if [ -n "$QEMU" ]; then goal "$1: no slower than QEMU at $N threads" "$2 <= $M_qemu"; fi
        goal "$1: $(printf 'within 5%% of the plain loop (%+.1f%%)' "$(echo "($2 / $M_loop - 1) * 100" | bc -l)")" \
             "$2 <= $M_loop * 1.05"
}
goals library "$M_lib"
if [ "$USE_PADCTL" = 1 ]; then goals padctl "$M_padctl"; fi
echo "load average after the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- pmem ---------------------------------------------------------------------------------------
echo
mount -t tmpfs -o huge=always,size=$((SIZE_GIB + 1))G none "$DIR/thp"
"$BUILD/bench/bench-pmem" "$DIR/thp/pmem" "${SIZE_GIB}G" "$N" 5 2>/dev/null | sed '2s/$/ (tmpfs huge=always)/'
echo
"$BUILD/bench/bench-pmem" /dev/shm/bench-pmem-$$ 1G "$N" 3 2>/dev/null | sed '2s/$/ (\/dev\/shm, 4 KiB pages)/'
