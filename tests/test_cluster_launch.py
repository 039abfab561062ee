"""`ray up` of cluster/onprem.yaml for real, on this machine, with the commands of docs/CLUSTER.md.

Two SSH hosts stand in for two machines. Each is an `sshd` that the test starts (and stops by PID) on its own
loopback address, head 127.0.0.1 and worker 127.0.0.2, inside its own PID namespace and mount namespace
(`unshare --pid --fork --mount-proc`): the shipped start commands run `ray stop`, which stops every Ray
process it can see, so the worker's must not see the head's. In its mount namespace each host has a home of
its own bind-mounted at /root (~/.bashrc, ~/.ray, ~/tune-hardbatch, as on a machine of its own), a /tmp of
its own (Ray's session files), and one directory of the test bind-mounted at /mnt/shared on both (the NFS
export of the docs). The client (this process) has a home of its own too ($HOME: ~/.ray/auth_token,
~/.tune-hardbatch/mlflow.env), so nothing of the real root's is read or written.

The test copies this checkout, fills in only the REPLACE_ME fields of cluster/onprem.yaml (addresses, SSH
user, a key it makes) and runs the documented steps: `ray get-auth-token --generate`, the wheel build,
`ray up -y`, `ray exec ... 'ray status'` until the worker is in, the dashboard tunnel (`ray dashboard -p`),
`ray job submit` of a short search (token authentication: a wrong token is turned away), `ray job logs` /
`ray job status`, `ray exec ... tune-hardbatch report`, `cluster/stop-onprem.sh` and `ray down -y`. From
outside the cluster it checks results.csv on the shared directory, that every trial ran on the worker (the
head has no CPUs), the MLflow runs through an SSH tunnel, and that nothing is left running.

The nodes' virtualenv: both hosts' ~/.bashrc set THB_VENV (a setting of cluster/setup-node.sh) to one
virtualenv kept between runs in $TUNE_HARDBATCH_TEST_NODE_VENV (default
/var/cache/tune-hardbatch/cluster-test-venv), as a home directory on NFS shared by the machines would. The
first run on a machine installs the wheel and its requirements there through the shipped script; after
that the head's setup replaces only the code (the wheel is rebuilt every run) and the worker's finds the
same wheel installed and does nothing: the test checks both. Packages come from this machine's pip
configuration. On that first run the test seeds the new virtualenv with this environment's CUDA stack
(torch, torchvision, triton, the nvidia libraries: 5.3 of its 6.6 GB, most of the 2 minutes its install
takes), hard-linked in through a .pth as a site image with them installed would hold them; the script's pip
resolves and installs everything else. TUNE_HARDBATCH_TEST_NODE_FULL_INSTALL=1 installs those too. Needs
root, sshd, rsync and unshare (`.ci/system-deps` installs openssh-server and rsync);
skipped with the reason elsewhere.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from servers import kill_marked, marked_pids

pytestmark = pytest.mark.e2e  # SSH hosts, `ray up`; setup-node.sh builds virtualenvs

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RAY = str(BIN / "ray")
HEAD_IP, WORKER_IP = "127.0.0.1", "127.0.0.2"
CONFIG = "cluster/onprem.yaml"
NODE_VENV = Path(os.environ.get("TUNE_HARDBATCH_TEST_NODE_VENV", "/var/cache/tune-hardbatch/cluster-test-venv"))
# The fixed ports of the shipped config and docs on the head (all nodes share this machine's network).
FIXED_PORTS = {"ssh": 22, "gcs": 6379, "dashboard": 8265, "object manager": 8076, "mlflow": 5000,
               "dashboard agent": 52365, "ray client": 10001}
MARKER_VAR = "TUNE_HARDBATCH_TEST_LAUNCH"
RUN_NAME = "launch"


def _skip_reason() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux (sshd for root, mount and PID namespaces)"
    missing = [t for t in ("sshd", "ssh", "ssh-keygen", "rsync", "unshare", "mount", "git")
               if not shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", ""))]
    if missing:
        return f"missing {', '.join(missing)} (.ci/system-deps installs openssh-server and rsync)"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"cannot make PID namespaces here: {probe.stderr.decode().strip()}"
    if not (REPO / ".git").exists():
        return "not a git checkout (the test copies the checkout's files)"
    return None


def _port_in_use(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((ip, port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------------
# Processes: every one the test starts outside the SSH hosts carries MARKER_VAR in its environment; the
# hosts' processes live in the hosts' PID namespaces, which die with their first process (sshd).


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


class SshHost:
    """An sshd on `ip`:22 in PID and mount namespaces of its own, with its own /root, /tmp and /mnt/shared."""

    def __init__(self, name: str, ip: str, root: Path, shared: Path, authorized_keys: Path, env: dict):
        self.name, self.ip = name, ip
        self.dir = root / name
        self.home, self.tmp = self.dir / "home", self.dir / "tmp"
        self.shared, self.authorized_keys, self.env = shared, authorized_keys, env
        self.proc: subprocess.Popen | None = None
        self.init_pid: int | None = None  # sshd, pid 1 of the namespace (as this namespace sees it)

    def start(self, bashrc: str) -> SshHost:
        self.home.mkdir(parents=True)
        self.tmp.mkdir()
        self.tmp.chmod(0o1777)
        (self.home / ".bashrc").write_text(bashrc)
        host_key = self.dir / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {self.ip}", "Port 22", f"HostKey {host_key}", "PidFile none",
            f"AuthorizedKeysFile {self.authorized_keys}", "StrictModes no", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "MaxStartups 100:30:200", "MaxSessions 100", "AllowTcpForwarding yes", "LogLevel INFO", ""]))
        # Inside the new namespaces: the machine's own home, /tmp and shared disk, then sshd as pid 1.
        # /mnt gets a tmpfs first, so the mount point is made there and not on this machine's disk.
        script = "\n".join([
            "set -e",
            f"mount --bind {self.home} /root",
            "mount -t tmpfs -o size=1m,mode=0755 thb-mnt /mnt",
            "mkdir /mnt/shared",
            f"mount --bind {self.shared} /mnt/shared",
            f"mount --bind {self.tmp} /tmp",
            "mkdir -p /run/sshd",
            f"exec /usr/sbin/sshd -D -e -f {config}",
        ])
        self.log = open(self.dir / "sshd.log", "wb")
        self.proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", script],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=self.env, start_new_session=True)
        deadline = time.monotonic() + 20
        while not _port_in_use(self.ip, 22):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd on {self.ip} did not start: {(self.dir / 'sshd.log').read_text()[-2000:]}")
            time.sleep(0.1)
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        assert len(children) == 1 and _comm(int(children[0])) == "sshd", children
        self.init_pid = int(children[0])
        self.pid_ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        return self

    def processes(self) -> dict[int, str]:
        """Every process in this host's PID namespace: pid (as seen here) -> command line."""
        found = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/pid") == self.pid_ns:
                        found[int(entry)] = _cmdline(int(entry))
                except OSError:
                    continue
        return found

    def non_sshd(self, wait_s: float = 0.0) -> dict[int, str]:
        """The processes in this host other than its SSH server, after waiting up to wait_s for none."""
        deadline = time.monotonic() + wait_s
        while True:
            found = {p: c for p, c in self.processes().items() if _comm(p) != "sshd"}
            if not found or time.monotonic() >= deadline:
                return found
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGKILL sshd, pid 1 of the namespace: the kernel then kills every process in it."""
        if self.init_pid is not None:
            try:
                os.kill(self.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            self.log.close()
        deadline = time.monotonic() + 30  # the kernel kills the namespace's processes; they go soon after
        while self.init_pid is not None and self.processes() and time.monotonic() < deadline:
            time.sleep(0.2)


# ---------------------------------------------------------------------------------------------------


class Shell:
    """Runs the documented commands from the copied checkout with the client's environment; logs them all."""

    def __init__(self, cwd: Path, env: dict, log: Path):
        self.cwd, self.env, self.log = cwd, env, log

    def run(self, cmd: list[str], timeout: float, env: dict | None = None, check: bool = True):
        """Run cmd; its stdout and stderr go to the log as they come and are returned together as .stdout."""
        with open(self.log, "ab") as fh:
            fh.write(f"\n$ {' '.join(cmd)}\n".encode())
            fh.flush()
            offset = fh.tell()
            start = time.monotonic()
            try:
                proc = subprocess.run(cmd, cwd=self.cwd, env={**self.env, **(env or {})}, stdout=fh,
                                      stderr=subprocess.STDOUT, timeout=timeout, stdin=subprocess.DEVNULL)
            finally:
                fh.write(f"# {time.monotonic() - start:.1f} s\n".encode())
        with open(self.log, "rb") as fh:
            fh.seek(offset)
            proc.stdout = fh.read().decode(errors="replace")
        if check:
            assert proc.returncode == 0, f"{cmd} -> {proc.returncode}:\n{proc.stdout[-6000:]}"
        return proc

    def popen(self, cmd: list[str], log_name: str) -> subprocess.Popen:
        fh = open(self.log.with_name(log_name), "wb")
        return subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def copy_checkout(dest: Path) -> None:
    """The checkout's files as they are now (tracked and untracked, not ignored ones) into dest."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = REPO / name
        if not os.path.lexists(src):
            continue  # deleted in the work tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def fill_in(config: Path, values: dict[str, str]) -> None:
    """Replace the REPLACE_ME of each `key: ... REPLACE_ME` line; every REPLACE_ME must be one of them."""
    lines = config.read_text().splitlines(keepends=True)
    filled = set()
    for i, line in enumerate(lines):
        if "REPLACE_ME" not in line or line.lstrip().startswith("#"):
            continue
        key = line.split(":", 1)[0].strip()
        assert key in values, f"{config.name}: a REPLACE_ME the test does not know: {line.strip()}"
        lines[i] = line.replace("REPLACE_ME", values[key], 1)
        assert "REPLACE_ME" not in lines[i].split("#", 1)[0], line
        filled.add(key)
    assert filled == set(values), (filled, set(values))
    config.write_text("".join(lines))


def http_json(url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def wait_for_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers (e.g. 401 without a token)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def cluster_cpus(status_output: str) -> float:
    """The CPUs of the cluster in `ray status` output (`Resources` block: `used/total CPU`)."""
    m = re.search(r"^\s*[\d.]+/([\d.]+) CPU\b", status_output, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


# ---------------------------------------------------------------------------------------------------
# cluster/setup-node.sh on its own (no root, no network): a wheel named like the project's, without
# requirements, into a virtualenv the script makes with this Python.


def _fake_wheel(dist: Path, marker: str) -> Path:
    import zipfile

    dist.mkdir(parents=True, exist_ok=True)
    for old in dist.glob("*.whl"):
        old.unlink()
    path = dist / "tune_hardbatch-0.1.0-py3-none-any.whl"
    info = "tune_hardbatch-0.1.0.dist-info"
    files = {"tune_hardbatch/__init__.py": f"MARK = {marker!r}\n",
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: tune-hardbatch\nVersion: 0.1.0\n"
                                 "Provides-Extra: cluster\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def test_setup_node_installs_then_does_nothing_then_replaces_only_the_code(tmp_path):
    venv, dist, bashrc = tmp_path / "thb", tmp_path / "dist", tmp_path / "bashrc"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THB_", "PIP_REQUIRE"))}
    env.update({"THB_VENV": str(venv), "THB_DIST": str(dist), "THB_PYTHON": sys.executable,
                "THB_BASHRC": str(bashrc), "PIP_NO_INDEX": "1"})  # nothing may be fetched here

    def setup():
        out = subprocess.run(["bash", str(REPO / "cluster" / "setup-node.sh")], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        mark = subprocess.run([str(venv / "bin" / "python"), "-c", "import tune_hardbatch; print(tune_hardbatch.MARK)"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path).stdout.strip()
        return out.stdout, mark

    _fake_wheel(dist, "first")
    first, mark = setup()
    assert "creating the virtualenv" in first and "replacing the code only" in first and mark == "first", first
    again, mark = setup()
    assert "nothing to do" in again and "installing" not in again and mark == "first", again
    _fake_wheel(dist, "second")  # a rebuilt checkout: same version, other bytes
    rebuilt, mark = setup()
    assert "replacing the code only" in rebuilt and mark == "second", rebuilt
    assert bashrc.read_text().count(f'export PATH="{venv}/bin:$PATH"') == 1  # once, however often it runs

    (dist / "tune_hardbatch-0.2.0-py3-none-any.whl").write_bytes(b"")  # two wheels: which one?
    out = subprocess.run(["bash", str(REPO / "cluster" / "setup-node.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "expected exactly one tune_hardbatch-*.whl" in out.stderr, out.stderr


# ---------------------------------------------------------------------------------------------------
# The launch


SEEDED = ("torch", "torchgen", "torchvision", "torchvision.libs", "triton", "nvidia")  # and their dist-info


def _seed_node_venv(venv: Path) -> None:
    """A new virtualenv made with the Python a node's `python3` is (as cluster/setup-node.sh would), whose
    site-packages sees this environment's CUDA stack (hard-linked) through a .pth: pip counts those
    distributions as installed, and installs the rest."""
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    seed = venv / "seed"
    seed.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        dist = entry.name.endswith(".dist-info")
        name = entry.name.split("-")[0] if dist else entry.name
        if name in SEEDED or (dist and name.startswith("nvidia_")):
            # hard links: a host sees them whatever it mounts (it replaces /tmp, where this venv may be)
            if subprocess.run(["cp", "-al", str(entry), str(seed)], capture_output=True).returncode:
                shutil.rmtree(venv)  # another file system: the script installs everything
                return
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "thb-test-seed.pth").write_text(f"{seed}\n")


@pytest.fixture
def launch_env():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    NODE_VENV.parent.mkdir(parents=True, exist_ok=True)
    # One launch at a time on this machine (fixed ports, one cluster name, one node virtualenv).
    lock = open(NODE_VENV.parent / "cluster-launch-test.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        taken = {f"{name} {port}": port for name, port in FIXED_PORTS.items()
                 if _port_in_use(HEAD_IP, port) or (port == 22 and _port_in_use(WORKER_IP, port))}
        if taken:
            pytest.skip(f"ports the shipped config uses are taken on this machine: {', '.join(taken)}")
        if not (NODE_VENV / "bin" / "python").exists() and not os.environ.get("TUNE_HARDBATCH_TEST_NODE_FULL_INSTALL"):
            _seed_node_venv(NODE_VENV)
        yield lock
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the first run on a machine also builds the nodes' virtualenv (~2.5 min)
def test_ray_up_onprem_job_submit_mlflow_and_ray_down(launch_env):
    t0 = time.monotonic()
    timings = {}
    marker = secrets.token_hex(8)
    # Not under /tmp, which each SSH host replaces by its own (sshd reads its files from here).
    root = Path(tempfile.mkdtemp(prefix="thb-up-", dir="/var/tmp"))
    hosts: list[SshHost] = []
    try:
        repo, client_home, client_tmp, shared = root / "repo", root / "client", root / "ctmp", root / "shared"
        for d in (client_home / ".ssh", client_tmp, shared):
            d.mkdir(parents=True)
        copy_checkout(repo)
        key = client_home / ".ssh" / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "thb-launch-test", "-f", str(key)],
                       check=True)
        authorized = root / "authorized_keys"
        shutil.copy(key.with_suffix(".pub"), authorized)

        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("RAY_", "MLFLOW_", "THB_", "TUNE_HARDBATCH_", "SSH_"))}
        base_env[MARKER_VAR] = marker
        for name, ip in (("head", HEAD_IP), ("worker", WORKER_IP)):
            # What the machine's administrator put in ~/.bashrc: where setup-node.sh keeps the virtualenv.
            bashrc = f"# this machine keeps the tune-hardbatch virtualenv here (cluster/setup-node.sh)\n" \
                     f"export THB_VENV={NODE_VENV}\n"
            hosts.append(SshHost(name, ip, root, shared, authorized, base_env).start(bashrc))
        head, worker = hosts
        for host in hosts:  # fail fast (ray up would retry for minutes)
            probe = subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                                    "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-i", str(key),
                                    f"root@{host.ip}", "echo $HOME; mountpoint /mnt/shared"],
                                   capture_output=True, text=True, timeout=30, env=base_env)
            assert probe.returncode == 0, (probe.stdout, probe.stderr, (host.dir / "sshd.log").read_text()[-2000:])
        timings["hosts"] = time.monotonic() - t0

        # The client: "On your machine, once" of docs/CLUSTER.md, in a home and TMPDIR of its own.
        env = {**base_env, "HOME": str(client_home), "TMPDIR": str(client_tmp), "RAY_AUTH_MODE": "token",
               "RAY_USAGE_STATS_ENABLED": "0",
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        sh = Shell(repo, env, root / "commands.log")
        sh.run([RAY, "get-auth-token", "--generate"], timeout=60)
        token = (client_home / ".ray" / "auth_token").read_text().strip()
        assert len(token) >= 32
        sh.run(["bash", "-c", f"rm -rf dist && {sys.executable} -m pip wheel -q --no-deps -w dist ."], timeout=300)
        (client_home / ".tune-hardbatch").mkdir()
        env_file = client_home / ".tune-hardbatch" / "mlflow.env"
        shutil.copy(repo / "cluster" / "mlflow.env.example", env_file)
        env_text = env_file.read_text()
        env_text = re.sub(r"^MLFLOW_BACKEND_STORE_URI=.*$",
                          "MLFLOW_BACKEND_STORE_URI=sqlite:////mnt/shared/tune-hardbatch/mlflow/mlflow.db",
                          env_text, flags=re.MULTILINE)
        env_text = re.sub(r"^MLFLOW_ARTIFACTS_DESTINATION=.*$",
                          "MLFLOW_ARTIFACTS_DESTINATION=/mnt/shared/tune-hardbatch/mlflow/artifacts",
                          env_text, flags=re.MULTILINE)
        env_text = re.sub(r"^# (MLFLOW_HOST=127\.0\.0\.1|MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false)\b.*$", r"\1",
                          env_text, flags=re.MULTILINE)
        assert re.search(r"^MLFLOW_HOST=127\.0\.0\.1$", env_text, re.MULTILINE), "mlflow.env.example lacks MLFLOW_HOST"
        env_file.write_text(env_text)
        fill_in(repo / CONFIG, {"head_ip": HEAD_IP, "worker_ips": WORKER_IP, "ssh_user": "root",
                                "ssh_private_key": str(key)})  # ssh reads ~ as the real /root
        timings["client"] = time.monotonic() - t0

        # ray up: the head (setup, Ray, MLflow); its autoscaler then sets up the worker.
        up = sh.run([RAY, "up", "-y", CONFIG], timeout=900)
        timings["ray up"] = time.monotonic() - t0
        assert re.search(r"setup-node: (installing|the requirements of .* are met|creating)", up.stdout), up.stdout[-3000:]
        assert "MLflow server on port 5000" in up.stdout, up.stdout[-3000:]
        deadline = time.monotonic() + 300
        while True:
            status = sh.run([RAY, "exec", CONFIG, "ray status"], timeout=120, check=False)
            if cluster_cpus(status.stdout) > 0 or time.monotonic() > deadline:
                break  # the head has none: the worker is in
            time.sleep(2)
        assert cluster_cpus(status.stdout) > 0, status.stdout[-4000:]
        timings["worker in"] = time.monotonic() - t0
        # The worker's setup ran through the same script and found the head's wheel installed.
        # (session_latest is a link that means something only inside the host: take the newest session)
        session = max((head.tmp / "ray").glob("session_2*"))
        monitor_logs = "".join(p.read_text(errors="replace") for p in (session / "logs").glob("monitor*"))
        assert "is installed in" in monitor_logs and "nothing to do" in monitor_logs, monitor_logs[-3000:]

        # The dashboard / job API through the documented tunnel (a free local port: 8265 is the head's here).
        dash_port, mlflow_port = _free_port(), _free_port()
        sh.popen([RAY, "dashboard", "-p", str(dash_port), CONFIG], "ray-dashboard.log")
        ssh_tunnel = sh.popen(["ssh", "-N", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                               "UserKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes", "-i", str(key),
                               "-L", f"{mlflow_port}:127.0.0.1:5000", f"root@{HEAD_IP}"], "ssh-tunnel.log")
        job_api = f"http://127.0.0.1:{dash_port}"
        wait_for_http(job_api + "/api/version", timeout=60)
        wait_for_http(f"http://127.0.0.1:{mlflow_port}/health", timeout=60)
        assert ssh_tunnel.poll() is None

        # Token authentication: no token or a wrong one is turned away, the cluster's gets in.
        with pytest.raises(urllib.error.HTTPError) as refused:
            http_json(job_api + "/api/jobs/")
        assert refused.value.code in (401, 403)
        wrong = sh.run([RAY, "job", "list", "--address", job_api], timeout=60, check=False,
                       env={"RAY_AUTH_TOKEN": secrets.token_hex(32)})
        assert wrong.returncode != 0 and "Invalid authentication token" in wrong.stdout, wrong.stdout[-2000:]
        sh.run([RAY, "job", "list", "--address", job_api], timeout=60)

        # The search: the documented submission, shortened; trials need a CPU, which only the worker has.
        out_dir = "/mnt/shared/tune-hardbatch/runs"
        sh.run([RAY, "job", "submit", "--address", job_api, "--working-dir", "search_spaces",
                "--submission-id", "thb-launch", "--no-wait", "--",
                "tune-hardbatch", "search", "default.yaml", "--address", "auto", "--out", out_dir,
                "--set", f"run.name={RUN_NAME}", "--set", "tracking.uri=http://127.0.0.1:5000",
                "--set", "resources.cpu=1", "--set", "search.num_samples=2", "--set", "arms.trim=null", "--set", "arms.splits=null", "--set", "base.epochs=2",
                "--set", "confirm.seeds=0"],
               timeout=120)
        logs = sh.run([RAY, "job", "logs", "--address", job_api, "--follow", "thb-launch"], timeout=600)
        status = sh.run([RAY, "job", "status", "--address", job_api, "thb-launch"], timeout=60)
        assert "Job 'thb-launch' succeeded" in status.stdout, status.stdout + logs.stdout[-4000:]
        timings["search"] = time.monotonic() - t0

        # From outside the cluster: the results on the shared disk ...
        exp = shared / "tune-hardbatch" / "runs" / RUN_NAME
        with open(exp / "results.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 2, rows
        assert {r["status"] for r in rows} <= {"finished", "stopped_early"}, [r["status"] for r in rows]
        for row in rows:
            with open(exp / row["trial_id"] / "result.json") as fh:
                results = [json.loads(line) for line in fh if line.strip()]
            assert results and {r["node_ip"] for r in results} == {WORKER_IP}, (row["trial_id"], results[:1])
        assert (exp / "best_config.yaml").is_file()
        report_md = exp / "report.md"
        before = report_md.stat().st_mtime_ns if report_md.exists() else 0
        sh.run([RAY, "exec", CONFIG, f"tune-hardbatch report {out_dir}/{RUN_NAME}"], timeout=180)
        assert report_md.stat().st_mtime_ns > before and report_md.read_text().strip()  # written on the head

        # ... and MLflow through the SSH tunnel: one parent run for the search, a child run per trial.
        mlflow = f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow"
        experiment = http_json(f"{mlflow}/experiments/get-by-name?experiment_name=tune-hardbatch")["experiment"]
        runs = http_json(f"{mlflow}/runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                                   "max_results": 100}).get("runs", [])
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        parents = [r for r, t in zip(runs, tags) if "mlflow.parentRunId" not in t]
        children = [r for r, t in zip(runs, tags) if "mlflow.parentRunId" in t]
        assert len(parents) == 1 and len(children) == 2, [r["info"]["run_name"] for r in runs]
        assert all(t.get("mlflow.parentRunId") == parents[0]["info"]["run_id"] for t in tags if "mlflow.parentRunId" in t)
        assert all(r["data"].get("metrics") for r in children)
        assert sorted(t.get("status") for t in tags if "mlflow.parentRunId" in t) == sorted(r["status"] for r in rows)
        assert (shared / "tune-hardbatch" / "mlflow" / "mlflow.db").is_file()
        timings["checks"] = time.monotonic() - t0

        # Tear down as documented; then nothing but the SSH servers may be left on either host.
        stop = sh.run([RAY, "exec", CONFIG, "bash ~/tune-hardbatch/cluster/stop-onprem.sh"], timeout=120)
        assert f"ray stop on {WORKER_IP}" in stop.stdout and "stopped the MLflow server" in stop.stdout, stop.stdout
        assert not worker.non_sshd(wait_s=15), worker.non_sshd()  # (ray stop waits for its processes)
        kill_marked(MARKER_VAR, marker, 2.0)  # the tunnels (and ssh connection masters) of this client
        sh.run([RAY, "down", "-y", CONFIG], timeout=300)
        left = {"head": head.non_sshd(wait_s=30), "worker": worker.non_sshd()}
        assert not left["head"] and not left["worker"], left
        timings["ray down"] = time.monotonic() - t0
    finally:
        for host in hosts:
            host.stop()
        kill_marked(MARKER_VAR, marker, 2.0)
        leftover = {p: _cmdline(p) for p in marked_pids(MARKER_VAR, marker)}
        leftover.update({p: c for host in hosts for p, c in host.processes().items()})
        print("timings (s since start):", {k: round(v, 1) for k, v in timings.items()})
        if os.environ.get("TUNE_HARDBATCH_TEST_KEEP"):
            print("kept", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
        assert not leftover, f"processes of the test still running: {leftover}"
