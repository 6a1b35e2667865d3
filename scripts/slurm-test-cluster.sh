#!/usr/bin/env bash
# One-node Slurm test cluster on THIS machine, for testing the kit's Slurm executor (submitit) against a real
# slurmctld/slurmd instead of mocks. Debian/Ubuntu with apt, run as root.
#
#   scripts/slurm-test-cluster.sh install     # apt-get the Debian packages (skips what is installed)
#   scripts/slurm-test-cluster.sh start       # munge + MariaDB + slurmdbd + slurmctld + slurmd, wait for node idle
#   scripts/slurm-test-cluster.sh check       # sinfo, sbatch round trip, scancel, sacct
#   scripts/slurm-test-cluster.sh stop        # cancel jobs, stop everything `start` started
#   scripts/slurm-test-cluster.sh status      # which daemons are up
#   scripts/slurm-test-cluster.sh env         # prints `export SLURM_CONF=...`: eval "$(scripts/slurm-test-cluster.sh env)"
#   scripts/slurm-test-cluster.sh available   # exit 0 if it can be set up here, else one line why and exit 1
#   scripts/slurm-test-cluster.sh clean       # stop, then delete the cluster folder (config, state, logs, database)
#
# Everything except the packages and munge lives in one private folder, $SLURM_TEST_CLUSTER_DIR (default
# outputs/slurm-test-cluster/ in the repository, git-ignored): etc/ (slurm.conf, slurmdbd.conf), state/, spool/,
# log/, run/ (pid files, MariaDB socket), mysql/ (MariaDB data). /etc/slurm is never touched, so a host's own
# Slurm config is safe and `clean` really resets; the price is that clients need SLURM_CONF (see `env`).
# Munge is the system one (/etc/munge/munge.key, /run/munge socket): Slurm's clients find it there by default.
#
# Why accounting (slurmdbd + a private MariaDB): submitit learns a job's state ONLY through `sacct`. Without
# accounting storage, sacct fails, submitit treats every job without a result file as UNKNOWN (= still running),
# so a cancelled/killed job is never reported and job.result() waits forever. accounting_storage/slurmdbd is the
# only storage plugin Slurm 22.05 has (filetxt is gone), and slurmdbd only speaks MySQL/MariaDB.
#
# Container quirks handled here (no systemd as PID 1, cgroups not delegated):
#  * Daemons are started directly in daemon mode with pid files, never via systemctl/service. apt's postinst
#    scripts cannot start them either: `install` puts a temporary /usr/sbin/policy-rc.d (exit 101) in place when
#    the machine has none, so MariaDB/munge/slurm do not end up running from the package scripts.
#  * ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, JobAcctGatherType=jobacct_gather/none: nothing
#    needs cgroups. SlurmdParameters=config_overrides: the node is registered with the configured CPUs/memory
#    even if slurmd's own detection (inside a VM/container) disagrees, instead of being DRAINED.
#  * The node's address is 127.0.0.1 (NodeAddr, SlurmctldHost=name(127.0.0.1)): the container's hostname may
#    not resolve. slurmd is started with -N <hostname -s> so it never guesses its node name.
#  * munged is started as user munge (as Debian's init script does) only if no munged answers already; `stop`
#    stops it only if `start` started it.
#  * Job ids must keep increasing across restarts (sacct would otherwise return old records for a reused id):
#    slurmctld keeps its state in state/ and is never started with -c.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${SLURM_TEST_CLUSTER_DIR:-$REPO/outputs/slurm-test-cluster}
ETC=$BASE/etc
CONF=$ETC/slurm.conf
DBD_CONF=$ETC/slurmdbd.conf
STATE=$BASE/state
SPOOL=$BASE/spool
LOGDIR=$BASE/log
RUN=$BASE/run
DBDATA=$BASE/mysql
CLUSTER=${SLURM_TEST_CLUSTER_NAME:-fslibtest}
PARTITION=debug
CTLD_PORT=${SLURM_TEST_CLUSTER_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_TEST_CLUSTER_SLURMD_PORT:-6818}
DBD_PORT=${SLURM_TEST_CLUSTER_DBD_PORT:-6819}
DB_PORT=${SLURM_TEST_CLUSTER_DB_PORT:-13306}
DB_PASS=slurmtest # MariaDB listens on 127.0.0.1 only, for this test cluster
START_TIMEOUT=${SLURM_TEST_CLUSTER_TIMEOUT:-60}
PACKAGES=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server)
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PID=/run/munge/munged.pid

