# shellcheck shell=bash
# padctl(1) completion for bash: the commands, the global options (before or after the
# command), each command's own options, the values of --bus and -o, node numbers from
# sysfs for --node and set-quota, folders for --textfile, files for the jobs, VFIO groups.
# Installed into bash-completion's completions folder, loaded on first use of padctl.

_padctl_nodes() {
        local d
        for d in "${PADCTL_SYSFS:-/sys}"/devices/system/node/node[0-9]*; do
                [[ -e $d ]] && printf '%s\n' "${d##*/node}"
        done
}

_padctl_command_options() {
        case $1 in
                status) echo "-o --output" ;;
                monitor) echo "--interval" ;;
                metrics) echo "--textfile" ;;
                acquire) echo "--node --strict-node --min --wait --tag --ttl --hold" ;;
                hugetlb-fallocate) echo "--offset --node --helpers --keep-size --compare-kernel" ;;
                pmem-init) echo "--size --offset --pattern --node --helpers" ;;
                vfio-map) echo "--hugetlb --iommufd --node --helpers" ;;
        esac
}

# The values of options that take one; returns 1 for an option without a value.
_padctl_option_value() {
        local cur=$1 prev=$2
        case $prev in
                --bus) mapfile -t COMPREPLY < <(compgen -W "system session unix:path=" -- "$cur") ;;
                -o | --output) mapfile -t COMPREPLY < <(compgen -W "text json" -- "$cur") ;;
                --node) mapfile -t COMPREPLY < <(compgen -W "any $(_padctl_nodes)" -- "$cur") ;;
                --textfile) _filedir -d ;;
                --interval | --min | --wait | --tag | --ttl | --hold | --offset | --helpers | --size | --pattern) ;;
                *) return 1 ;;
        esac
        return 0
}

# The command's n-th positional argument (from 1).
_padctl_positional() {
        local cmd=$1 n=$2 cur=$3 commands=$4
        case $cmd:$n in
                help:1) mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur") ;;
                set-quota:1) mapfile -t COMPREPLY < <(compgen -W "machine $(_padctl_nodes)" -- "$cur") ;;
                hugetlb-fallocate:1 | pmem-init:1) _filedir ;;
                vfio-map:1) mapfile -t COMPREPLY < <(compgen -W "$(compgen -G '/dev/vfio/[0-9]*')" -- "$cur") ;;
        esac
}

_padctl() {
        local cur prev words cword
        _init_completion || return

        local commands="status monitor metrics set-quota reload acquire hugetlb-fallocate pmem-init vfio-map help"
        local globals="--bus --quiet --no-legend --help --version"
        local cmd="" n=0 i

        _padctl_option_value "$cur" "$prev" && return
        # The command is the first word that is neither an option nor an option's value.
        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                        --bus | -o | --output | --node | --textfile | --interval | --min | --wait | --tag | \
                        --ttl | --hold | --offset | --helpers | --size | --pattern) ((i++)) ;;
                        -*) ;;
                        *) if [[ -z $cmd ]]; then cmd=${words[i]}; else ((n++)); fi ;;
                esac
        done
        if [[ -z $cmd ]]; then
                if [[ $cur == -* ]]; then
                        mapfile -t COMPREPLY < <(compgen -W "$globals" -- "$cur")
                else
                        mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
                fi
                return
        fi
        if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$(_padctl_command_options "$cmd") --help --bus --quiet --no-legend" -- "$cur")
                return
        fi
        _padctl_positional "$cmd" $((n + 1)) "$cur" "$commands"
}

complete -F _padctl padctl
