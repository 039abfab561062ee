#!/usr/bin/env bash
# Before `ray down cluster/onprem.yaml`, run on the head (`ray exec`): stop Ray on every worker machine, then
# the MLflow server on the head:
#     ray exec cluster/onprem.yaml 'bash ~/tune-hardbatch/cluster/stop-onprem.sh' && ray down -y cluster/onprem.yaml
# Why: for Ray's `local` provider `ray down` runs `ray stop` on the head only and marks the workers terminated
# without logging in to them; their Ray processes would stay (some until the machine reboots). The machines
# stay yours, so nothing should be left running on them. Safe to rerun: a machine without Ray is fine.
#
# The workers, the SSH user and key are those of the cluster as `ray up` launched it: the head's
# ~/ray_bootstrap_config.yaml (provider.worker_ips, auth) and ~/ray_bootstrap_key.pem.
set -euo pipefail

config="${RAY_BOOTSTRAP_CONFIG:-$HOME/ray_bootstrap_config.yaml}"
[ -f "$config" ] || { echo "stop-onprem: no $config: run this on the head of a cluster that \`ray up\` started" >&2; exit 1; }

targets="$(python3 - "$config" <<'PY'
import os, sys, yaml
with open(sys.argv[1]) as fh:
    cfg = yaml.safe_load(fh)
if cfg["provider"]["type"] != "local":
    sys.exit(f"stop-onprem: {sys.argv[1]} is not a local-provider cluster")
key = os.path.expanduser(cfg["auth"].get("ssh_private_key") or "")
for ip in cfg["provider"].get("worker_ips") or []:
    print(cfg["auth"]["ssh_user"], ip, key)
PY
)"

failed=0
while read -r user ip key; do
    [ -n "$ip" ] || continue
    ssh_args=(-o BatchMode=yes -o ConnectTimeout=20 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
              -o IdentitiesOnly=yes)
    [ -n "$key" ] && ssh_args+=(-i "$key")
    echo "stop-onprem: ray stop on $ip"
    # A login shell that reads ~/.bashrc, as Ray's own commands on the nodes do: PATH has the virtualenv.
    if out="$(ssh "${ssh_args[@]}" "$user@$ip" "bash --login -c -i 'source ~/.bashrc; ray stop'" </dev/null 2>&1)"; then
        rc=0
    else
        rc=$?
    fi
    printf '%s\n' "$out" | grep -v -e "no job control" -e "cannot set terminal process group" || true
    if [ "$rc" -ne 0 ]; then
        echo "stop-onprem: could not stop Ray on $ip (exit status $rc)" >&2
        failed=1
    fi
done <<< "$targets"

bash "$(dirname "$0")/start-mlflow.sh" --stop
exit "$failed"
