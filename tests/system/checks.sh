#!/bin/bash
# checks.sh: owns the guest side of the system suite. Runs as root from
# paddd-system-test.service in a Debian 12 guest booted with systemd as PID 1: installs
# paddd's packages from /debs as an admin would, then checks the service as systemd runs
# it under its hardened unit (users, capabilities, activation, readiness, reload, bus
# policy for ordinary users and AdminGroup, RaisePriority, the database-like service of
# examples/db-service/ with its huge pages allocated by brokered helpers, a hugetlb job,
# padctl status, the journal and systemd-analyze, leases across restarts, the watchdog,
# remove and purge).
# One line per check goes to ttyS1: "ok NAME (N s)" or "FAIL NAME: why" with the output
# that shows it; the last line is "SYSTEM-RESULT: PASS" or "SYSTEM-RESULT: FAIL n of m".
# Then it powers the guest off (the unit does, whatever happens here).
set -euo pipefail

exec 3>/dev/ttyS1
export SYSTEMD_PAGER= SYSTEMD_COLORS=0 LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive

CONF=/etc/paddd/paddd.conf
BROKER=(org.padata.Broker /org/padata/Broker org.padata.Broker)
SYS_NICE_MASK=0000000000800000 # 1 << CAP_SYS_NICE (23)
PASSED=0 FAILED=0

fail() { echo "$*"; exit 1; }

# check NAME FUNCTION: runs FUNCTION in a subshell; it fails by calling fail (or exiting
# non-zero), its output is shown then.
check() {
        local name=$1 out rc=0 t0=$SECONDS
        shift
        out=$("$@" 2>&1) || rc=$?
        report "$name" "$rc" "$out" "$t0"
}

report() { # NAME RC OUTPUT T0
        if [ "$2" = 0 ]; then
                echo "ok $1 ($((SECONDS - $4)) s)$(echo "$3" | sed -n 's/^NOTE: / -- /p' | tr '\n' ' ')" >&3
                PASSED=$((PASSED + 1))
        else
                echo "FAIL $1: $(echo "$3" | tail -n 1)" >&3
                echo "$3" | tail -n 25 | sed 's/^/    | /' >&3
                FAILED=$((FAILED + 1))
        fi
}

# as_exec USER COMMAND...: becomes COMMAND as an ordinary user with its groups and a clean
# environment. setpriv execs (runuser would fork): in "as_exec ... &", $! is COMMAND itself.
as_exec() {
        local user=$1
        shift
        exec setpriv --reuid "$user" --regid "$user" --init-groups -- \
                env -i PATH=/usr/bin:/bin LC_ALL=C.UTF-8 HOME="/home/$user" "$@"
}

as() { (as_exec "$@"); }

# check_here NAME FUNCTION: the same in this shell, for FUNCTION that starts what later
# checks use; it fails by returning non-zero (fail would end the whole run).
check_here() {
        local name=$1 out=/run/check.out rc=0 t0=$SECONDS
        shift
        "$@" >"$out" 2>&1 || rc=$?
        report "$name" "$rc" "$(cat "$out")" "$t0"
}

prop() { # broker property (u) -> its value
        busctl get-property "${BROKER[@]}" "$1" | awk '{ print $2 }'
}

unit_prop() { systemctl show -P "$1" paddd.service; }

# wait_for SECONDS CONDITION: polls every 0.2 s until the shell condition (evaluated anew
# each time) holds.
wait_for() {
        local deadline=$((SECONDS + $1))
        until eval "$2" >/dev/null 2>&1; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.2
        done
}

journal_since() { journalctl -u paddd.service -o cat --no-pager --since "@$1"; }

# ---- setup and install ----------------------------------------------------------------

setup_users() {
        groupadd -f padadmin
        groupadd -f hugeusers
        useradd -m -s /bin/bash -G hugeusers alice
        useradd -m -s /bin/bash -G padadmin bob
        useradd -m -s /bin/bash carol
        id alice && id bob && id carol
}