# The clients (sinfo, sbatch, sacct, ...) of this script and of everything it starts read this config.
export SLURM_CONF=$CONF

log() { echo "[slurm-test-cluster] $*"; }
die() {
    echo "[slurm-test-cluster] ERROR: $*" >&2
    exit 1
}
have() { command -v "$1" > /dev/null 2>&1; }
node_name() { hostname -s 2> /dev/null || uname -n | cut -d. -f1; }

# ---------------------------------------------------------------------------------------------------------------
# available / install

why_unavailable() {
    [[ $(uname -s) == Linux ]] || {
        echo "not Linux ($(uname -s))"
        return
    }
    [[ $(id -u) -eq 0 ]] || {
        echo "must run as root (installs packages, starts slurmd/slurmctld as root); running as $(id -un)"
        return
    }
    local missing=() p
    for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
    if ((${#missing[@]})); then
        { have apt-get && have dpkg-query; } || {
            echo "no apt-get/dpkg (not Debian/Ubuntu) and packages missing: ${missing[*]}"
            return
        }
        # (empty package lists are fine: install runs apt-get update)
        [[ -n $(find /etc/apt/sources.list /etc/apt/sources.list.d -type f \( -name '*.list' -o -name '*.sources' \) -size +0 2> /dev/null) ]] || {
            echo "apt has no package sources configured; packages missing: ${missing[*]}"
            return
        }
    fi
    [[ $BASE != *[[:space:]]* ]] || {
        echo "cluster folder path contains whitespace (slurm.conf cannot express it): $BASE"
        return
    }
}

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2> /dev/null) == "install ok installed" ]]; }

cmd_available() {
    local why
    why=$(why_unavailable)
    if [[ -n $why ]]; then
        echo "Slurm test cluster unavailable: $why"
        return 1
    fi
    echo "Slurm test cluster available"
}

