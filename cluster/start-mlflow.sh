#!/usr/bin/env bash
# Start (or restart) the MLflow tracking server on this node, in the background, and wait until it answers.
# Used by the head node's start commands in cluster/aws-gpu.yaml and cluster/onprem.yaml; safe to rerun
# (`ray up` reruns the start commands): a server this script started before is stopped first.
# `start-mlflow.sh --stop` only stops that server (before `ray down` of machines that stay on: onprem.yaml).
#
# Settings: the environment, after sourcing $TUNE_HARDBATCH_MLFLOW_ENV (default ~/.tune-hardbatch/mlflow.env,
# see cluster/mlflow.env.example) when that file exists:
#   MLFLOW_BACKEND_STORE_URI      required: runs, params and metrics; a database that outlives this node
#                                 (postgresql://... on RDS, or sqlite:////mnt/shared/... on a shared disk)
#   MLFLOW_ARTIFACTS_DESTINATION  required: artifacts (plots, tables, checkpoints): s3://bucket/prefix or a
#                                 shared directory; clients upload through this server (--serve-artifacts),
#                                 so only this node needs credentials for it
#   MLFLOW_HOST (0.0.0.0)  MLFLOW_PORT (5000)  MLFLOW_WORKERS (2; 1 for sqlite: a single writer process)
#   MLFLOW_ALLOWED_HOSTS   Host headers accepted (MLflow's default: localhost and private IPs)
#   MLFLOW_STATE_DIR       log and pid file (default ~/.tune-hardbatch)
#   MLFLOW_BIN             the mlflow executable (default: the one on PATH)
set -euo pipefail

stop_only=false
case "${1:-}" in
    --stop) stop_only=true ;;
    "") ;;
    *) echo "usage: $0 [--stop]" >&2; exit 2 ;;
esac

env_file="${TUNE_HARDBATCH_MLFLOW_ENV:-$HOME/.tune-hardbatch/mlflow.env}"
if [ -f "$env_file" ]; then
    set -a  # export every variable the file assigns
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
fi

state_dir="${MLFLOW_STATE_DIR:-$HOME/.tune-hardbatch}"
pid_file="$state_dir/mlflow-server.pid"
log_file="$state_dir/mlflow-server.log"

# Stop the server this script started last time (its whole process group: uvicorn workers included).
stop_server() {
    [ -f "$pid_file" ] || return 0
    local old
    old="$(cat "$pid_file")"
    # (only if that pid is still an mlflow process: pids are reused after a reboot)
    if kill -0 "$old" 2>/dev/null && grep -qa mlflow "/proc/$old/cmdline" 2>/dev/null; then
        kill -TERM -- "-$old" 2>/dev/null || kill -TERM "$old" 2>/dev/null || true
        for _ in $(seq 20); do kill -0 "$old" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$old" 2>/dev/null || true
        echo "stopped the MLflow server (pid $old)"
    fi
    rm -f "$pid_file"
}

if $stop_only; then
    stop_server
    exit 0
fi

: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (in $env_file or the environment)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (in $env_file or the environment)}"
host="${MLFLOW_HOST:-0.0.0.0}"
port="${MLFLOW_PORT:-5000}"
mlflow_bin="${MLFLOW_BIN:-mlflow}"
case "$MLFLOW_BACKEND_STORE_URI" in
    sqlite:*) workers=1 ;;  # several processes writing one sqlite file (worse: over NFS) corrupt it
    *) workers="${MLFLOW_WORKERS:-2}" ;;
esac

mkdir -p "$state_dir"
stop_server

# A local artifacts directory or sqlite file: create its parent (s3:// and postgresql:// need nothing here).
case "$MLFLOW_ARTIFACTS_DESTINATION" in
    /*) mkdir -p "$MLFLOW_ARTIFACTS_DESTINATION" ;;
    file://*) mkdir -p "${MLFLOW_ARTIFACTS_DESTINATION#file://}" ;;
esac
case "$MLFLOW_BACKEND_STORE_URI" in
    sqlite:////*) mkdir -p "$(dirname "/${MLFLOW_BACKEND_STORE_URI#sqlite:////}")" ;;
esac

args=(server --host "$host" --port "$port" --workers "$workers"
      --backend-store-uri "$MLFLOW_BACKEND_STORE_URI"
      --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION")
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then
    args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")
fi

# Its own session and process group (start_new_session): it outlives this shell (ray up's SSH session) and
# the next run can stop all of it. Python rather than `setsid`, which forks when called from a process group
# leader (an interactive shell's background job) and then reports the wrong pid.
python3 - "$log_file" "$mlflow_bin" "${args[@]}" > "$pid_file" <<'EOF'
import subprocess, sys
log = open(sys.argv[1], "ab")
proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True)
print(proc.pid)
EOF

# Wait until it answers (a database migration on first start can take a while).
for _ in $(seq 120); do
    if python3 - "$port" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=2).read()
EOF
    then
        echo "MLflow server on port $port (pid $(cat "$pid_file"), log $log_file)"
        exit 0
    fi
    if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        echo "MLflow server exited; last lines of $log_file:" >&2
        tail -n 20 "$log_file" >&2
        exit 1
    fi
    sleep 1
done
echo "MLflow server did not answer on port $port within 120 s; see $log_file" >&2
exit 1
