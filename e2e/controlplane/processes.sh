# shellcheck shell=bash disable=SC2154 # `state` and `log` come from the sourcing script
# Shared by cluster-up.sh and node-up.sh (sourced): background processes that outlive the script,
# recorded by pid so the matching -down script stops exactly them. The caller sets `state` (the
# directory with pids/ and logs/) and defines `log`. The command line is kept in argv/<name>
# (NUL-separated, as /proc/<pid>/cmdline) so restart.sh starts the process again exactly as it was.

start() { # start <name> <command...>
  local name=$1; shift
  mkdir -p "$state/argv"
  printf '%s\0' "$@" > "$state/argv/$name"
  setsid nohup "$@" >> "$state/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$state/pids/$name"
  log "started $name (pid $!, log $state/logs/$name.log)"
}

wait_for() { # wait_for <what> <seconds> <command...>
  local what=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt "$deadline" ] || { log "timed out waiting for $what"; return 1; }
    sleep 0.2
  done
}

dump_on_failure() { # the last lines of every log, for a failed start
  log "failed; last log lines:"
  for f in "$state"/logs/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 25 "$f"; }; done >&2
}
