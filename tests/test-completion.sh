#!/usr/bin/env bash
# test-completion.sh: padctl's bash completion, sourced into a bash with Debian's
# bash-completion and asked, as bash would ask it, for the commands, the global options,
# a command's own options, the values of -o and --bus, and node numbers (from a fake sysfs,
# so the numbers are known) for set-quota and --node; with $PADCTL_BIN, also every command
# of `padctl --help` and every option of each `padctl COMMAND --help`, so that the two
# cannot drift apart. Exits 77 without bash-completion.
# Usage: test-completion.sh SOURCE_ROOT
set -u

root=${1:?usage: test-completion.sh SOURCE_ROOT}
main=/usr/share/bash-completion/bash_completion
if [[ ! -r $main ]]; then
        echo "test-completion: no $main (Debian's bash-completion): skipped"
        exit 77
fi
# shellcheck disable=SC1090
source "$main"
# shellcheck disable=SC1091
source "$root/shell-completion/padctl.bash"

sysfs=$(mktemp -d)
trap 'rm -rf "$sysfs"' EXIT
mkdir -p "$sysfs/devices/system/node/node0" "$sysfs/devices/system/node/node3"
export PADCTL_SYSFS=$sysfs
failed=0

# complete LINE: COMPREPLY for the last word of LINE (a trailing space: an empty word).
complete_line() {
        COMP_LINE=$1
        COMP_POINT=${#1}
        read -r -a COMP_WORDS <<<"$1"
        [[ $1 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        _padctl
}

# expect LINE WORD...: every WORD is offered; expect_not LINE WORD...: none is.
expect() {
        local line=$1 w
        shift
        complete_line "$line"
        for w in "$@"; do
                if ! printf '%s\n' "${COMPREPLY[@]}" | grep -qxF -- "$w"; then
                        echo "FAIL: '$line' does not offer '$w' (offers: ${COMPREPLY[*]})"
                        failed=1
                fi
        done
}
expect_not() {
        local line=$1 w
        shift
        complete_line "$line"
        for w in "$@"; do
                if printf '%s\n' "${COMPREPLY[@]}" | grep -qxF -- "$w"; then
                        echo "FAIL: '$line' offers '$w' (offers: ${COMPREPLY[*]})"
                        failed=1
                fi
        done
}

expect "padctl " status monitor metrics set-quota reload acquire hugetlb-fallocate pmem-init vfio-map help
expect "padctl st" status
expect_not "padctl st" reload
expect "padctl --" --bus --quiet --no-legend --help --version
expect "padctl --bus " system session
expect "padctl --bus session s" status set-quota
expect "padctl status -" -o --output --no-legend --quiet
expect "padctl status -o " text json
expect "padctl acquire 2 --" --node --strict-node --min --wait --tag --ttl --hold
expect_not "padctl acquire 2 --" --keep-size
expect "padctl hugetlb-fallocate f 1G --" --keep-size --compare-kernel --quiet
expect "padctl metrics --" --textfile
expect "padctl set-quota " machine 0 3
expect_not "padctl set-quota " 1
expect "padctl acquire 2 --node " any 0 3
expect "padctl help " status vfio-map

# What padctl itself says it has.
if [[ -n ${PADCTL_BIN:-} ]]; then
        read -r -a cmds < <("$PADCTL_BIN" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }' | tr '\n' ' ')
        [[ ${#cmds[@]} -ge 5 ]] || fail_msg="padctl --help lists no commands"
        expect "padctl " "${cmds[@]}"
        for c in "${cmds[@]}"; do
                read -r -a opts < <("$PADCTL_BIN" "$c" --help | grep -oE '^  (-[a-z] )?--[a-z-]+' |
                                     grep -oE -- '--[a-z-]+' | tr '\n' ' ')
                case $c in
                        set-quota) expect "padctl $c 0 1 --" "${opts[@]}" ;;
                        status | monitor | metrics | reload) expect "padctl $c --" "${opts[@]}" ;;
                        *) expect "padctl $c x --" "${opts[@]}" ;;
                esac
        done
        if [[ -n ${fail_msg:-} ]]; then
                echo "FAIL: $fail_msg"
                failed=1
        fi
fi

[[ $failed -eq 0 ]] && echo "test-completion: ok"
exit $failed
