# A real Slurm on one machine, for tests/slurm (sourced, not run).
#
# lab_up N starts munged, slurmctld and N slurmd, each slurm daemon in a
# network namespace of its own with its own hostname (a UTS namespace), so
# the machine looks like a controller "ctl" and compute nodes n0..n(N-1):
#
#   ctl  <LAB_SUBNET>.250     n0 <LAB_SUBNET>.1   n1 .2   n2 .3
#   root namespace <LAB_SUBNET>.254 (sbatch, scontrol and cdeploy run here)
#
# all joined by veth pairs to a bridge device in a switch namespace.
# Nothing of the machine's Slurm or munge is used or touched: the munge key,
# its socket, slurm.conf, spool, state and logs live in LAB_DIR, every
# daemon gets its paths explicitly, and commands find slurm.conf through
# SLURM_CONF (exported by lab_up). The addresses live only inside the
# namespaces and on the root namespace's end of one veth.
#
# lab_down stops everything lab_up started (jobs, daemons, every process in
# the namespaces, the namespaces, links and LAB_DIR); it is safe to call
# twice and after a partial lab_up. Call it from an EXIT trap.
#
# Needs root, iproute2, util-linux (nsenter, unshare), munge, slurmctld and
# slurmd. lab_can_run says whether they are there.

LAB_TAG="cs$$"             # names of namespaces and links; <= 9 characters
LAB_DIR=""
LAB_SUBNET=""
LAB_NODES=0
LAB_PIDS=()                # daemons started by lab_up
LAB_NAMESPACES=()

lab_log() { echo "slurm_lab: $*" >&2; }

# Prints why the lab cannot run here, or nothing when it can.
lab_missing() {
  if [ "$(id -u)" -ne 0 ]; then echo "not root (network namespaces and slurmd need root)"; return; fi
  local tool
  for tool in ip nsenter unshare munged mungekey slurmctld slurmd sbatch scontrol squeue scancel; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$tool is not installed (tools/bootstrap.sh installs munge, slurmctld and slurmd)"
      return
    fi
  done
}

# Removes namespaces and links of earlier runs whose process is gone (a run
# killed before its trap ran).
lab_remove_stale() {
  local name pid
  for name in $(ip netns list | awk '{print $1}'); do
    if [[ $name =~ ^cs([0-9]+)- ]]; then
      pid=${BASH_REMATCH[1]}
      if ! kill -0 "$pid" 2>/dev/null; then lab_kill_netns "$name"; ip netns del "$name" 2>/dev/null; fi
    fi
  done
  for name in $(ip -o link show | awk '{print $2}' | cut -d@ -f1 | tr -d :); do
    if [[ $name =~ ^cs([0-9]+)r$ ]]; then
      pid=${BASH_REMATCH[1]}
      if ! kill -0 "$pid" 2>/dev/null; then ip link del "$name" 2>/dev/null; fi
    fi
  done
}

# A /24 in 10.77.0.0/16 that nothing in the root namespace uses.
lab_pick_subnet() {
  local used third tries
  used="$(ip -4 addr show; ip -4 route show)"
  third=$(( (RANDOM + $$) % 250 + 1 ))
  for ((tries = 0; tries < 250; tries++)); do
    if [[ $used != *"10.77.$third."* ]]; then LAB_SUBNET="10.77.$third"; return 0; fi
    third=$(( third % 250 + 1 ))
  done
  return 1
}

# lab_host NAME LINK_SUFFIX ADDRESS: a namespace with a veth into the switch.
lab_host() {
  local ns="$LAB_TAG-$1" inner="${LAB_TAG}a$2" outer="${LAB_TAG}b$2"
  ip netns add "$ns" || return 1
  LAB_NAMESPACES+=("$ns")
  ip link add "$inner" type veth peer name "$outer" &&
    ip link set "$inner" netns "$ns" &&
    ip link set "$outer" netns "$LAB_TAG-sw" &&
    ip -n "$LAB_TAG-sw" link set "$outer" master br0 &&
    ip -n "$LAB_TAG-sw" link set "$outer" up &&
    ip -n "$ns" addr add "$3/24" dev "$inner" &&
    ip -n "$ns" link set "$inner" up &&
    ip -n "$ns" link set lo up
}

lab_network() {
  ip netns add "$LAB_TAG-sw" || return 1
  LAB_NAMESPACES+=("$LAB_TAG-sw")
  ip -n "$LAB_TAG-sw" link add br0 type bridge && ip -n "$LAB_TAG-sw" link set br0 up || return 1
  lab_host ctl c "$LAB_SUBNET.250" || return 1
  local i
  for ((i = 0; i < LAB_NODES; i++)); do lab_host "n$i" "$i" "$LAB_SUBNET.$((i + 1))" || return 1; done
  ip link add "${LAB_TAG}r" type veth peer name "${LAB_TAG}s" &&
    ip link set "${LAB_TAG}s" netns "$LAB_TAG-sw" &&
    ip -n "$LAB_TAG-sw" link set "${LAB_TAG}s" master br0 &&
    ip -n "$LAB_TAG-sw" link set "${LAB_TAG}s" up &&
    ip addr add "$LAB_SUBNET.254/24" dev "${LAB_TAG}r" &&
    ip link set "${LAB_TAG}r" up
}

