#!/usr/bin/env bash
# Start (or restart) the MLflow tracking server on this node, in the background, and wait until it answers.
# Used by the head node's start commands in cluster/aws-gpu.yaml and cluster/onprem.yaml; safe to rerun
# (`ray up` reruns the start commands): a server this script started before is stopped first.
# `start-mlflow.sh --stop` only stops that server (before `ray down` of machines that stay on: onprem.yaml).
# `start-mlflow.sh --foreground` runs the server in this process instead (the MLflow container of
# cluster/kuberay.yaml): the same checks and settings, no pid file, nothing stopped.
#
# Settings: the environment, after sourcing $TUNE_HARDBATCH_MLFLOW_ENV (default ~/.tune-hardbatch/mlflow.env,
# see cluster/mlflow.env.example) when that file exists:
#   MLFLOW_BACKEND_STORE_URI      required: runs, params and metrics; a database that outlives this node
#                                 (postgresql://... on RDS, or sqlite:////mnt/shared/... on a shared disk)
#   MLFLOW_ARTIFACTS_DESTINATION  required: artifacts (plots, tables, checkpoints): s3://bucket/prefix or a
#                                 shared directory; clients upload through this server (--serve-artifacts),
#                                 so only this node needs credentials for it
#   MLFLOW_HOST (127.0.0.1)  MLFLOW_PORT (5000)  MLFLOW_WORKERS (2; 1 for sqlite: a single writer process)
#   MLFLOW_AUTH (none)     basic: MLflow's basic-auth app (users, passwords, permissions); required for an
#                          MLFLOW_HOST other than the loopback, unless MLFLOW_ALLOW_UNAUTHENTICATED_WIDE=yes
#   MLFLOW_AUTH_ADMIN_PASSWORD       with basic: required, >= 12 characters; creates the admin user at the
#                                    first start only (rotation: docs/CLUSTER.md, Security)
#   MLFLOW_AUTH_ADMIN_USERNAME (admin)  MLFLOW_AUTH_DEFAULT_PERMISSION (READ, or NO_PERMISSIONS)
#   MLFLOW_AUTH_DATABASE_URI  users and permissions (default for a sqlite store: mlflow-auth.db beside it;
#                             required for any other store)
#   MLFLOW_FLASK_SERVER_SECRET_KEY   the auth app's CSRF key (default: one made once in MLFLOW_STATE_DIR)
#   MLFLOW_ALLOWED_HOSTS   Host headers accepted (MLflow's default: localhost and private IPs)
#   MLFLOW_STATE_DIR       log, pid file, auth settings (default ~/.tune-hardbatch)
#   MLFLOW_BIN             the mlflow executable (default: the one on PATH)
set -euo pipefail

mode=background
case "${1:-}" in
    --stop) mode=stop ;;
    --foreground) mode=foreground ;;
    "") ;;
    *) echo "usage: $0 [--stop | --foreground]" >&2; exit 2 ;;
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

if [ "$mode" = stop ]; then
    stop_server
    exit 0
fi

# A setting that would start an unsafe or broken server: one line, exit 2, nothing stopped or started.
refuse() {
    echo "error: $1" >&2
    exit 2
}

: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI (in $env_file or the environment)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION (in $env_file or the environment)}"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
mlflow_bin="${MLFLOW_BIN:-mlflow}"
case "$MLFLOW_BACKEND_STORE_URI" in
    sqlite:*) workers=1 ;;  # several processes writing one sqlite file (worse: over NFS) corrupt it
    *) workers="${MLFLOW_WORKERS:-2}" ;;
esac

case "${MLFLOW_AUTH:-none}" in
    none | "") auth=false ;;
    basic) auth=true ;;
    *) refuse "MLFLOW_AUTH: '${MLFLOW_AUTH}' is neither basic nor none" ;;
esac

