"""cluster/: the launchable cluster configs, checked offline with Ray's own code, and a real two-node Ray cluster.

- The `ray up` configs (aws-gpu.yaml, onprem.yaml) go through Ray's own `prepare_config` + `validate_config`
  (ray.autoscaler._private.util: the defaults merge and the JSON schema that `ray up` applies before it
  touches a cloud; no credentials, no network); broken copies are rejected.
- The KubeRay manifest is checked for the fields KubeRay needs and for the token on every Ray container, and
  goes through Ray's own RayCluster -> autoscaler-config conversion (what the autoscaler in the head pod runs).
- start-mlflow.sh really starts an MLflow server (sqlite + a local artifact directory) and answers /health.
- A real two-node cluster on this machine: `ray start --head` and `ray start --address` as separate
  processes, each with its own temp dir and ports, token authentication on (the same random token on both
  nodes, as the configs deploy it); `tune-hardbatch search --address` runs trials on both nodes. Every
  process the test started is found by a marker in its environment and killed at the end, whatever
  happened: `ray stop` is never called (it would stop every Ray on the machine, other tests' included).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from servers import kill_marked, marked_pids

REPO = Path(__file__).resolve().parent.parent
CLUSTER = REPO / "cluster"
RAY_CONFIGS = ("aws-gpu.yaml", "onprem.yaml")
KUBERAY = CLUSTER / "kuberay.yaml"
RAY_BIN = str(Path(sys.executable).parent / "ray")
MARKER_VAR = "TUNE_HARDBATCH_TEST_CLUSTER"  # set in the environment of every process the cluster test starts


# ---------------------------------------------------------------------------------------------------
# `ray up` configs


def load_yaml(name: str) -> dict:
    with open(CLUSTER / name) as fh:
        return yaml.safe_load(fh)


def validate_ray_cluster_config(cfg: dict) -> dict:
    """What `ray up` checks before it contacts a cloud: Ray's defaults merge, then Ray's JSON schema.

    `prepare_config` fills in the provider's defaults (for `local`: its single node type, worker counts from
    the IPs) and `validate_config` applies ray/autoscaler/ray-schema.json plus Ray's cross-field checks.
    Both are offline; the provider's `bootstrap_config` (AWS: IAM, key pairs, subnets) is not called.
    """
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    return prepared


def pinned_requirements() -> dict:
    """The ray and mlflow requirements of pyproject.toml, as written there."""
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # 3.10: the quoted requirement strings of pyproject.toml
        deps = re.findall(r'^\s*"([^"]+)",?\s*$', (REPO / "pyproject.toml").read_text(), re.M)
    else:
        with open(REPO / "pyproject.toml", "rb") as fh:
            deps = tomllib.load(fh)["project"]["dependencies"]
    return {re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0]: d for d in deps if d.startswith(("ray", "mlflow"))}


def _commands(cfg: dict, key: str) -> str:
    return "\n".join(cfg.get(key) or [])


@pytest.mark.parametrize("name", RAY_CONFIGS)
def test_ray_up_config_passes_rays_validation(name):
    cfg = load_yaml(name)
    prepared = validate_ray_cluster_config(cfg)

    types = prepared["available_node_types"]
    head = prepared["head_node_type"]
    assert head in types
    head_start = _commands(prepared, "head_start_ray_commands")
    worker_start = _commands(prepared, "worker_start_ray_commands")
    # the head runs no trials
    assert "--num-cpus=0" in head_start
    # token authentication, the same on every node: one token file copied to all nodes, mode set everywhere
    mounts = prepared["file_mounts"]
    token_targets = [remote for remote, local in mounts.items() if local == "~/.ray/auth_token"]
    assert token_targets and all(t.endswith(".ray/auth_token") for t in token_targets), mounts
    assert "RAY_AUTH_MODE=token" in head_start and "RAY_AUTH_MODE=token" in worker_start
    assert "export RAY_AUTH_MODE=token" in _commands(prepared, "initialization_commands")
    # the project and its pinned dependencies on every node: cluster/setup-node.sh installs the wheel of ./dist
    # with the `cluster` extra of pyproject.toml (its pins: test_pins_are_the_same_everywhere)
    setup = _commands(cfg, "setup_commands")
    assert "bash ~/tune-hardbatch/cluster/setup-node.sh" in setup
    assert not cfg.get("head_setup_commands") and not cfg.get("worker_setup_commands")  # the same on every node
    assert [local for remote, local in mounts.items() if remote.endswith("tune-hardbatch/dist")] == ["./dist"]
    assert [local for remote, local in mounts.items() if remote.endswith("tune-hardbatch/cluster")] == ["./cluster"]
    # the MLflow server on the head, from the script in this directory
    assert "start-mlflow.sh" in head_start and "start-mlflow.sh" not in worker_start
    assert (CLUSTER / "start-mlflow.sh").is_file()

    if name == "aws-gpu.yaml":
        assert types[head]["resources"] == {"CPU": 0}
        workers = [t for n, t in types.items() if n != head]
        assert len(workers) == 1
        gpu = workers[0]
        assert gpu["min_workers"] == 0 and gpu["max_workers"] >= 1
        assert gpu["resources"].get("GPU") == 1
        assert gpu["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
        assert prepared["provider"]["cache_stopped_nodes"] is False  # spot nodes cannot be stopped
        assert "/mnt/efs" in setup  # shared trial storage
    else:
        assert prepared["provider"]["type"] == "local"
        assert prepared["provider"]["head_ip"] and prepared["provider"]["worker_ips"]
        assert "/mnt/shared" in setup


def cluster_extra() -> list[str]:
    """The `cluster` extra of pyproject.toml: what cluster/setup-node.sh installs on every node."""
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # 3.10: the quoted strings of the `cluster = [...]` block
        block = re.search(r"^cluster = \[(.*?)\]", (REPO / "pyproject.toml").read_text(), re.M | re.S).group(1)
        return re.findall(r'"([^"]+)"', block)
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["optional-dependencies"]["cluster"]


def test_pins_are_the_same_everywhere():
    """pyproject.toml, both `ray up` configs, the KubeRay image and manifest: one Ray, one MLflow range.

    Every recipe installs through cluster/setup-node.sh, which installs the wheel with its `cluster` extra."""
    pins = pinned_requirements()
    assert pins["ray"] == "ray[tune]==2.60.0", "update cluster/ together with the Ray pin"
    extra = cluster_extra()
    # the head's server with MLflow's basic-auth app (MLFLOW_AUTH=basic), at the same MLflow range
    assert "ray[default,tune]==2.60.0" in extra and pins["mlflow"].replace("mlflow", "mlflow[auth]", 1) in extra, extra
    script = (CLUSTER / "setup-node.sh").read_text()
    assert 'extras="${THB_EXTRAS:-cluster}"' in script and '"$wheel[$extras]"' in script
    texts = {name: (CLUSTER / name).read_text() for name in (*RAY_CONFIGS, "Dockerfile")}
    for name in RAY_CONFIGS:
        assert "bash ~/tune-hardbatch/cluster/setup-node.sh" in _commands(load_yaml(name), "setup_commands"), name
    assert re.search(r"^RUN .*setup-node\.sh", texts["Dockerfile"], re.M)
    assert "FROM rayproject/ray:2.60.0-" in texts["Dockerfile"]
    rc = next(d for d in load_kuberay() if d["kind"] == "RayCluster")
    assert rc["spec"]["rayVersion"] == "2.60.0"


def _unknown_top_level_key(cfg):
    cfg["max_worker"] = 3  # a typo of max_workers


def _wrong_type_max_workers(cfg):
    cfg["max_workers"] = "eight"


def _missing_provider(cfg):
    del cfg["provider"]


def _bad_setup_commands(cfg):
    cfg["setup_commands"] = "pip install tune-hardbatch"  # a string, not a list of commands


@pytest.mark.parametrize("name", RAY_CONFIGS)
@pytest.mark.parametrize("breakage", [_unknown_top_level_key, _wrong_type_max_workers, _missing_provider,
                                      _bad_setup_commands])
def test_broken_ray_up_config_is_rejected(name, breakage):
    import jsonschema

    cfg = load_yaml(name)
    breakage(cfg)
    # jsonschema for most; prepare_config itself trips over a missing provider or a non-list of commands
    with pytest.raises((jsonschema.ValidationError, KeyError, TypeError, ValueError)):
        validate_ray_cluster_config(cfg)


def test_broken_node_type_is_rejected():
    cfg = load_yaml("aws-gpu.yaml")
    cfg["available_node_types"]["gpu_worker"]["resources"]["GPU"] = 0.5  # Ray wants whole numbers here
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validate_ray_cluster_config(cfg)
    cfg = load_yaml("aws-gpu.yaml")
    cfg["head_node_type"] = "no-such-type"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_ray_cluster_config(cfg)


# ---------------------------------------------------------------------------------------------------
# KubeRay


def load_kuberay(path: Path = KUBERAY) -> list[dict]:
    with open(path) as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


def _is_token_env(env: list, secret: str | None = None) -> tuple[bool, str | None]:
    """(RAY_AUTH_MODE=token and RAY_AUTH_TOKEN from a Secret key are both in env, that Secret's name)."""
    by_name = {e.get("name"): e for e in env or []}
    mode = by_name.get("RAY_AUTH_MODE", {}).get("value")
    ref = ((by_name.get("RAY_AUTH_TOKEN") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    ok = mode == "token" and bool(ref.get("name")) and bool(ref.get("key"))
    return ok, (ref.get("name"), ref.get("key")) if ok else None


def kuberay_problems(docs: list[dict]) -> list[str]:
    """What is missing from a KubeRay manifest for a GPU search cluster with token authentication."""
    problems = []
    clusters = [d for d in docs if d.get("kind") == "RayCluster"]
    if len(clusters) != 1:
        return [f"expected one RayCluster, found {len(clusters)}"]
    rc = clusters[0]
    if rc.get("apiVersion") != "ray.io/v1":
        problems.append(f"apiVersion {rc.get('apiVersion')!r}, expected ray.io/v1")
    if not (rc.get("metadata") or {}).get("name"):
        problems.append("metadata.name missing")
    spec = rc.get("spec") or {}
    secrets_used = set()

    def check_ray_pod(where: str, group: dict) -> None:
        if not isinstance(group.get("rayStartParams"), dict):
            problems.append(f"{where}.rayStartParams missing (may be empty, must be there)")
        elif any(not isinstance(v, str) for v in group["rayStartParams"].values()):
            problems.append(f"{where}.rayStartParams values must be strings")
        containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or []
        if not containers:
            problems.append(f"{where}.template.spec.containers missing")
            return
        ray_container = containers[0]
        if not ray_container.get("image"):
            problems.append(f"{where}.template.spec.containers[0].image missing")
        ok, secret = _is_token_env(ray_container.get("env"))
        if not ok:
            problems.append(f"{where}: containers[0] lacks RAY_AUTH_MODE=token and RAY_AUTH_TOKEN from a Secret")
        else:
            secrets_used.add(secret)
        mounts = {m.get("mountPath") for m in ray_container.get("volumeMounts") or []}
        if "/mnt/shared" not in mounts:
            problems.append(f"{where}: containers[0] does not mount the shared storage at /mnt/shared")

    head = spec.get("headGroupSpec")
    if not isinstance(head, dict):
        problems.append("spec.headGroupSpec missing")
    else:
        check_ray_pod("headGroupSpec", head)
        if (head.get("rayStartParams") or {}).get("num-cpus") != "0":
            problems.append("headGroupSpec.rayStartParams.num-cpus must be \"0\" (no trials on the head)")
        head_containers = ((head.get("template") or {}).get("spec") or {}).get("containers") or []
        if not any("mlflow" in " ".join(map(str, (c.get("command") or []) + (c.get("args") or [])))
                   for c in head_containers):
            problems.append("no MLflow server container in the head pod")
    workers = spec.get("workerGroupSpecs")
    if not isinstance(workers, list) or not workers:
        problems.append("spec.workerGroupSpecs missing or empty")
        workers = []
    gpu_groups = 0
    for i, group in enumerate(workers):
        where = f"workerGroupSpecs[{i}]"
        if not group.get("groupName"):
            problems.append(f"{where}.groupName missing")
        for key in ("replicas", "minReplicas", "maxReplicas"):
            if not isinstance(group.get(key), int) or group[key] < 0:
                problems.append(f"{where}.{key} must be an integer >= 0")
        if all(isinstance(group.get(k), int) for k in ("replicas", "minReplicas", "maxReplicas")):
            if not group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]:
                problems.append(f"{where}: needs minReplicas <= replicas <= maxReplicas")
        check_ray_pod(where, group)
        containers = ((group.get("template") or {}).get("spec") or {}).get("containers") or [{}]
        limits = (containers[0].get("resources") or {}).get("limits") or {}
        if str(limits.get("nvidia.com/gpu", "0")) not in ("", "0"):
            gpu_groups += 1
    if workers and not gpu_groups:
        problems.append("no worker group has an nvidia.com/gpu limit")
    if spec.get("enableInTreeAutoscaling"):
        ok, secret = _is_token_env((spec.get("autoscalerOptions") or {}).get("env"))
        if not ok:
            problems.append("autoscalerOptions.env lacks the token (the autoscaler talks to the GCS too)")
        else:
            secrets_used.add(secret)
    if len(secrets_used) > 1:
        problems.append(f"the pods use different token secrets: {sorted(secrets_used)}")

    # shared storage: every volume's claim is declared in the manifest, and ReadWriteMany
    claims = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "PersistentVolumeClaim"}
    groups = ([head] if isinstance(head, dict) else []) + workers
    for group in groups:
        for vol in ((group.get("template") or {}).get("spec") or {}).get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and (claim not in claims or "ReadWriteMany" not in claims[claim]["spec"]["accessModes"]):
                problems.append(f"volume {vol.get('name')}: claim {claim} missing or not ReadWriteMany")
    return problems


def derive_autoscaling_config(docs: list[dict]) -> dict:
    """Ray's own RayCluster -> autoscaler config conversion (it ends with Ray's validate_config)."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    rc = copy.deepcopy(next(d for d in docs if d.get("kind") == "RayCluster"))
    rc["metadata"].setdefault("namespace", "default")  # set by the API server on a real cluster
    return _derive_autoscaling_config_from_ray_cr(rc)


def test_kuberay_manifest_has_what_kuberay_and_ray_need():
    docs = load_kuberay()
    assert kuberay_problems(docs) == []
    config = derive_autoscaling_config(docs)
    types = config["available_node_types"]
    assert types["headgroup"]["resources"]["CPU"] == 0
    gpu = [t for n, t in types.items() if n != "headgroup"]
    assert len(gpu) == 1 and gpu[0]["resources"]["GPU"] == 1 and gpu[0]["min_workers"] == 0
    rc = next(d for d in docs if d["kind"] == "RayCluster")
    assert rc["spec"]["rayVersion"] == "2.60.0"
    # MLflow: cluster/start-mlflow.sh (copied into the image) on the head pod's loopback, so no Service leads
    # to it; its probe runs inside the pod (the kubelet's would come over the pod IP); the driver's account
    # and the server's accounts come from the one MLflow Secret, optional keys (accounts are a choice)
    assert not [d for d in docs if d["kind"] == "Service"]
    head = rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    mlflow = next(c for c in head if c["name"] == "mlflow")
    assert mlflow["command"][1:] == ["/home/ray/tune-hardbatch/cluster/start-mlflow.sh", "--foreground"]
    assert re.search(r"^COPY .*cluster/start-mlflow\.sh /home/ray/tune-hardbatch/cluster/start-mlflow\.sh$",
                     (CLUSTER / "Dockerfile").read_text(), re.M)
    env = {e["name"]: e for e in mlflow["env"]}
    assert env["MLFLOW_HOST"]["value"] == "127.0.0.1" and "args" not in mlflow and "ports" not in mlflow
    assert "exec" in mlflow["readinessProbe"] and "httpGet" not in mlflow["readinessProbe"]
    ray_env = {e["name"]: e for e in head[0]["env"]}
    for name, key in [("MLFLOW_AUTH", "auth"), ("MLFLOW_AUTH_ADMIN_PASSWORD", "auth_admin_password"),
                      ("MLFLOW_AUTH_DATABASE_URI", "auth_database_uri"),
                      ("MLFLOW_TRACKING_USERNAME", "tracking_username"),
                      ("MLFLOW_TRACKING_PASSWORD", "tracking_password")]:
        ref = (env if name.startswith("MLFLOW_AUTH") else ray_env)[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "tune-hardbatch-mlflow", "key": key, "optional": True}, name
    # one image everywhere
    images = {c["image"] for g in [rc["spec"]["headGroupSpec"], *rc["spec"]["workerGroupSpecs"]]
              for c in g["template"]["spec"]["containers"]}
    assert len(images) == 1


def _drop_head(docs):
    del next(d for d in docs if d["kind"] == "RayCluster")["spec"]["headGroupSpec"]


def _worker_without_gpu(docs):
    rc = next(d for d in docs if d["kind"] == "RayCluster")
    for group in rc["spec"]["workerGroupSpecs"]:
        for c in group["template"]["spec"]["containers"]:
            c["resources"]["limits"].pop("nvidia.com/gpu", None)


def _worker_without_token(docs):
    rc = next(d for d in docs if d["kind"] == "RayCluster")
    c = rc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    c["env"] = [e for e in c["env"] if e["name"] != "RAY_AUTH_TOKEN"]


def _worker_without_min_replicas(docs):
    del next(d for d in docs if d["kind"] == "RayCluster")["spec"]["workerGroupSpecs"][0]["minReplicas"]


def _head_without_image(docs):
    rc = next(d for d in docs if d["kind"] == "RayCluster")
    del rc["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]


def _wrong_api_version(docs):
    next(d for d in docs if d["kind"] == "RayCluster")["apiVersion"] = "ray.io/v1alpha1"


@pytest.mark.parametrize("breakage", [_drop_head, _worker_without_gpu, _worker_without_token,
                                      _worker_without_min_replicas, _head_without_image, _wrong_api_version])
def test_broken_kuberay_manifest_fails_the_checker(breakage):
    docs = load_kuberay()
    breakage(docs)
    assert kuberay_problems(docs), breakage.__name__


def test_kuberay_without_head_fails_rays_conversion_too():
    docs = load_kuberay()
    _drop_head(docs)
    with pytest.raises(KeyError):
        derive_autoscaling_config(docs)


# ---------------------------------------------------------------------------------------------------
# The MLflow server script


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports that were free a moment ago (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_mlflow_env_example_names_what_the_script_needs():
    text = (CLUSTER / "mlflow.env.example").read_text()
    script = (CLUSTER / "start-mlflow.sh").read_text()
    for var in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_ARTIFACTS_DESTINATION"):
        assert re.search(rf"^{var}=", text, re.M) and f"${{{var}:?" in script
    # every other setting the script reads is in the example too (commented out: the default), except where
    # the script and its state live on the node
    read = set(re.findall(r"\$\{(MLFLOW_[A-Z_]+)", script)) - {"MLFLOW_STATE_DIR", "MLFLOW_BIN"}
    assert read - set(re.findall(r"^(?:# )?(MLFLOW_[A-Z_]+)=", text, re.M)) == set()
    assert "MLFLOW_AUTH" in read and "MLFLOW_ALLOW_UNAUTHENTICATED_WIDE" in read
    subprocess.run(["bash", "-n", str(CLUSTER / "start-mlflow.sh")], check=True)


@pytest.mark.e2e
def test_start_mlflow_script_serves_and_stores_outside(tmp_path):
    port = free_ports(1)[0]
    state = tmp_path / "state"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/db/mlflow.db",
           "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"), "MLFLOW_HOST": "127.0.0.1",
           "MLFLOW_PORT": str(port), "MLFLOW_STATE_DIR": str(state),
           "TUNE_HARDBATCH_MLFLOW_ENV": str(tmp_path / "absent.env")}
    pid = None
    try:
        out = subprocess.run(["bash", str(CLUSTER / "start-mlflow.sh")], env=env, capture_output=True,
                             text=True, timeout=150)
        pid_file = state / "mlflow-server.pid"
        pid = int(pid_file.read_text()) if pid_file.is_file() else None
        assert out.returncode == 0, out.stdout + out.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert resp.status == 200
        assert (tmp_path / "db" / "mlflow.db").is_file()  # the database is where the URI says
        assert "--workers 1" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    finally:
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # the script starts it as its own process group
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------------------------------
# A real two-node Ray cluster on this machine


def run(cmd: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


_QUERY = r"""
import json, sys, ray, ray._private.state as state
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
actors = [{"class": a.get("ActorClassName"), "pid": a.get("Pid"), "node": (a.get("Address") or {}).get("NodeID"),
           "state": a.get("State")} for a in state.actors().values()]
print("RESULT " + json.dumps({"nodes": nodes, "actors": actors}))
"""


def query_cluster(address: str, env: dict) -> dict:
    """Alive node ids and every actor the GCS remembers (pid, node id), from a separate driver process.

    The GCS actor table (`ray._private.state.actors()`) keeps dead actors too, so the trial actors of a
    finished search are still there; `ray.util.state` would need the dashboard, which these nodes do not run.
    """
    out = run([sys.executable, "-c", _QUERY, address], env, timeout=90)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stdout[-2000:] + out.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture
def two_node_cluster():
    """A head (1 CPU) and a worker node (1 CPU) started with `ray start`, token auth on; yields its facts."""
    marker = secrets.token_hex(8)
    root = Path(tempfile.mkdtemp(prefix="thb-ray-", dir="/tmp"))  # short: Ray's Unix sockets live below it
    token = secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0",
                MARKER_VAR: marker})
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    # Own ports for everything that has a fixed default, so neither node collides with the other or with
    # another Ray on this machine (GCS 6379, dashboard agent 52365, ...); the rest are picked by Ray.
    ports = free_ports(9)
    head_dir, worker_dir = root / "head", root / "worker"
    address = f"127.0.0.1:{ports[0]}"
    try:
        head = run([RAY_BIN, "start", "--head", f"--port={ports[0]}", "--num-cpus=1", "--num-gpus=0",
                    "--include-dashboard=false", "--node-ip-address=127.0.0.1", f"--temp-dir={head_dir}",
                    f"--dashboard-agent-listen-port={ports[1]}", f"--dashboard-agent-grpc-port={ports[2]}",
                    f"--runtime-env-agent-port={ports[3]}", f"--metrics-export-port={ports[4]}",
                    "--object-store-memory=100000000", "--disable-usage-stats"], env, timeout=120)
        assert head.returncode == 0, head.stdout[-3000:] + head.stderr[-3000:]
        worker = run([RAY_BIN, "start", f"--address={address}", "--num-cpus=1", "--num-gpus=0",
                      "--node-ip-address=127.0.0.1", f"--temp-dir={worker_dir}",
                      f"--dashboard-agent-listen-port={ports[5]}", f"--dashboard-agent-grpc-port={ports[6]}",
                      f"--runtime-env-agent-port={ports[7]}", f"--metrics-export-port={ports[8]}",
                      "--object-store-memory=100000000", "--disable-usage-stats"], env, timeout=120)
        assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
        deadline = time.monotonic() + 60
        while True:
            nodes = query_cluster(address, env)["nodes"]
            if len(nodes) == 2 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert len(nodes) == 2, f"{len(nodes)} alive nodes after 60 s"
        yield {"address": address, "env": env, "nodes": nodes, "token": token,
               "temp_dirs": {"head": head_dir, "worker": worker_dir}}
    finally:
        kill_marked(MARKER_VAR, marker, 5.0)
        leftover = marked_pids(MARKER_VAR, marker)
        shutil.rmtree(root, ignore_errors=True)
        assert not leftover, f"processes of the test cluster still running: {leftover}"


def _worker_log_pids(temp_dir: Path) -> set[int]:
    """Pids of the Ray worker processes a node started (its own logs: worker-<id>-<job>-<pid>.out)."""
    pids = set()
    for path in temp_dir.glob("session_*/logs/worker-*.out"):
        m = re.search(r"-(\d+)\.out$", path.name)
        if m:
            pids.add(int(m.group(1)))
    return pids


@pytest.mark.e2e
def test_search_runs_trials_on_both_nodes_of_a_real_cluster(two_node_cluster, tmp_path):
    cluster = two_node_cluster
    env = cluster["env"]
    # The token is enforced: a client with another token is turned away, one with the cluster's gets in.
    wrong = run([RAY_BIN, "health-check", f"--address={cluster['address']}"],
                {**env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}, timeout=60)
    assert wrong.returncode != 0 and "InvalidAuthToken" in wrong.stdout + wrong.stderr, wrong.stderr[-2000:]
    right = run([RAY_BIN, "health-check", f"--address={cluster['address']}"], env, timeout=60)
    assert right.returncode == 0, right.stderr[-2000:]

    out = tmp_path / "runs"
    # Two trials at a time, one CPU each, one CPU per node: the scheduler must use both nodes.
    search = run([sys.executable, "-m", "tune_hardbatch", "search", "--address", cluster["address"],
                  "--out", str(out), "--set", "search.num_samples=4", "--set", "base.epochs=2",
                  "--set", "resources.cpu=1", "--set", "confirm.seeds=0", "--set", "run.name=two-node"], env,
                 timeout=300)
    assert search.returncode == 0, search.stdout[-4000:] + search.stderr[-4000:]

    exp = out / "two-node"
    with open(exp / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert {r["status"] for r in rows} <= {"finished", "stopped_early"}, [r["status"] for r in rows]

    # Where each trial ran. Preferred: a `node_id` the trial reports itself; else the pid Ray Tune records
    # in every result, looked up in the GCS actor table (the trial actors' pid and node id).
    trial_nodes, trial_pids = {}, {}
    for row in rows:
        with open(exp / row["trial_id"] / "result.json") as fh:
            results = [json.loads(line) for line in fh if line.strip()]
        assert results, row["trial_id"]
        trial_pids[row["trial_id"]] = {r["pid"] for r in results}
        if all(r.get("node_id") for r in results):
            trial_nodes[row["trial_id"]] = {r["node_id"] for r in results}
    if len(trial_nodes) < len(rows):
        actors = query_cluster(cluster["address"], env)["actors"]
        node_of_pid = {a["pid"]: a["node"] for a in actors if a["class"] == "ImplicitFunc" and a["pid"]}
        for trial, pids in trial_pids.items():
            assert pids <= node_of_pid.keys(), f"trial {trial}: pids {pids} not among the trial actors"
            trial_nodes.setdefault(trial, {node_of_pid[p] for p in pids})
    used = set().union(*trial_nodes.values())
    assert used == set(cluster["nodes"]), (trial_nodes, cluster["nodes"])

    # The same from the nodes' own files: each node's temp dir holds the logs of the workers it started.
    all_pids = set().union(*trial_pids.values())
    for name, temp_dir in cluster["temp_dirs"].items():
        assert _worker_log_pids(temp_dir) & all_pids, f"no trial process logged under the {name} node"

    # cluster/scale.py (the autoscaler request of docs/CLUSTER.md) talks to a token-protected cluster.
    scale = run([sys.executable, str(CLUSTER / "scale.py"), "0", "--address", cluster["address"],
                 "--timeout", "0"], env, timeout=90)
    assert scale.returncode == 0 and "requested 0 GPU workers" in scale.stdout, scale.stderr[-2000:]
