#!/usr/bin/env bash
# test-install.sh: `meson install --destdir` of the build into a temporary folder, then
# every file where it belongs (the daemon in libexec, padctl in bin, the units, sysusers,
# the D-Bus policy, activation file and interface XML, the conffile, the header, the
# library and its links, the .pc file, the man pages, the bash completion); paddd
# --version and padctl --help run from the staged tree; and a small client built with
# pkg-config's flags for the staged libpadclient compiles, links and runs.
# Usage: test-install.sh BUILD_ROOT MESON CC [CFLAGS...], the layout in the environment:
# PREFIX BINDIR LIBDIR LIBEXECDIR INCLUDEDIR DATADIR MANDIR SYSCONFDIR COMPLETIONSDIR.
set -u

build=${1:?usage: test-install.sh BUILD_ROOT MESON CC [CFLAGS...]}
meson=${2:?} cc=${3:?}
shift 3
for v in PREFIX BINDIR LIBDIR LIBEXECDIR INCLUDEDIR DATADIR MANDIR SYSCONFDIR COMPLETIONSDIR; do
        [[ -n ${!v:-} ]] || { echo "test-install: \$$v not set (run through meson test)"; exit 1; }
done
command -v pkg-config >/dev/null || { echo "test-install: no pkg-config: skipped"; exit 77; }
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
failed=0
fail() {
        echo "FAIL: $*"
        failed=1
}
# A folder option relative to the prefix, or absolute.
under_prefix() {
        [[ $1 == /* ]] && echo "$1" || echo "$PREFIX/$1"
}

if ! "$meson" install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$dest.log" 2>&1; then
        echo "FAIL: meson install: $(cat "$dest.log")"
        rm -f "$dest.log"
        exit 1
fi
rm -f "$dest.log"
root=$dest$PREFIX
bin=$dest$(under_prefix "$BINDIR")
lib=$dest$(under_prefix "$LIBDIR")
libexec=$dest$(under_prefix "$LIBEXECDIR")
share=$dest$(under_prefix "$DATADIR")
man=$dest$(under_prefix "$MANDIR")
etc=$dest$(under_prefix "$SYSCONFDIR")
completions=$dest$(under_prefix "$COMPLETIONSDIR")

for x in "$libexec/paddd" "$bin/padctl"; do
        [[ -f $x && -x $x ]] || fail "no executable $x"
done
for f in "$root/lib/systemd/system/paddd.service" "$root/lib/systemd/system/paddd-metrics.service" \
         "$root/lib/systemd/system/paddd-metrics.timer" "$root/lib/sysusers.d/paddd.conf" \
         "$share/dbus-1/system.d/org.padata.Broker.conf" \
         "$share/dbus-1/system-services/org.padata.Broker.service" \
         "$share/dbus-1/interfaces/org.padata.Broker.xml" "$etc/paddd/paddd.conf" \
         "$dest$(under_prefix "$INCLUDEDIR")/padclient.h" "$lib/pkgconfig/libpadclient.pc" \
         "$man/man1/padctl.1" "$man/man3/libpadclient.3" "$man/man5/paddd.conf.5" \
         "$man/man5/org.padata.Broker.5" "$man/man8/paddd.8" "$completions/padctl"; do
        [[ -f $f ]] || fail "not installed: ${f#"$dest"}"
done
[[ -L $lib/libpadclient.so && -L $lib/libpadclient.so.0 ]] || fail "no libpadclient.so and .so.0 links in ${lib#"$dest"}"
[[ -f $(readlink -f "$lib/libpadclient.so.0") ]] || fail "libpadclient.so.0 leads nowhere"
grep -q "ExecStart=$(under_prefix "$LIBEXECDIR")/paddd" "$root/lib/systemd/system/paddd.service" ||
        fail "paddd.service does not start the installed paddd"
grep -q "ExecStart=$(under_prefix "$BINDIR")/padctl " "$root/lib/systemd/system/paddd-metrics.service" ||
        fail "paddd-metrics.service does not run the installed padctl"

# The staged binaries run (padctl finds the staged library, not the build's).
export LD_LIBRARY_PATH=$lib
out=$("$libexec/paddd" --version 2>&1) || fail "staged paddd --version failed: $out"
[[ $out == *paddd* ]] || fail "staged paddd --version says: $out"
out=$("$bin/padctl" --help 2>&1) || fail "staged padctl --help failed: $out"
[[ $out == *Usage:* ]] || fail "staged padctl --help says: $out"
ldd "$bin/padctl" | grep -q "$lib/libpadclient.so.0" || fail "staged padctl does not use the staged library"

# A client built with pkg-config's flags for the staged tree.
cat >"$dest/client.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <padclient.h>

static int nothing(uint64_t s, uint64_t e, void *arg) {
        (void) s; (void) e; (void) arg;
        return 0;
}

int main(void) {
        pad_job job = { .thread_fn = nothing, .size = 100, .max_threads = 2 };
        pad_broker_statistics *st = NULL;
        pad_client *c = NULL;
        pad_job_stats js;

        if (pad_client_new("unix:path=/nonexistent/bus", &c) < 0 || pad_job_run(c, &job, &js) < 0)
                return 1;
        if (pad_broker_statistics_get(c, &st, NULL, 0) >= 0)
                return 2;
        printf("client ok, %u thread(s)\n", js.threads);
        pad_client_free(c);
        return 0;
}
C
export PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_LIBDIR=$lib/pkgconfig
if flags=$(pkg-config --cflags --libs libpadclient 2>&1); then
        # shellcheck disable=SC2086
        if $cc -Wall -Wextra -Werror "$@" "$dest/client.c" $flags -o "$dest/client" 2>"$dest/cc.log"; then
                out=$("$dest/client" 2>&1) || fail "the client failed ($?): $out"
                [[ $out == "client ok"* ]] || fail "the client says: $out"
        else
                fail "the client does not build with '$flags': $(cat "$dest/cc.log")"
        fi
else
        fail "pkg-config --cflags --libs libpadclient: $flags"
fi

[[ $failed -eq 0 ]] && echo "test-install: ok"
exit $failed