# Only the search driver on this node needs the server; everyone else comes through an SSH tunnel or
# `kubectl port-forward`, which both arrive on the loopback. Anything wider without authentication lets
# whoever reaches the port read, change and delete every run, and store files with this node's credentials.
loopback=false
case "$host" in
    localhost | ::1 | "[::1]") loopback=true ;;
    *) [[ "$host" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] && loopback=true ;;
esac
if ! $loopback; then
    if ! $auth && [ "${MLFLOW_ALLOW_UNAUTHENTICATED_WIDE:-}" != yes ]; then
        refuse "MLFLOW_HOST: $host without MLFLOW_AUTH=basic lets anyone who reaches port $port read, change and delete every run and upload files with this node's artifact-store credentials; set MLFLOW_AUTH=basic, keep MLFLOW_HOST=127.0.0.1 (SSH tunnel), or set MLFLOW_ALLOW_UNAUTHENTICATED_WIDE=yes as well"
    fi
    $auth || echo "warning: MLFLOW_HOST: $host without authentication (MLFLOW_ALLOW_UNAUTHENTICATED_WIDE=yes)" >&2
fi

args=(server --host "$host" --port "$port" --workers "$workers"
      --backend-store-uri "$MLFLOW_BACKEND_STORE_URI"
      --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION")
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then
    args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")
fi

if $auth; then
    admin_user="${MLFLOW_AUTH_ADMIN_USERNAME:-admin}"
    password="${MLFLOW_AUTH_ADMIN_PASSWORD:-}"
    [ -n "$password" ] \
        || refuse "MLFLOW_AUTH_ADMIN_PASSWORD: required with MLFLOW_AUTH=basic; set it in $env_file (12 characters or more, e.g. from: openssl rand -base64 24)"
    case "$password" in
        *REPLACE_ME* | *CHANGE_ME* | password1234)
            refuse "MLFLOW_AUTH_ADMIN_PASSWORD: still the placeholder of mlflow.env.example; set a password of your own in $env_file" ;;
    esac
    [ "${#password}" -ge 12 ] \
        || refuse "MLFLOW_AUTH_ADMIN_PASSWORD: MLflow wants 12 characters or more (e.g. from: openssl rand -base64 24)"
    permission="${MLFLOW_AUTH_DEFAULT_PERMISSION:-READ}"
    case "$permission" in
        READ | NO_PERMISSIONS) ;;
        *) refuse "MLFLOW_AUTH_DEFAULT_PERMISSION: '$permission' would let every account change runs it was not given; use READ or NO_PERMISSIONS and grant more per experiment" ;;
    esac
    # Users and permissions must outlive the node like the runs do: beside a sqlite store by default.
    auth_db="${MLFLOW_AUTH_DATABASE_URI:-}"
    if [ -z "$auth_db" ]; then
        case "$MLFLOW_BACKEND_STORE_URI" in
            sqlite:///*) auth_db="sqlite:///$(dirname "${MLFLOW_BACKEND_STORE_URI#sqlite:///}")/mlflow-auth.db" ;;
            *) refuse "MLFLOW_AUTH_DATABASE_URI: required with MLFLOW_AUTH=basic and a ${MLFLOW_BACKEND_STORE_URI%%:*} store; e.g. a second database on the same server (postgresql://USER:PASSWORD@HOST:5432/mlflow_auth)" ;;
        esac
    fi
fi

mkdir -p "$state_dir"
[ "$mode" = foreground ] || stop_server

