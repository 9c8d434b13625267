# shellcheck shell=bash
# A throwaway one-node SLURM cluster for the integration tests (sourced).
#
#   source tests/slurm/cluster.sh
#   cluster_start DIR [REGISTRY]  # munged + slurmctld + slurmd under DIR; exports SLURM_CONF
#   ...sbatch / scontrol...
#   cluster_stop                  # stop the daemons by their PIDs (never by name)
#
# Nothing is installed or written outside DIR: no systemd, no /etc/slurm, no
# /etc/munge. Ports are picked at random among free ones, so a real slurmctld
# on this machine, or another test cluster, is left alone.
#
# The daemons run in the foreground as children of the calling shell: a
# ctest timeout, which kills the test's process tree, takes them along, and
# cluster_stop reaps them (a daemon that forks away and is killed can stay a
# zombie here, since PID 1 does not reap). REGISTRY, if given, is a file
# where "pid start-time" of each daemon is recorded; cluster_start first
# stops what an earlier run killed with SIGKILL left in it (a PID counts only
# if its start time still matches, so a reused PID is never signalled).
#
# cluster_start returns 77 (ctest's SKIP code here) with the reason on stderr
# when the cluster cannot be had on this machine: a missing program, not root,
# or a daemon that will not start (its log is printed).

CLUSTER_DIR=
CLUSTER_REGISTRY=
CLUSTER_PIDS=() # in order of start: munged, slurmctld, slurmd

# Field 22 of /proc/PID/stat (start time in clock ticks), or nothing.
cluster_starttime() {
  local stat f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # fields after "(comm) "
  read -r -a f <<<"$stat"
  echo "${f[19]}" # field 22 overall = index 19 after pid and comm
}

# True if PID runs and is not a zombie.
cluster_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

cluster_skip() {
  echo "SKIP: $*" >&2
  return 77
}

# A TCP port nobody listens on (random in 20000..59999).
cluster_free_port() {
  local port used
  used=$(ss -Htan 2>/dev/null | awk '{print $4}' | sed -E 's/.*:([0-9]+)$/\1/' | sort -u)
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    grep -qx "$port" <<<"$used" || { echo "$port"; return 0; }
  done
  return 1
}

