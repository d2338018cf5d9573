# slurm_helpers.sh - a throw-away single-node Slurm (Debian's slurmctld and
# slurmd 22.05) for tests: no munge, no systemd, every path under $1, ports
# picked free, daemons started in the foreground so their PIDs are known and
# killed by slurm_stop.  Configuration from ../shared/TESTSERVERS.md.
# Needs root (SlurmUser=root).  Sets SLURM_CONF for the clients.

slurm_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# slurm_start DIR: writes DIR/slurm.conf, starts both daemons, waits for the
# node to be idle (up to 30 s).  Returns non-zero with a reason on stderr.
slurm_start() {
	_sd=$1; mkdir -p "$_sd/spool" "$_sd/state"
	_host=$(hostname -s)
	for b in slurmctld slurmd sbatch scontrol scancel squeue; do
		command -v $b >/dev/null 2>&1 || { echo "slurm: '$b' not installed (tests/deps.sh installs it)" >&2; return 1; }
	done
	[ "$(id -u)" = 0 ] || { echo "slurm: the test cluster runs as root (SlurmUser=root)" >&2; return 1; }
	cat >"$_sd/slurm.conf" <<EOC
ClusterName=spotruntest
SlurmctldHost=$_host(127.0.0.1)
SlurmctldPort=$(slurm_free_port)
SlurmdPort=$(slurm_free_port)
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=10
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=bf_interval=1,sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
KillWait=5
ReturnToService=2
MpiDefault=none
StateSaveLocation=$_sd/state
SlurmdSpoolDir=$_sd/spool
SlurmctldPidFile=$_sd/slurmctld.pid
SlurmdPidFile=$_sd/slurmd.pid
SlurmctldLogFile=$_sd/slurmctld.log
SlurmdLogFile=$_sd/slurmd.log
NodeName=$_host NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=$_host Default=YES MaxTime=INFINITE State=UP
EOC
	export SLURM_CONF="$_sd/slurm.conf"
	slurmctld -D -i -f "$SLURM_CONF" >"$_sd/slurmctld.out" 2>&1 &
	SLURMCTLD_PID=$!
	slurmd -D -f "$SLURM_CONF" >"$_sd/slurmd.out" 2>&1 &
	SLURMD_PID=$!
	_i=0
	while ! sinfo -h -N -o '%T' 2>/dev/null | grep -q '^idle'; do
		_i=$((_i + 1))
		if [ $_i -ge 300 ]; then
			echo "slurm: node not idle after 30 s; logs:" >&2
			tail -5 "$_sd/slurmctld.log" "$_sd/slurmd.log" "$_sd"/*.out >&2 2>/dev/null
			return 1
		fi
		sleep 0.1
	done
}

slurm_stop() {
	for p in ${SLURMD_PID:-} ${SLURMCTLD_PID:-}; do kill "$p" 2>/dev/null || true; done
	for p in ${SLURMD_PID:-} ${SLURMCTLD_PID:-}; do
		_i=0; while kill -0 "$p" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
		kill -9 "$p" 2>/dev/null || true
	done
	SLURMD_PID=; SLURMCTLD_PID=
}

# slurm_state JOBID: the job's state (RUNNING, PENDING, COMPLETED, ...)
slurm_state() {
	scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n 's/^JobState=//p'
}
slurm_field() { # JOBID FIELD
	scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"
}
