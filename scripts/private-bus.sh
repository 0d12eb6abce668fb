# shellcheck shell=bash
# Sourced by scripts: start a private dbus-daemon and paddd on it, with cleanup.
# Needs: $BUILD (meson build dir), $WORKDIR (temporary folder). Sets $BUS_ADDRESS.
# paddd runs with its embedded default config, or with --config $PADDD_CONFIG if that is set.

private_bus_start() {
        cat >"$WORKDIR/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>paddd-private</type>
  <listen>unix:path=$WORKDIR/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
CONF
        dbus-daemon --config-file="$WORKDIR/bus.conf" --nofork --nopidfile 2>"$WORKDIR/dbus.log" &
        DBUS_PID=$!
        BUS_ADDRESS="unix:path=$WORKDIR/bus"
        for _ in $(seq 100); do [[ -S $WORKDIR/bus ]] && break; sleep 0.05; done
        local config=(--embedded-config)
        if [[ -n ${PADDD_CONFIG:-} ]]; then
                config=(--config "$PADDD_CONFIG")
        fi
        # Its books in the folder, never in /run/paddd where an installed paddd keeps its own.
        RUNTIME_DIRECTORY=$WORKDIR "$BUILD/daemon/paddd" --bus "$BUS_ADDRESS" "${config[@]}" \
                2>"$WORKDIR/paddd.log" &
        PADDD_PID=$!
        for _ in $(seq 100); do
                busctl --address="$BUS_ADDRESS" status org.padata.Broker >/dev/null 2>&1 && return 0
                kill -0 "$PADDD_PID" 2>/dev/null || break
                sleep 0.05
        done
        echo "paddd did not start:" >&2
        cat "$WORKDIR/paddd.log" >&2
        return 1
}

private_bus_stop() {
        [[ -n ${PADDD_PID:-} ]] && kill "$PADDD_PID" 2>/dev/null && wait "$PADDD_PID" 2>/dev/null
        [[ -n ${DBUS_PID:-} ]] && kill "$DBUS_PID" 2>/dev/null && wait "$DBUS_PID" 2>/dev/null
        PADDD_PID='' DBUS_PID=''
        return 0
}