# A local artifacts directory or sqlite file: create its parent (s3:// and postgresql:// need nothing here).
case "$MLFLOW_ARTIFACTS_DESTINATION" in
    /*) mkdir -p "$MLFLOW_ARTIFACTS_DESTINATION" ;;
    file://*) mkdir -p "${MLFLOW_ARTIFACTS_DESTINATION#file://}" ;;
esac
for uri in "$MLFLOW_BACKEND_STORE_URI" "${auth_db:-}"; do
    case "$uri" in
        sqlite:////*) mkdir -p "$(dirname "/${uri#sqlite:////}")" ;;
    esac
done

if $auth; then
    # The settings file may hold a database password: readable by this user only. The admin password is not
    # written anywhere: MLflow reads MLFLOW_AUTH_ADMIN_PASSWORD from the environment (exported below), and
    # uses it only to create the admin user in an empty auth database.
    ini="$state_dir/mlflow-auth.ini"
    key_file="$state_dir/mlflow-flask-secret-key"
    (
        umask 077
        if [ -z "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ] && [ ! -s "$key_file" ]; then
            python3 -c 'import secrets; print(secrets.token_hex(32))' > "$key_file"
        fi
        # (MLflow reads it with configparser, to which a % starts an interpolation: URL-encoded passwords)
        cat > "$ini" <<INI
[mlflow]
default_permission = $permission
database_uri = ${auth_db//%/%%}
admin_username = ${admin_user//%/%%}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
grant_default_workspace_access = false
INI
    )
    chmod 600 "$ini"  # also when an older file was there with other modes
    # The auth database holds the password hashes: readable by this user only (MLflow creates it with the
    # umask's mode, usually readable by all).
    case "$auth_db" in
        sqlite:///*)
            db_file="${auth_db#sqlite:///}"
            [ -e "$db_file" ] || (umask 077 && : > "$db_file")  # an empty file is an empty sqlite database
            chmod 600 "$db_file" ;;
    esac
    export MLFLOW_AUTH_CONFIG_PATH="$ini" MLFLOW_AUTH_ADMIN_USERNAME="$admin_user"
    export MLFLOW_AUTH_ADMIN_PASSWORD="$password"
    export MLFLOW_FLASK_SERVER_SECRET_KEY="${MLFLOW_FLASK_SERVER_SECRET_KEY:-$(cat "$key_file")}"
    args+=(--app-name basic-auth)
fi

if [ "$mode" = foreground ]; then
    exec "$mlflow_bin" "${args[@]}"
fi

# Its own session and process group (start_new_session): it outlives this shell (ray up's SSH session) and
# the next run can stop all of it. Python rather than `setsid`, which forks when called from a process group
# leader (an interactive shell's background job) and then reports the wrong pid.
python3 - "$log_file" "$mlflow_bin" "${args[@]}" > "$pid_file" <<'PY'
import subprocess, sys
log = open(sys.argv[1], "ab")
proc = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True)
print(proc.pid)
PY

# The loopback address the server answers on (a specific address other than the loopback: that one).
case "$host" in
    0.0.0.0 | :: | "[::]" | "" | localhost | 127.*) probe_host=127.0.0.1 ;;
    ::1 | "[::1]") probe_host="[::1]" ;;
    *:*) probe_host="[$host]" ;;
    *) probe_host="$host" ;;
esac

# Wait until it answers (a database migration on first start can take a while).
for _ in $(seq 120); do
    if python3 - "$probe_host" "$port" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/health", timeout=2).read()
PY
    then
        echo "MLflow server on port $port (host $host, pid $(cat "$pid_file"), log $log_file$($auth && echo ", basic auth" || true))"
        if $auth; then
            # The admin password counts only at the first start (MLflow keeps the user it made then): say so
            # when mlflow.env names another one, which would otherwise go unnoticed until someone logs in.
            if ! python3 - "$probe_host" "$port" <<'PY'
import base64, os, sys, urllib.error, urllib.request
user = os.environ["MLFLOW_AUTH_ADMIN_USERNAME"]
token = base64.b64encode(f"{user}:{os.environ['MLFLOW_AUTH_ADMIN_PASSWORD']}".encode()).decode()
req = urllib.request.Request(f"http://{sys.argv[1]}:{sys.argv[2]}/api/2.0/mlflow/users/get?username={user}",
                             headers={"Authorization": f"Basic {token}"})
try:
    urllib.request.urlopen(req, timeout=10).read()
except urllib.error.HTTPError as exc:
    sys.exit(exc.code in (401, 403))
except OSError:
    pass  # not the password's fault: the search's own check says what is wrong
PY
            then
                echo "warning: MLFLOW_AUTH_ADMIN_PASSWORD: the server refuses it for $admin_user; its auth database keeps the password of the first start (change it with update_user_password, docs/CLUSTER.md, Security)" >&2
            fi
        fi
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