# cluster_wait_for SECONDS CMD...: until CMD succeeds.
cluster_wait_for() {
  local t=$1 i
  shift
  for ((i = 0; i < t * 5; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

cluster_log_tail() {
  local f
  for f in "$CLUSTER_DIR"/log/*; do
    [[ -s "$f" ]] && { echo "---- $f (last 15 lines)" >&2; tail -n 15 "$f" >&2; }
  done
}

cluster_node_idle() {
  [[ "$(sinfo -h -N -o %t 2>/dev/null)" == idle* ]]
}

# cluster_spawn NAME CMD...: start a foreground daemon, remember its PID.
cluster_spawn() {
  local name=$1 pid
  shift
  "$@" >"$CLUSTER_DIR/log/$name.out" 2>&1 &
  pid=$!
  CLUSTER_PIDS+=("$pid")
  [[ -n "$CLUSTER_REGISTRY" ]] && echo "$pid $(cluster_starttime "$pid")" >>"$CLUSTER_REGISTRY"
  sleep 0.2
  cluster_alive "$pid"
}

# Daemons listed in REGISTRY by a run that could not clean up (SIGKILL).
cluster_stop_stale() {
  local pid st now
  [[ -s "$1" ]] || return 0
  while read -r pid st; do
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    now=$(cluster_starttime "$pid") || continue
    if [[ "$now" == "$st" ]] && cluster_alive "$pid"; then
      echo "cluster: stopping daemon $pid left by an earlier run" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
  done <"$1"
  rm -f "$1"
}

cluster_start() {
  CLUSTER_DIR=$(realpath -m "$1")
  CLUSTER_REGISTRY=${2:-}
  local p
  export PATH=$PATH:/usr/sbin:/sbin
  for p in munged mungekey slurmctld slurmd sbatch srun scontrol sinfo squeue scancel ss; do
    command -v "$p" >/dev/null 2>&1 ||
      { cluster_skip "$p not found (Debian: apt-get install slurm-wlm slurmctld slurmd slurm-client munge)"; return; }
  done
  [[ $(id -u) -eq 0 ]] || { cluster_skip "the test cluster runs slurmd as root (SlurmUser=root); run as root"; return; }
  [[ -n "$CLUSTER_REGISTRY" ]] && cluster_stop_stale "$CLUSTER_REGISTRY"

  rm -rf "$CLUSTER_DIR"
  mkdir -p "$CLUSTER_DIR"/{munge,state,spool,log,run}
  chmod 700 "$CLUSTER_DIR" "$CLUSTER_DIR/munge"

  # munge: its own key, socket and pid file.
  local m=$CLUSTER_DIR/munge
  mungekey --create --keyfile="$m/munge.key" >"$CLUSTER_DIR/log/mungekey.out" 2>&1 ||
    { cluster_log_tail; cluster_skip "mungekey failed"; return; }
  chmod 400 "$m/munge.key"
  cluster_spawn munged munged --foreground --force --key-file="$m/munge.key" --socket="$m/munge.socket" \
    --pid-file="$m/munged.pid" --log-file="$CLUSTER_DIR/log/munged.log" --seed-file="$m/munge.seed" ||
    { cluster_log_tail; cluster_skip "munged did not start"; return; }
  cluster_wait_for 5 test -S "$m/munge.socket" || { cluster_log_tail; cluster_skip "munged socket missing"; return; }

  # slurm.conf: one node (this machine, as slurmd -C describes it), one partition.
  local host ctld_port slurmd_port node
  host=$(hostname -s)
  if ! ctld_port=$(cluster_free_port) || ! slurmd_port=$(cluster_free_port); then
    cluster_skip "no free TCP port found"
    return
  fi
  [[ "$ctld_port" != "$slurmd_port" ]] || slurmd_port=$((ctld_port + 1))
  node=$(slurmd -C 2>/dev/null | head -n 1)
  [[ "$node" == NodeName=* ]] || { cluster_skip "slurmd -C did not describe this node"; return; }
  cat >"$CLUSTER_DIR/slurm.conf" <<EOF
# Generated by tests/slurm/cluster.sh for one test run; deleted afterwards.
ClusterName=attribtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire=10: the default 120 s would hold a requeued job for 2 minutes.
AuthInfo=socket=$m/munge.socket,cred_expire=10
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$CLUSTER_DIR/log/jobcomp.txt
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=sched_interval=5
JobRequeue=1
ReturnToService=2
MailProg=/bin/true
PlugStackConfig=$CLUSTER_DIR/plugstack.conf
StateSaveLocation=$CLUSTER_DIR/state
SlurmdSpoolDir=$CLUSTER_DIR/spool
SlurmctldPidFile=$CLUSTER_DIR/run/slurmctld.pid
SlurmdPidFile=$CLUSTER_DIR/run/slurmd.pid
SlurmctldLogFile=$CLUSTER_DIR/log/slurmctld.log
SlurmdLogFile=$CLUSTER_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  : >"$CLUSTER_DIR/plugstack.conf"
  export SLURM_CONF=$CLUSTER_DIR/slurm.conf
  # Client commands must not pick up a site's settings from the environment.
  unset SLURM_JOB_ID SLURM_JOBID SBATCH_PARTITION SLURM_PARTITION SQUEUE_FORMAT SINFO_FORMAT

  cluster_spawn slurmctld slurmctld -D -i -f "$SLURM_CONF" ||
    { cluster_log_tail; cluster_skip "slurmctld did not start"; return; }
  cluster_wait_for 20 scontrol ping ||
    { cluster_log_tail; cluster_skip "slurmctld does not answer (port $ctld_port)"; return; }
  scontrol ping | grep -q UP || { cluster_log_tail; cluster_skip "slurmctld is not UP"; return; }

  cluster_spawn slurmd slurmd -D -f "$SLURM_CONF" -N "$host" ||
    { cluster_log_tail; cluster_skip "slurmd did not start"; return; }
  cluster_wait_for 30 cluster_node_idle ||
    { cluster_log_tail; sinfo -N >&2; cluster_skip "node $host did not become idle (slurmd port $slurmd_port)"; return; }
  echo "cluster: slurmctld :$ctld_port, slurmd :$slurmd_port, node $host idle ($CLUSTER_DIR)"
}

# Cancel what is left and wait (15 s at most) for its processes to end, then
# TERM each daemon (slurmd, slurmctld, munged), KILL one still alive after
# 10 s, and reap it. Safe to call twice or after a partial start.
cluster_stop() {
  [[ -n "$CLUSTER_DIR" ]] || return 0
  local i t pid
  if [[ -n "${SLURM_CONF:-}" ]] && ((${#CLUSTER_PIDS[@]} >= 2)) && cluster_alive "${CLUSTER_PIDS[1]}"; then
    scancel --user=root >/dev/null 2>&1
    # slurmd ends the jobs' steps (their processes descend from it).
    for ((i = 0; i < 75; i++)); do
      [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break
      sleep 0.2
    done
  fi
  for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${CLUSTER_PIDS[$i]}
    kill -TERM "$pid" 2>/dev/null
    for ((t = 0; t < 50; t++)); do cluster_alive "$pid" || break; sleep 0.2; done
    cluster_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  CLUSTER_PIDS=()
  [[ -n "$CLUSTER_REGISTRY" ]] && rm -f "$CLUSTER_REGISTRY"
  return 0
}
