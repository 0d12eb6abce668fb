#!/usr/bin/env bash
# test-man.sh: the man pages. Each renders with groff (and man -l when man-db is there)
# without a warning; libpadclient(3) names every function of padclient.h, and
# org.padata.Broker(5) every method, property, signal and error of the interface XML; the EXAMPLE
# of libpadclient(3) is extracted, compiled with warnings as errors against the built
# library and run (without a broker: it must still succeed). Exits 77 without groff.
# Usage: test-man.sh SOURCE_ROOT CC LIBDIR [CFLAGS...]
set -u

root=${1:?usage: test-man.sh SOURCE_ROOT CC LIBDIR [CFLAGS...]}
cc=${2:?} libdir=${3:?}
shift 3
if ! command -v groff >/dev/null; then
        echo "test-man: no groff (groff-base): skipped"
        exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() {
        echo "FAIL: $*"
        failed=1
}

for page in "$root"/man/*.[0-9]; do
        out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
        [[ -z $out ]] || fail "groff warns on ${page##*/}: $out"
        if command -v man >/dev/null; then
                out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
                [[ -z $out ]] || fail "man -l warns on ${page##*/}: $out"
        fi
done

lib3=$root/man/libpadclient.3
for f in $(grep -o 'pad_[a-z_0-9]*(' "$root/include/padclient.h" | tr -d '(' | sort -u); do
        grep -q "$f(" "$lib3" || fail "libpadclient(3) does not describe $f()"
done

broker5=$root/man/org.padata.Broker.5
for m in $(grep -o '<\(method\|property\|signal\) name="[A-Za-z]*"' "$root/dbus/org.padata.Broker.xml" |
           sed 's/.*name="\(.*\)"/\1/' | sort -u); do
        grep -q "^\.[A-Z]*B* *$m\b\|^\.B[IR]* .*\b$m\b\|\\\\fB$m" "$broker5" ||
                fail "org.padata.Broker(5) does not describe $m"
done

for e in $(grep -o 'org\.[a-z]*\.[A-Za-z]*\.Error\.[A-Za-z]*' "$root/dbus/org.padata.Broker.xml" | sort -u); do
        grep -qF "$e" "$broker5" || fail "org.padata.Broker(5) does not describe the error $e"
done

# The example: between the markers, roff requests dropped and its escapes undone.
sed -n '/^\.\\" example-begin/,/^\.\\" example-end/p' "$lib3" | grep -v '^\.' |
        sed -e 's/\\e/\\/g' -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" >"$tmp/example.c"
[[ -s $tmp/example.c ]] || fail "no example found in libpadclient(3)"
if $cc -std=gnu11 -Wall -Wextra -Werror "$@" -I"$root/include" "$tmp/example.c" -L"$libdir" -lpadclient \
        -Wl,-rpath,"$libdir" -o "$tmp/example" 2>"$tmp/cc.log"; then
        if ! PADCLIENT_BUS=unix:path=/nonexistent/bus "$tmp/example" >"$tmp/run.log" 2>&1; then
                fail "the example failed: $(cat "$tmp/run.log")"
        elif ! grep -q "threads" "$tmp/run.log"; then
                fail "the example printed no job summary: $(cat "$tmp/run.log")"
        fi
else
        fail "the example does not compile: $(cat "$tmp/cc.log")"
fi

[[ $failed -eq 0 ]] && echo "test-man: ok"
exit $failed