lab_write_conf() {
  local i nodes
  nodes="n[0-$((LAB_NODES - 1))]"
  mkdir -p "$LAB_DIR/state" "$LAB_DIR/log" "$LAB_DIR/run"
  for ((i = 0; i < LAB_NODES; i++)); do mkdir -p "$LAB_DIR/spool/n$i"; done
  cat >"$LAB_DIR/slurm.conf" <<EOF
# Written by tests/slurm/slurm_lab.sh for one test run.
ClusterName=cxtest
SlurmctldHost=ctl($LAB_SUBNET.250)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$LAB_DIR/run/munge.socket
CredType=cred/munge
StateSaveLocation=$LAB_DIR/state
SlurmdSpoolDir=$LAB_DIR/spool/%n
SlurmctldPidFile=$LAB_DIR/run/slurmctld.pid
SlurmdPidFile=$LAB_DIR/run/slurmd-%n.pid
SlurmctldLogFile=$LAB_DIR/log/slurmctld.log
SlurmdLogFile=$LAB_DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroup plugin: this machine's cgroups belong to its container, and three
# slurmd on one kernel would share Slurm's cgroup tree. CPUs are bound by
# task/affinity; memory is what --mem says (SLURM_MEM_PER_NODE).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
MinJobAge=30
NodeName=DEFAULT CPUs=$(nproc) RealMemory=2048 State=UNKNOWN
EOF
  for ((i = 0; i < LAB_NODES; i++)); do
    echo "NodeName=n$i NodeAddr=$LAB_SUBNET.$((i + 1))" >>"$LAB_DIR/slurm.conf"
  done
  echo "PartitionName=lab Nodes=$nodes Default=YES MaxTime=30 State=UP" >>"$LAB_DIR/slurm.conf"
}

# lab_spawn NAME HOSTNAME LOG COMMAND...: runs COMMAND in namespace NAME
# with its own hostname, in the background; records its pid.
lab_spawn() {
  local ns="$LAB_TAG-$1" host="$2" log="$3"
  shift 3
  nsenter --net="/run/netns/$ns" unshare --uts -- \
    bash -c 'hostname "$1" && shift && exec "$@"' lab "$host" "$@" >"$log" 2>&1 &
  LAB_PIDS+=($!)
}

# Waits (bounded) until `scontrol show node` says every node is idle.
lab_wait_idle() {
  local deadline=$((SECONDS + 60)) idle
  while ((SECONDS < deadline)); do
    idle=$(sinfo -h -N -t idle -o %N 2>/dev/null | wc -l)
    if ((idle == LAB_NODES)); then return 0; fi
    sleep 0.5
  done
  lab_log "the nodes did not become idle within 60 s:"
  sinfo -N >&2 || true
  return 1
}

# lab_up N: see the top of this file. Returns non-zero (with a message) on failure.
lab_up() {
  LAB_NODES=$1
  lab_remove_stale
  LAB_DIR=$(mktemp -d /tmp/slurm-lab.XXXXXX) || return 1
  chmod 755 "$LAB_DIR"
  lab_pick_subnet || { lab_log "no free 10.77.N.0/24"; return 1; }
  lab_network || { lab_log "cannot build the network namespaces"; return 1; }
  lab_write_conf
  export SLURM_CONF="$LAB_DIR/slurm.conf"
  mungekey --create --keyfile="$LAB_DIR/munge.key" >/dev/null || return 1
  chmod 600 "$LAB_DIR/munge.key"
  munged --foreground --force --socket="$LAB_DIR/run/munge.socket" --key-file="$LAB_DIR/munge.key" \
    --pid-file="$LAB_DIR/run/munged.pid" --seed-file="$LAB_DIR/run/munged.seed" \
    --log-file="$LAB_DIR/log/munged.log" >"$LAB_DIR/log/munged.out" 2>&1 &
  LAB_PIDS+=($!)
  local deadline=$((SECONDS + 20))
  until [ -S "$LAB_DIR/run/munge.socket" ]; do
    if ((SECONDS > deadline)) || ! kill -0 "${LAB_PIDS[-1]}" 2>/dev/null; then
      lab_log "munged did not start:"; cat "$LAB_DIR/log/munged.out" "$LAB_DIR/log/munged.log" >&2 2>/dev/null
      return 1
    fi
    sleep 0.1
  done
  lab_spawn ctl ctl "$LAB_DIR/log/slurmctld.out" slurmctld -D -i -f "$SLURM_CONF"
  local i
  for ((i = 0; i < LAB_NODES; i++)); do
    lab_spawn "n$i" "n$i" "$LAB_DIR/log/slurmd-n$i.out" slurmd -D -f "$SLURM_CONF" -N "n$i"
  done
  lab_wait_idle
}

# Kills every process in namespace $1 (job steps, stray daemons).
lab_kill_netns() {
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
  fi
}

# Prints the logs of the daemons (for a failure).
lab_dump_logs() {
  [ -n "$LAB_DIR" ] || return 0
  local f
  for f in "$LAB_DIR"/log/*; do
    echo "----- ${f##*/} (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
}

lab_down() {
  if [ -n "${SLURM_CONF:-}" ] && [ -n "$LAB_DIR" ] && [ "${#LAB_PIDS[@]}" -gt 2 ]; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  fi
  local pid ns
  for pid in "${LAB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${LAB_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  LAB_PIDS=()
  for ns in "${LAB_NAMESPACES[@]}"; do lab_kill_netns "$ns"; done
  ip link del "${LAB_TAG}r" 2>/dev/null
  for ns in "${LAB_NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  LAB_NAMESPACES=()
  if [ -n "$LAB_DIR" ] && [ -d "$LAB_DIR" ]; then rm -rf "$LAB_DIR"; fi
  LAB_DIR=""
  return 0
}

# Prints what the lab left behind (namespaces, links), nothing when clean.
lab_leftovers() {
  ip netns list | grep "^$LAB_TAG-" || true
  ip -o link show | grep -o "${LAB_TAG}[a-z0-9]*" || true
}