install_packages() {
        ls /debs
        apt-get install -y -q --no-install-recommends /debs/*.deb ||
                fail "apt-get install of the packages failed"
        dpkg-query -W paddd libpadclient0 libpadclient-dev || fail "a package is not installed"
}

check_sysusers() {
        getent passwd paddd || fail "no user paddd after install (sysusers.d entry)"
        getent group paddd || fail "no group paddd after install"
        [ "$(getent passwd paddd | cut -d: -f7)" = /usr/sbin/nologin ] ||
                fail "user paddd has a login shell: $(getent passwd paddd)"
}

check_active() {
        systemctl is-enabled paddd.service || fail "paddd.service is not enabled after install"
        systemctl is-active paddd.service || fail "paddd.service is not active after install"
        systemctl status --no-pager paddd.service | tee /dev/stderr | grep -q 'Active: active (running)' ||
                fail "systemctl status does not show paddd running"
}

check_credentials() {
        local pid status uid
        pid=$(unit_prop MainPID)
        [ "$pid" -gt 0 ] || fail "no MainPID"
        status=$(cat "/proc/$pid/status")
        uid=$(id -u paddd)
        echo "$status" | grep -E '^(Uid|Gid|Cap|NoNewPrivs)'
        [ "$(stat -c %U "/proc/$pid")" = paddd ] || fail "paddd runs as $(stat -c %U "/proc/$pid"), not paddd"
        echo "$status" | grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" || fail "not every uid is paddd's ($uid)"
        for cap in CapEff CapPrm CapBnd; do
                echo "$status" | grep -Eq "^$cap:\s+$SYS_NICE_MASK$" ||
                        fail "$cap is not exactly CAP_SYS_NICE: $(echo "$status" | grep "^$cap")"
        done
        echo "$status" | grep -Eq '^NoNewPrivs:\s+1$' || fail "NoNewPrivs is not 1"
}

# ---- reload ----------------------------------------------------------------------------

check_reload() {
        local t0 line
        sed -i -e 's/^MaxHelpers=.*/MaxHelpers=4/' -e 's/^MaxHelpersPerNode=.*/MaxHelpersPerNode=4/' \
               -e 's/^AdminGroup=.*/AdminGroup=padadmin/' "$CONF"
        systemctl reload paddd.service ||
                fail "systemctl reload failed: $(systemctl status --no-pager -n 5 paddd.service)"
        [ "$(prop MaxHelpers)" = 4 ] || fail "MaxHelpers is $(prop MaxHelpers) right after the reload, not 4"

        t0=$(date +%s)
        sleep 1
        line=$(grep -n '^MaxHelpers=' "$CONF" | cut -d: -f1)
        sed -i 's/^MaxHelpers=4/MaxHelpers=lots/' "$CONF"
        systemctl reload paddd.service || fail "systemctl reload of a broken config failed as a command"
        systemctl is-active paddd.service || fail "paddd is not active after a broken reload"
        [ "$(prop MaxHelpers)" = 4 ] || fail "a broken config changed MaxHelpers to $(prop MaxHelpers)"
        journal_since "$t0"
        journal_since "$t0" | grep -q "$CONF:$line:" || fail "the journal has no '$CONF:$line:' for the broken line"
        sed -i 's/^MaxHelpers=lots/MaxHelpers=4/' "$CONF"
        systemctl reload paddd.service
        [ "$(prop MaxHelpers)" = 4 ]
}

# ---- readiness and activation ---------------------------------------------------------

name_owned() {
        busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s \
                org.padata.Broker
}

check_readiness() {
        for i in 1 2 3; do
                systemctl stop paddd.service
                [ "$(name_owned)" = "b false" ] || fail "the name is still owned after stop"
                systemctl start paddd.service
                [ "$(name_owned)" = "b true" ] ||
                        fail "start $i returned before paddd owned org.padata.Broker (Type=notify)"
        done
        [ "$(unit_prop Type)" = notify ] || fail "Type is $(unit_prop Type)"
}

check_activation() {
        local out
        systemctl stop paddd.service
        ! systemctl is-active paddd.service || fail "paddd still active after stop"
        out=$(as carol busctl call "${BROKER[0]}" "${BROKER[1]}" org.freedesktop.DBus.Properties Get ss \
                org.padata.Broker MaxHelpers) || fail "the first call from carol did not activate paddd"
        echo "$out"
        [ "$out" = "v u 4" ] || fail "the activated paddd answered '$out', not 'v u 4'"
        systemctl is-active paddd.service || fail "paddd.service is not active after bus activation"
}