cmd_install() {
    local why missing=() p
    why=$(why_unavailable)
    [[ -z $why ]] || die "cannot install: $why"
    for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
    if ((${#missing[@]} == 0)); then
        log "packages already installed: ${PACKAGES[*]}"
        return 0
    fi
    log "installing ${missing[*]} (apt-get, a minute or two) ..."
    # Package scripts must not start daemons (no systemd here; and we start our own, configured, instances).
    local policy=/usr/sbin/policy-rc.d ours_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# temporary, from slurm-test-cluster.sh install\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        ours_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local aptlog rc=0
    aptlog=$(mktemp /tmp/slurm-test-cluster-apt.XXXXXX)
    export DEBIAN_FRONTEND=noninteractive
    # DPkg::Lock::Timeout: wait for another apt/dpkg run (unattended upgrades, a parallel CI step) to finish
    local apt_opts=(-y -qq -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef
        -o Dpkg::Options::=--force-confold --no-install-recommends)
    {
        # apt-get update only when the package lists (often deleted in container images) lack a package
        for p in "${missing[@]}"; do
            if ! apt-cache show "$p" > /dev/null 2>&1; then
                apt-get update -qq -o DPkg::Lock::Timeout=300
                break
            fi
        done
        apt-get install "${apt_opts[@]}" "${missing[@]}"
    } > "$aptlog" 2>&1 || rc=$?
    if ((rc != 0)) && grep -qiE 'unable to locate|has no installation candidate|404|Failed to fetch' "$aptlog"; then
        log "apt-get install failed, retrying after apt-get update"
        { apt-get update -qq -o DPkg::Lock::Timeout=300 && apt-get install "${apt_opts[@]}" "${missing[@]}"; } \
            >> "$aptlog" 2>&1 && rc=0 || rc=$?
    fi
    if ((ours_policy)); then
        rm -f "$policy"
        trap - EXIT
    fi
    if ((rc != 0)); then
        tail -n 30 "$aptlog" >&2
        die "apt-get install ${missing[*]} failed (rc=$rc); full log: $aptlog"
    fi
    rm -f "$aptlog"
    for p in "${PACKAGES[@]}"; do installed "$p" || die "package $p still not installed after apt-get"; done
    log "installed: $(dpkg-query -W -f='${Package} ${Version}  ' slurmctld munge mariadb-server)"
}

# ---------------------------------------------------------------------------------------------------------------
# processes

# Pid from a pid file if that process is alive AND is the daemon the file is named after (a stale pid file
# after a reboot/container restart may name an unrelated process). Zombies count as dead: PID 1 of a container
# may reap daemonised orphans late.
live_pid() {
    local f=$1 pid
    [[ -s $f ]] || return 0
    pid=$(tr -dc '0-9' < "$f")
    [[ -n $pid && -r /proc/$pid/stat ]] || return 0
    [[ $(cat "/proc/$pid/comm" 2> /dev/null) == "$(basename "$f" .pid)" ]] || return 0
    [[ $(sed -E 's/.*\) (.).*/\1/' "/proc/$pid/stat" 2> /dev/null) != Z ]] || return 0
    echo "$pid"
}

# stop_pid NAME PIDFILE [SECONDS]: SIGTERM, wait, SIGKILL
stop_pid() {
    local name=$1 file=$2 secs=${3:-20} pid i
    pid=$(live_pid "$file")
    if [[ -z $pid ]]; then
        rm -f "$file"
        return 0
    fi
    kill -TERM "$pid" 2> /dev/null || true
    for ((i = 0; i < secs * 5; i++)); do
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2> /dev/null; then
        log "$name (pid $pid) ignored SIGTERM for ${secs}s, sending SIGKILL"
        kill -KILL "$pid" 2> /dev/null || true
        sleep 0.5
    fi
    rm -f "$file"
    log "stopped $name (pid $pid)"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.5 s until it succeeds, for at most SECONDS of
# wall time. With WATCH=<pid file> set, give up as soon as that daemon has died (after a 3 s grace for the pid
# file to appear), instead of waiting out the timeout.
wait_for() {
    local what=$1 secs=$2 t0=$SECONDS
    shift 2
    while ((SECONDS - t0 < secs)); do
        if "$@" > /dev/null 2>&1; then return 0; fi
        if [[ -n ${WATCH:-} ]] && ((SECONDS - t0 >= 3)) && [[ -z $(live_pid "$WATCH") ]]; then
            log "$(basename "$WATCH" .pid) died while waiting for $what"
            return 1
        fi
        sleep 0.5
    done
    log "timed out after ${secs}s waiting for $what"
    return 1
}

# Something (not ours) listening on 127.0.0.1:PORT?
port_busy() { timeout 2 bash -c ": > /dev/tcp/127.0.0.1/$1" 2> /dev/null; }
check_port_free() {
    ! port_busy "$2" || die "port $2 (for $1) is already in use by another program (another Slurm/MySQL?):" \
        "stop it or choose another port with $3=<port>"
}

dump_logs() {
    local f
    echo "----- Slurm test cluster logs (folder: $LOGDIR) -----" >&2
    for f in "$LOGDIR"/mariadb.log "$LOGDIR"/slurmdbd.log "$LOGDIR"/slurmctld.log "$LOGDIR"/slurmd.log; do
        [[ -e $f ]] || continue
        echo "----- tail -n 25 $f" >&2
        tail -n 25 "$f" >&2
    done
    if [[ -n $(live_pid "$RUN/slurmctld.pid") ]]; then
        echo "----- sinfo -N -l" >&2
        timeout 15 sinfo -N -l >&2 2>&1 || true
    fi
    echo "----- (full logs stay in $LOGDIR; munged logs to /var/log/munge/munged.log)" >&2
}

fail_start() {
    echo "[slurm-test-cluster] ERROR: $*" >&2
    dump_logs
    exit 1
}

# ---------------------------------------------------------------------------------------------------------------
# start

munge_ok() { munge -n 2> /dev/null | unmunge > /dev/null 2>&1; }

start_munge() {
    if munge_ok; then
        log "munged already running"
        return 0
    fi
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating munge key $MUNGE_KEY"
        install -d -o munge -g munge -m 700 /etc/munge
        if have mungekey; then
            mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 400 "$MUNGE_KEY"
    # the dirs Debian's init script/tmpfiles would create (no systemd here)
    install -d -o munge -g munge -m 755 /run/munge
    install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
    # a stale socket/pid from a killed munged blocks a new one
    [[ -n $(live_pid "$MUNGE_PID") ]] || rm -f "$MUNGE_PID" /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged || fail_start "munged did not start (see /var/log/munge/munged.log)"
    wait_for "munged" 10 munge_ok || fail_start "munge -n | unmunge fails"
    echo started > "$RUN/munged.ours"
    log "started munged (pid $(live_pid "$MUNGE_PID"))"
}

db() { mariadb --no-defaults -S "$RUN/mysqld.sock" -u root "$@"; }

start_mariadb() {
    if [[ -n $(live_pid "$RUN/mariadbd.pid") ]]; then
        log "MariaDB already running"
        return 0
    fi
    if [[ ! -d $DBDATA/mysql ]]; then
        rm -rf "$DBDATA"
        mkdir -p "$DBDATA"
        log "initialising MariaDB data in $DBDATA"
        mariadb-install-db --no-defaults --user=root --datadir="$DBDATA" --auth-root-authentication-method=socket \
            --skip-test-db > "$LOGDIR/mariadb-install.log" 2>&1 || fail_start "mariadb-install-db failed"
    fi
    rm -f "$RUN/mysqld.sock"
    # Small footprint; TCP on 127.0.0.1 only (slurmdbd cannot be pointed at a custom unix socket).
    setsid mariadbd --no-defaults --user=root --datadir="$DBDATA" --socket="$RUN/mysqld.sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$RUN/mariadbd.pid" --log-error="$LOGDIR/mariadb.log" \
        --skip-name-resolve --innodb-buffer-pool-size=128M --innodb-log-file-size=64M \
        --innodb-lock-wait-timeout=900 --max-allowed-packet=16M < /dev/null > /dev/null 2>&1 &
    WATCH=$RUN/mariadbd.pid wait_for "MariaDB" "$START_TIMEOUT" db -e 'SELECT 1' || fail_start "MariaDB did not come up"
    # idempotent, so a start interrupted after mariadb-install-db still ends up with the user
    db -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
           CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" || fail_start "creating the MariaDB user failed"
    log "started MariaDB (pid $(live_pid "$RUN/mariadbd.pid"), 127.0.0.1:$DB_PORT)"
}

write_configs() {
    local node=$1 topo cpus mem total margin
    # Topology from slurmd -C (what slurmd itself will detect), memory from /proc/meminfo minus a margin.
    topo=$(slurmd -C 2> /dev/null | head -n 1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ' || true)
    [[ $topo == *CPUs=* ]] || topo="CPUs=$(nproc)"
    cpus=$(sed -E 's/.*CPUs=([0-9]+).*/\1/' <<< "$topo")
    total=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    margin=$((total / 10 > 512 ? total / 10 : 512))
    mem=$((total - margin))
    ((mem >= 1024)) || mem=$((total / 2))
    # write to a temp file and move: a concurrent reader never sees half a file
    cat > "$CONF.tmp" << EOF
# Generated by scripts/slurm-test-cluster.sh on $(date -Is); rewritten by every 'start'.
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no systemd, no delegated cgroups in a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
MpiDefault=none
SwitchType=switch/none
LaunchType=launch/slurm
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
# accounting through slurmdbd: submitit reads job states with sacct
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
JobCompType=jobcomp/none
MailProg=/bin/true
# quick turnarounds for tests
KillWait=5
MinJobAge=300
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=20
DefMemPerCPU=512
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node $topo RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
    chmod 644 "$CONF"
    # slurmdbd.conf must be 0600 and owned by SlurmUser; slurmdbd finds it next to $SLURM_CONF
    (
        umask 077
        cat > "$DBD_CONF.tmp" << EOF
# Generated by scripts/slurm-test-cluster.sh on $(date -Is)
AuthType=auth/munge
DbdHost=$node
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOGDIR/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    )
    mv "$DBD_CONF.tmp" "$DBD_CONF"
    chmod 600 "$DBD_CONF"
    log "wrote $CONF (node $node: ${cpus} CPUs, RealMemory=${mem} MB) and $DBD_CONF"
}

node_state() { timeout 15 sinfo -h -n "$1" -o %t 2> /dev/null | head -n 1; }
node_idle() { [[ $(node_state "$1") == idle ]]; }
cluster_registered() { timeout 15 sacctmgr -n -P show cluster format=cluster 2> /dev/null | grep -qx "$CLUSTER"; }

print_env_hint() {
    log "cluster up: partition '$PARTITION', node $1, logs in $LOGDIR"
    log "clients need the config path; run:  eval \"\$($REPO/scripts/slurm-test-cluster.sh env)\""
    echo "export SLURM_CONF=$CONF"
}

cmd_start() {
    local why node
    why=$(why_unavailable)
    [[ -z $why ]] || die "cannot start: $why"
    for b in slurmctld slurmd slurmdbd sinfo munged mariadbd mariadb-install-db; do
        have "$b" || die "$b not found: run '$0 install' first"
    done
    node=$(node_name)
    mkdir -p "$ETC" "$STATE" "$SPOOL/slurmd" "$LOGDIR" "$RUN"
    chmod 755 "$BASE" "$ETC"

    # Already up (second 'start')? Then only make sure the node is idle.
    if [[ -n $(live_pid "$RUN/slurmctld.pid") && -n $(live_pid "$RUN/slurmd.pid") && -n $(live_pid "$RUN/slurmdbd.pid") ]] &&
        munge_ok && timeout 15 scontrol ping > /dev/null 2>&1; then
        log "already running"
        wait_for "node $node idle" "$START_TIMEOUT" node_idle "$node" || fail_start "node $node is '$(node_state "$node")', not idle"
        print_env_hint "$node"
        return 0
    fi
    # Partly up or leftovers of a killed run: stop what is there, start clean (state/ and the database stay).
    if [[ -n $(live_pid "$RUN/slurmctld.pid")$(live_pid "$RUN/slurmd.pid")$(live_pid "$RUN/slurmdbd.pid") ]]; then
        log "found a partly running cluster, restarting it"
        stop_slurm_daemons
    fi

    # fail fast (and clearly) if another program holds a port we need
    check_port_free slurmctld "$CTLD_PORT" SLURM_TEST_CLUSTER_CTLD_PORT
    check_port_free slurmd "$SLURMD_PORT" SLURM_TEST_CLUSTER_SLURMD_PORT
    [[ -n $(live_pid "$RUN/slurmdbd.pid") ]] || check_port_free slurmdbd "$DBD_PORT" SLURM_TEST_CLUSTER_DBD_PORT
    [[ -n $(live_pid "$RUN/mariadbd.pid") ]] || check_port_free MariaDB "$DB_PORT" SLURM_TEST_CLUSTER_DB_PORT

    write_configs "$node"
    start_munge
    start_mariadb

    if [[ -z $(live_pid "$RUN/slurmdbd.pid") ]]; then
        rm -f "$RUN/slurmdbd.pid"
        slurmdbd || fail_start "slurmdbd failed to start"
    fi
    WATCH=$RUN/slurmdbd.pid wait_for "slurmdbd" "$START_TIMEOUT" timeout 15 sacctmgr -n show cluster || fail_start "slurmdbd does not answer"
    log "slurmdbd up (pid $(live_pid "$RUN/slurmdbd.pid"))"
    # Register the cluster before slurmctld starts (otherwise it runs without accounting until re-registered).
    if ! cluster_registered; then
        sacctmgr -i add cluster "$CLUSTER" > /dev/null || fail_start "sacctmgr add cluster $CLUSTER failed"
    fi

    rm -f "$RUN/slurmctld.pid" "$RUN/slurmd.pid"
    slurmctld -f "$CONF" || fail_start "slurmctld failed to start"
    WATCH=$RUN/slurmctld.pid wait_for "slurmctld" "$START_TIMEOUT" timeout 15 scontrol ping || fail_start "slurmctld does not answer scontrol ping"
    log "slurmctld up (pid $(live_pid "$RUN/slurmctld.pid"))"

    slurmd -f "$CONF" -N "$node" || fail_start "slurmd failed to start"
    if ! WATCH=$RUN/slurmd.pid wait_for "node $node idle" "$START_TIMEOUT" node_idle "$node"; then
        [[ -n $(live_pid "$RUN/slurmd.pid") ]] || fail_start "slurmd is not running"
        # a node left DOWN/DRAIN by an earlier run (e.g. killed slurmd) is resumed once
        case $(node_state "$node") in
            down* | drain* | drng* | fail*)
                log "node state $(node_state "$node"), resuming it"
                scontrol update nodename="$node" state=resume || true
                wait_for "node $node idle" 20 node_idle "$node" || fail_start "node $node is '$(node_state "$node")', not idle"
                ;;
            *) fail_start "node $node is '$(node_state "$node")', not idle" ;;
        esac
    fi
    log "slurmd up (pid $(live_pid "$RUN/slurmd.pid")), node $node idle"
    print_env_hint "$node"
}

# ---------------------------------------------------------------------------------------------------------------
# check

job_in_queue() { [[ -n $(timeout 15 squeue -h -j "$1" -o %i 2> /dev/null) ]]; }
job_gone() { ! job_in_queue "$1"; }
job_running() { [[ $(timeout 15 squeue -h -j "$1" -o %T 2> /dev/null) == RUNNING ]]; }
# sacct's State for the job (without its steps), e.g. COMPLETED, "CANCELLED by 0"
sacct_state() { timeout 15 sacct -n -P -X -j "$1" -o State 2> /dev/null | head -n 1; }
sacct_has() { [[ $(sacct_state "$1") == "$2"* ]]; }

cmd_check() {
    local node out jid jid2 t0
    node=$(node_name)
    scontrol ping > /dev/null 2>&1 || die "slurmctld does not answer: run '$0 start' first"
    log "sinfo:"
    sinfo
    node_idle "$node" || wait_for "node $node idle" 30 node_idle "$node" || die "node $node is '$(node_state "$node")'"

    out=$(mktemp -d /tmp/slurm-test-cluster-check.XXXXXX)
    t0=$SECONDS
    # shellcheck disable=SC2016  # $(hostname -s) is for the job's shell
    jid=$(sbatch --parsable -p "$PARTITION" -t 1 -o "$out/ok-%j.out" --wrap 'echo ok; echo host=$(hostname -s)') ||
        die "sbatch failed"
    jid=${jid%%;*}
    log "submitted job $jid"
    wait_for "job $jid to leave the queue" 60 job_gone "$jid" || die "job $jid still queued: $(squeue -h -j "$jid")"
    wait_for "output of job $jid" 10 grep -qx ok "$out/ok-$jid.out" ||
        die "job $jid output missing/wrong: $(cat "$out/ok-$jid.out" 2> /dev/null)"
    log "job $jid done in $((SECONDS - t0))s, output: $(tr '\n' ' ' < "$out/ok-$jid.out")"
    wait_for "sacct COMPLETED for $jid" 30 sacct_has "$jid" COMPLETED || die "sacct state of $jid: '$(sacct_state "$jid")'"
    log "sacct: job $jid $(sacct_state "$jid")"

    jid2=$(sbatch --parsable -p "$PARTITION" -t 5 -o "$out/sleep-%j.out" --wrap 'sleep 300') || die "sbatch failed"
    jid2=${jid2%%;*}
    wait_for "job $jid2 RUNNING" 30 job_running "$jid2" || die "job $jid2 not running: $(squeue -h -j "$jid2")"
    scancel "$jid2"
    wait_for "job $jid2 to leave the queue after scancel" 30 job_gone "$jid2" || die "job $jid2 still queued after scancel"
    wait_for "sacct CANCELLED for $jid2" 30 sacct_has "$jid2" CANCELLED || die "sacct state of $jid2: '$(sacct_state "$jid2")'"
    log "scancel: job $jid2 left the queue, sacct: $(sacct_state "$jid2")"
    node_idle "$node" || wait_for "node $node idle again" 30 node_idle "$node" || die "node $node is '$(node_state "$node")'"
    rm -rf "$out"
    log "check passed"
}

# ---------------------------------------------------------------------------------------------------------------
# stop / status / clean

stop_slurm_daemons() {
    local i
    if [[ -n $(live_pid "$RUN/slurmctld.pid") ]] && timeout 15 scontrol ping > /dev/null 2>&1; then
        # running jobs would otherwise outlive slurmd (their slurmstepd are separate processes)
        if [[ -n $(squeue -h -o %i 2> /dev/null) ]]; then
            log "cancelling remaining jobs: $(squeue -h -o %i | tr '\n' ' ')"
            squeue -h -o %i 2> /dev/null | xargs -r scancel 2> /dev/null || true
            for ((i = 0; i < 40; i++)); do
                [[ -z $(squeue -h -t RUNNING,COMPLETING -o %i 2> /dev/null) ]] && break
                sleep 0.5
            done
        fi
        # stops slurmctld and every slurmd of the cluster
        scontrol shutdown > /dev/null 2>&1 || true
        for ((i = 0; i < 50; i++)); do
            [[ -z $(live_pid "$RUN/slurmctld.pid")$(live_pid "$RUN/slurmd.pid") ]] && break
            sleep 0.2
        done
        [[ -n $(live_pid "$RUN/slurmctld.pid")$(live_pid "$RUN/slurmd.pid") ]] || log "scontrol shutdown stopped slurmctld and slurmd"
    fi
    stop_pid slurmd "$RUN/slurmd.pid"
    stop_pid slurmctld "$RUN/slurmctld.pid"
}

cmd_stop() {
    [[ -d $RUN ]] || {
        log "nothing to stop ($RUN does not exist)"
        return 0
    }
    stop_slurm_daemons
    stop_pid slurmdbd "$RUN/slurmdbd.pid"
    stop_pid MariaDB "$RUN/mariadbd.pid" 60
    if [[ -e $RUN/munged.ours ]]; then
        stop_pid munged "$MUNGE_PID"
        rm -f "$RUN/munged.ours"
    fi
    log "stopped"
}

cmd_status() {
    local d pid rc=0
    for d in slurmctld slurmd slurmdbd mariadbd; do
        pid=$(live_pid "$RUN/$d.pid")
        if [[ -n $pid ]]; then printf '%-10s running (pid %s)\n' "$d" "$pid"; else printf '%-10s stopped\n' "$d"; fi
        [[ -n $pid ]] || rc=3
    done
    if munge_ok; then printf '%-10s %s\n' munged running; else printf '%-10s %s\n' munged "not answering"; fi
    if [[ $rc == 0 ]]; then timeout 15 sinfo -N -l || true; fi
    return $rc
}

cmd_env() { echo "export SLURM_CONF=$CONF"; }

cmd_clean() {
    cmd_stop
    [[ $BASE == */slurm-test-cluster* ]] || die "refusing to delete $BASE (not a slurm-test-cluster folder)"
    rm -rf "$BASE"
    log "removed $BASE"
}

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case ${1:-} in
    install) cmd_install ;;
    start) cmd_start ;;
    check) cmd_check ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    available) cmd_available ;;
    clean) cmd_clean ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
