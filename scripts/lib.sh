# Shared by scripts/demo.sh, tests/soak/run.sh and tests/bench/*.sh;
# sourced, not run.  The script defines say MSG first.
#
#   stop_child PID GRACE   SIGTERM, then SIGKILL if the process has not gone
#                          after GRACE seconds; waits for it and leaves its
#                          exit status in stopped_rc (empty PID: nothing)

stopped_rc=
stop_child() {
	local pid=$1 grace=$2 i
	stopped_rc=
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "pid $pid did not stop in $grace s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null && stopped_rc=0 || stopped_rc=$?
}