# ---- the bus policy for ordinary users and AdminGroup ---------------------------------

check_policy() {
        as alice /test/sys-client policy
        [ "$(prop InUse)" = 0 ] || fail "InUse is $(prop InUse) after alice released everything"
}

check_admin_group() {
        as bob /test/sys-client set-quota 3 || fail "a member of AdminGroup could not SetQuota"
        busctl call "${BROKER[@]}" SetQuota iu -- -1 4
        [ "$(prop MaxHelpers)" = 4 ]
}

check_raise() {
        as alice /test/sys-client raise
}

check_hugetlb_job() {
        local out
        # libpadclient splits hugetlb jobs into chunks of at least 64 MiB: 256 MiB can
        # use helpers.
        echo 128 >/proc/sys/vm/nr_hugepages
        [ "$(cat /proc/sys/vm/nr_hugepages)" = 128 ] || fail "cannot reserve 128 huge pages"
        mkdir -p /mnt/huge
        mount -t hugetlbfs -o "gid=$(getent group hugeusers | cut -d: -f3),mode=1770" none /mnt/huge
        out=$(as alice padctl hugetlb-fallocate /mnt/huge/job 256M) || fail "padctl hugetlb-fallocate failed: $out"
        echo "$out"
        echo "$out" | grep -Eq ' [1-9][0-9]* helpers? granted by paddd' ||
                fail "the job got no helpers from the system paddd"
        [ "$(stat -c %s /mnt/huge/job)" = $((256 << 20)) ] || fail "the file is not 256 MiB"
        [ "$(prop InUse)" = 0 ] || fail "InUse is $(prop InUse) after the job, not 0"
        [ "$(prop Leases)" = 0 ] || fail "Leases is $(prop Leases) after the job, not 0"
        rm -f /mnt/huge/job
}

# ---- a database-like service (examples/db-service/) -----------------------------------
# Its unit allocates its shared memory, a file on /dev/hugepages, with padctl
# hugetlb-fallocate and brokered helpers before the stand-in database starts, from the
# pool run.sh reserves on the kernel command line.

DB_UNIT=paddd-db-example.service
DB_SHM=/dev/hugepages/paddd-db-example/shm
DB_SIZE=$((192 << 20)) # what the example promises (SHM_SIZE=192M in its unit)
DB_PAGES=$((DB_SIZE >> 21))
POOL=/sys/kernel/mm/hugepages/hugepages-2048kB

pool_free() { cat "$POOL/free_hugepages"; }

db_journal() { journalctl -u "$DB_UNIT" -o cat --no-pager --since "@$DB_T0"; }

db_grants() { # paddd's grants to padddb since it started (padctl metrics)
        padctl metrics | awk -v m="paddd_user_grants_total{uid=\"$(id -u padddb)\"}" \
                '$1 == m { n = $2 } END { print n + 0 }'
}

