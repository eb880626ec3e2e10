#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for the Slurm tests and for
# trying `[executor] kind = "slurm"`: Debian's slurmctld, slurmd and munge,
# without systemd or cgroups. Needs root (or sudo) to install and start.
#   bash scripts/slurm-dev-cluster.sh start    # install if needed, configure, start, wait until idle
#   bash scripts/slurm-dev-cluster.sh status
#   bash scripts/slurm-dev-cluster.sh stop     # by the pids in the pid files
# The node declares NAS_SLURM_CPUS CPUs (default 4, more than a 2-core machine
# has, with SlurmdParameters=config_overrides) so several 1-CPU trials run at once.
set -euo pipefail

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
conf_dir=/etc/slurm
state_dir=/var/spool/slurmctld
spool_dir=/var/spool/slurmd
log_dir=/var/log/slurm
run_dir=/run/slurm
cpus="${NAS_SLURM_CPUS:-4}"

install() {
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq slurmctld slurmd slurm-client munge
    fi
}

configure() {
    local host mem
    host="$(hostname -s)"
    mem="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
    $sudo mkdir -p "$conf_dir" "$state_dir" "$spool_dir" "$log_dir" "$run_dir"
    $sudo tee "$conf_dir/slurm.conf" >/dev/null <<EOF
# Written by nas-host's scripts/slurm-dev-cluster.sh: one node, no systemd, no cgroups.
ClusterName=nasdev
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${log_dir}/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
StateSaveLocation=${state_dir}
SlurmdSpoolDir=${spool_dir}
SlurmctldPidFile=${run_dir}/slurmctld.pid
SlurmdPidFile=${run_dir}/slurmd.pid
SlurmctldLogFile=${log_dir}/slurmctld.log
SlurmdLogFile=${log_dir}/slurmd.log
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    $sudo mkdir -p /run/munge
    $sudo chown munge:munge /run/munge
    $sudo runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "slurm-dev-cluster: munged did not start" >&2
    exit 1
}

running() {
    local pidfile="$run_dir/$1.pid"
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

start() {
    install
    configure
    start_munge
    running slurmctld || $sudo slurmctld
    running slurmd || $sudo slurmd
    for _ in $(seq 100); do
        if scontrol ping 2>/dev/null | grep -q UP && [ "$(sinfo -h -o %T 2>/dev/null | head -n1)" = idle ]; then
            echo "slurm-dev-cluster: up ($(sinfo -h -o '%N %c CPUs %T'))"
            return
        fi
        sleep 0.2
    done
    echo "slurm-dev-cluster: the cluster did not become idle; see $log_dir/slurmctld.log and slurmd.log" >&2
    exit 1
}

stop() {
    for daemon in slurmd slurmctld; do
        if running "$daemon"; then
            $sudo kill "$(cat "$run_dir/$daemon.pid")"
        fi
    done
    echo "slurm-dev-cluster: stopped"
}

status() {
    if running slurmctld && running slurmd; then
        scontrol ping
        sinfo
        squeue
    else
        echo "slurm-dev-cluster: not running"
        exit 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
