# shellcheck shell=bash
# qmp.sh: sourced by the shell examples and bench/run-qemu-prealloc.sh: start QEMU with its
# QMP monitor on a pipe (a bash coprocess running `qemu-system-x86_64 -qmp stdio`, so no
# socket and no socat are needed) and talk QMP to it one line at a time.
#
# When is the guest RAM preallocated? QEMU 7.2 creates its monitors early in startup
# (qemu_create_early_backends) but memory backends late (qemu_create_late_backends), and
# preallocates a backend with prealloc=on while creating it, in the main thread, before the
# main loop runs. The QMP greeting and every answer come from the main loop. So the first
# line QEMU writes on QMP means every -object exists and its preallocation is done; if the
# preallocation fails, QEMU exits and the pipe ends without a greeting. Checked on QEMU 7.2:
# with `-qmp unix:...,server=on,wait=off` and a 1 GiB prealloc of a /dev/shm file, the socket
# accepted a connection 0.1 s after start, before the file existed, and the greeting came at
# 1.0 s, when all of the file's blocks were there. query-memdev and qom-get answer after it.

QMP_ID=0

# qmp_start QEMU-ARGS...: starts QEMU (${QEMU:-qemu-system-x86_64}) with `-M none -nodefaults
# -display none -qmp stdio` and the arguments; sets QEMU_PID, QMP_IN and QMP_OUT.
qmp_start() {
        coproc QEMU_COPROC {
                exec "${QEMU:-qemu-system-x86_64}" -M none -nodefaults -display none -qmp stdio "$@"
        }
        QEMU_PID=$QEMU_COPROC_PID
        exec {QMP_IN}<&"${QEMU_COPROC[0]}" {QMP_OUT}>&"${QEMU_COPROC[1]}"
}

# qmp_wait_ready: waits for the greeting (see above: the RAM is preallocated then) and
# leaves capabilities negotiation; fails if QEMU exited or took longer than
# $QMP_READY_SECONDS (300).
qmp_wait_ready() {
        local line
        while IFS= read -r -t "${QMP_READY_SECONDS:-300}" -u "$QMP_IN" line; do
                [[ $line == '{"QMP":'* ]] || continue
                qmp_call qmp_capabilities >/dev/null
                return
        done
        echo "qmp: QEMU ended or did not answer" >&2
        return 1
}

# qmp_call COMMAND [ARGUMENTS-JSON]: runs a command and prints its answer line; fails on an
# error answer. Events and other lines before the answer are skipped.
qmp_call() {
        local id=$(( ++QMP_ID )) line
        if [[ -n ${2:-} ]]; then
                printf '{"execute": "%s", "arguments": %s, "id": "%s"}\n' "$1" "$2" "$id" >&"$QMP_OUT"
        else
                printf '{"execute": "%s", "id": "%s"}\n' "$1" "$id" >&"$QMP_OUT"
        fi
        while IFS= read -r -t 60 -u "$QMP_IN" line; do
                [[ $line == *"\"id\": \"$id\""* ]] || continue
                echo "$line"
                [[ $line != '{"error"'* ]]
                return
        done
        echo "qmp: no answer to $1" >&2
        return 1
}

# qmp_return LINE: the scalar an answer returned ({"return": 2, "id": "3"} gives 2).
qmp_return() {
        sed -n 's/^{"return": \([^,{}]*\), "id".*/\1/p' <<<"$1"
}

# qmp_quit: asks QEMU to quit and waits for it; its exit status.
qmp_quit() {
        qmp_call quit >/dev/null || true
        local rc=0
        wait "$QEMU_PID" || rc=$?
        exec {QMP_IN}<&- {QMP_OUT}>&-
        QEMU_PID=''
        return "$rc"
}