# As an admin installs a package's files: the user, the program, the unit.
check_db_install() {
        local d=/test/db-service out
        install -D -m 0644 "$d/paddd-db-example.sysusers" /etc/sysusers.d/paddd-db-example.conf
        systemd-sysusers /etc/sysusers.d/paddd-db-example.conf || fail "systemd-sysusers failed"
        getent passwd padddb || fail "systemd-sysusers made no user padddb"
        install -D -m 0755 "$d/paddd-db-example" /usr/local/libexec/paddd-db-example
        install -m 0644 "$d/$DB_UNIT" "/etc/systemd/system/$DB_UNIT"
        systemctl daemon-reload
        out=$(systemd-analyze verify --man=no "$DB_UNIT" 2>&1) || fail "systemd-analyze verify failed: $out"
        [ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
        stat -c 'NOTE: %n is %U:%G %a' /dev/hugepages || fail "no /dev/hugepages"
        echo "NOTE: $(cat "$POOL/nr_hugepages") huge pages at boot"
        [ "$(cat "$POOL/nr_hugepages")" -ge "$DB_PAGES" ] ||
                fail "the boot reserved $(cat "$POOL/nr_hugepages") huge pages, fewer than the example's $DB_PAGES"
}

db_start() {
        DB_FREE0=$(pool_free) DB_GRANTS0=$(db_grants) DB_T0=$(date +%s)
        systemctl start "$DB_UNIT" && return 0
        systemctl status --no-pager -n 20 "$DB_UNIT"
        return 1
}

check_db_active() {
        local pid
        systemctl is-active "$DB_UNIT" || fail "$DB_UNIT is not active"
        pid=$(systemctl show -P MainPID "$DB_UNIT")
        [ "$(stat -c %U "/proc/$pid")" = padddb ] || fail "the database runs as $(stat -c %U "/proc/$pid"), not padddb"
        wait_for 10 'db_journal | grep -q "paddd-db-example: .* present"' ||
                fail "the stand-in did not report every page present: $(db_journal)"
        db_journal | grep 'paddd-db-example: '
}

check_db_file() {
        local size
        stat -c '%n: %s bytes, %b blocks of %B, %U:%G %a' "$DB_SHM" || fail "no $DB_SHM"
        size=$(stat -c %s "$DB_SHM")
        [ "$size" = "$DB_SIZE" ] || fail "$DB_SHM is $size bytes, not $DB_SIZE"
        [ $(($(stat -c '%b * %B' "$DB_SHM"))) = "$DB_SIZE" ] || fail "not all of $DB_SHM is allocated"
        [ "$(stat -c %U:%a "$DB_SHM")" = padddb:600 ] || fail "$DB_SHM is not padddb's with mode 600"
}

check_db_pool() {
        local now
        now=$(pool_free)
        echo "NOTE: free huge pages $DB_FREE0 -> $now"
        [ $((DB_FREE0 - now)) = "$DB_PAGES" ] ||
                fail "the pool's free count fell by $((DB_FREE0 - now)), not by $DB_PAGES"
}

check_db_brokered() {
        local grants summary
        wait_for 10 'db_journal | grep -q "^hugetlb-fallocate: "' || fail "no summary of padctl in the journal"
        summary=$(db_journal | grep '^hugetlb-fallocate: ')
        echo "NOTE: ${summary#hugetlb-fallocate: }"
        echo "$summary" | grep -Eq ' [1-9][0-9]* helpers? granted by paddd' ||
                fail "padctl hugetlb-fallocate got no helpers from paddd"
        grants=$(db_grants)
        echo "paddd's grants to padddb: $DB_GRANTS0 before, $grants after"
        [ "$grants" -gt "$DB_GRANTS0" ] || fail "paddd counted no grant to padddb"
}

check_db_stop() {
        systemctl is-active "$DB_UNIT" || fail "$DB_UNIT is not running before the stop"
        systemctl stop "$DB_UNIT"
        [ "$(systemctl show -P ActiveState "$DB_UNIT")" = inactive ] ||
                fail "$DB_UNIT is $(systemctl show -P ActiveState "$DB_UNIT") after the stop, not inactive"
        [ ! -e "$DB_SHM" ] || fail "the stop left $DB_SHM"
        [ "$(pool_free)" = "$DB_FREE0" ] ||
                fail "the pool has $(pool_free) free pages after the stop, not $DB_FREE0"
}

check_db_no_lease() {
        local out
        out=$(padctl status) || fail "padctl status failed"
        echo "$out"
        echo "$out" | grep -q '^No leases\.$' || fail "padctl status shows a lease after the database's run"
        [ "$(prop Leases)" = 0 ] && [ "$(prop InUse)" = 0 ] ||
                fail "Leases is $(prop Leases) and InUse $(prop InUse), not 0"
}

# ---- a holder: alice keeps one lease across the following checks ----------------------

HOLD_IN=/run/hold.in HOLD_OUT=/run/hold.out

hold_start() {
        rm -f "$HOLD_IN" "$HOLD_OUT"
        mkfifo "$HOLD_IN"
        chmod 0644 "$HOLD_IN"
        as_exec alice /test/sys-client hold 1 <"$HOLD_IN" >"$HOLD_OUT" 2>&1 &
        HOLD_PID=$!
        exec 4>"$HOLD_IN"
        wait_for 20 'grep -q "^ok hold: Acquire" "$HOLD_OUT"' || { cat "$HOLD_OUT"; return 1; }
}

hold_stop() {
        echo release >&4 || true
        exec 4>&-
        wait "$HOLD_PID" || true
}

# hold_ask: the holder's lease must answer its owner now.
hold_ask() {
        local n
        n=$(wc -l <"$HOLD_OUT")
        echo check >&4
        wait_for 20 '[ "$(wc -l <"$HOLD_OUT")" -gt "$n" ]' || fail "the holder did not answer"
        tail -n 1 "$HOLD_OUT"
        tail -n 1 "$HOLD_OUT" | grep -q '^ok ' || fail "$(tail -n 1 "$HOLD_OUT")"
}

check_status() {
        local out owner
        out=$(as alice padctl status) || fail "padctl status as alice failed"
        echo "$out"
        owner=$(busctl call "${BROKER[@]}" ListLeases | grep -o '":1\.[0-9]*"' | head -n1 | tr -d '"')
        [ -n "$owner" ] || fail "ListLeases shows no owner"
        echo "$out" | grep -E '\balice\b' | grep -F "$owner" | grep -q system-suite ||
                fail "padctl status shows no lease of alice with owner $owner"
}

# ---- the journal and systemd-analyze ---------------------------------------------------

check_journal() {
        local pid out why=()
        # A client that vanishes with a lease.
        # (The feeding sleep must not hold this check's output pipe open.)
        as_exec carol /test/sys-client hold 1 < <(exec sleep 600 2>/dev/null) >/dev/null 2>&1 &
        pid=$!
        wait_for 20 '[ "$(prop Leases)" -ge 2 ]' || fail "carol's lease did not appear"
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        wait_for 20 '[ "$(prop Leases)" = 1 ]' || fail "carol's lease was not reclaimed"
        out=$(journalctl -u paddd.service -o cat --no-pager)
        echo "$out" | tail -n 15
        echo "$out" | grep -q 'serving org.padata.Broker on the system bus' || why+=("no start message")
        echo "$out" | grep -q 'Configuration reloaded' || why+=("no reload message")
        echo "$out" | grep -Eqi 'went away|vanished' || why+=("no client-vanished message")
        [ ${#why[@]} = 0 ] || fail "journalctl -u paddd: $(IFS=';'; echo "${why[*]}")"
}

check_unit_clean() {
        local out
        out=$(journalctl -b _PID=1 -p warning -o cat --no-pager | grep -i paddd || true)
        [ -z "$out" ] || fail "systemd warns about the unit: $out"
        # --man=no: the guest has no man pages to look up Documentation= in.
        out=$(systemd-analyze verify --man=no paddd.service 2>&1) ||
                fail "systemd-analyze verify failed: $out"
        [ -z "$out" ] || fail "systemd-analyze verify is not clean: $out"
}

check_security() {
        local out score
        out=$(systemd-analyze security --no-pager paddd.service)
        echo "$out" | grep -E '^✗' | head -n 40
        score=$(echo "$out" | sed -n 's/.*Overall exposure level for paddd.service: \([0-9.]*\).*/\1/p')
        echo "NOTE: exposure $score"
        [ -n "$score" ] || fail "no exposure score"
        awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }' || fail "exposure $score is above 1.5"
}

# ---- books across restarts (the fd store) ----------------------------------------------

books_hold() { # after a restart: the lease, InUse and a new Acquire, all three reported
        local out granted inuse max why=()
        (hold_ask) || why+=("alice's lease does not answer her")
        inuse=$(prop InUse)
        [ "$inuse" = 1 ] || why+=("InUse is $inuse; the clients hold 1")
        out=$(as carol /test/sys-client grab 4) || fail "carol's Acquire failed: $out"
        echo "$out"
        granted=$(echo "$out" | sed -n 's/.*granted=\([0-9]*\).*/\1/p')
        inuse=$(echo "$out" | sed -n 's/.*inuse=\([0-9]*\).*/\1/p')
        max=$(echo "$out" | sed -n 's/.*max=\([0-9]*\).*/\1/p')
        [ $((granted + 1)) -le "$max" ] && [ "$inuse" -le "$max" ] ||
                why+=("over-commit: carol got $granted while alice holds 1 of $max")
        [ ${#why[@]} = 0 ] || fail "after the restart: $(IFS=';'; echo "${why[*]}")"
}

check_books_restart() {
        hold_ask
        systemctl restart paddd.service
        books_hold
}

check_books_sigkill() {
        local pid n0
        hold_ask
        pid=$(unit_prop MainPID) n0=$(unit_prop NRestarts)
        kill -KILL "$pid"
        wait_for 30 '[ "$(unit_prop NRestarts)" -gt "$n0" ]' || fail "no restart after SIGKILL"
        wait_for 30 'systemctl is-active paddd.service' || fail "paddd not active again after SIGKILL"
        [ "$(unit_prop MainPID)" != "$pid" ] || fail "MainPID did not change"
        books_hold
}

# ---- the watchdog ----------------------------------------------------------------------

check_watchdog() {
        local pid n0 out
        mkdir -p /etc/systemd/system/paddd.service.d
        printf '[Service]\nWatchdogSec=2s\n' >/etc/systemd/system/paddd.service.d/watchdog.conf
        systemctl daemon-reload
        systemctl restart paddd.service
        [ "$(unit_prop WatchdogUSec)" = 2s ] || fail "WatchdogSec is $(unit_prop WatchdogUSec)"
        pid=$(unit_prop MainPID) n0=$(unit_prop NRestarts)
        kill -STOP "$pid"
        wait_for 40 '[ "$(unit_prop NRestarts)" -gt "$n0" ]' || fail "a stopped paddd was not restarted"
        wait_for 30 'systemctl is-active paddd.service' || fail "paddd not active after the watchdog restart"
        [ "$(unit_prop MainPID)" != "$pid" ] || fail "MainPID did not change"
        journalctl -b -u paddd.service -o cat --no-pager | grep -i watchdog ||
                fail "systemd logged no watchdog timeout"
        out=$(as carol busctl get-property "${BROKER[@]}" MaxHelpers) || fail "the restarted paddd does not answer"
        [ "$out" = "u 4" ] || fail "the restarted paddd answered '$out'"
        rm /etc/systemd/system/paddd.service.d/watchdog.conf
        systemctl daemon-reload
}

# ---- remove and purge ------------------------------------------------------------------

check_remove() {
        apt-get remove -y -q paddd || fail "apt-get remove paddd failed"
        ! systemctl is-active paddd.service || fail "paddd still active after remove"
        [ -e "$CONF" ] || fail "remove dropped the conffile $CONF"
        apt-get purge -y -q paddd || fail "apt-get purge paddd failed"
        [ ! -e "$CONF" ] || fail "purge left the conffile $CONF"
        getent passwd paddd || fail "purge removed the user paddd (Debian keeps system users)"
}

main() {
        local t0=$SECONDS
        echo "guest: booted in $(cut -d' ' -f1 /proc/uptime) s" >&3
        check setup-users setup_users
        check install install_packages
        check sysusers check_sysusers
        check active check_active
        check credentials check_credentials
        check reload check_reload
        check readiness check_readiness
        check activation check_activation
        check policy check_policy
        check admin-group check_admin_group
        check raise-priority check_raise
        check db-install check_db_install
        check_here db-start db_start
        check db-active check_db_active
        check db-file check_db_file
        check db-pool check_db_pool
        check db-brokered check_db_brokered
        check db-stop check_db_stop
        check db-no-lease check_db_no_lease
        check hugetlb-job check_hugetlb_job
        check_here hold-for-status hold_start
        check padctl-status check_status
        check journal check_journal
        check unit-clean check_unit_clean
        hold_stop
        check security check_security
        check_here hold-for-restart hold_start
        check books-restart check_books_restart
        hold_stop
        check_here hold-for-sigkill hold_start
        check books-sigkill check_books_sigkill
        hold_stop
        check watchdog check_watchdog
        check remove-purge check_remove
        echo "guest: checks took $((SECONDS - t0)) s" >&3
        if [ "$FAILED" = 0 ]; then
                echo "SYSTEM-RESULT: PASS $PASSED checks" >&3
        else
                echo "SYSTEM-RESULT: FAIL $FAILED of $((PASSED + FAILED)) checks" >&3
        fi
}

main
