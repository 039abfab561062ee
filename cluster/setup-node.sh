#!/usr/bin/env bash
# Install this checkout's wheel, with its `cluster` extra (pyproject.toml: ray[default,tune] pinned, the
# MLflow range, psycopg2-binary, boto3), into a virtualenv made with this node's own Python, and put that
# virtualenv first on PATH in every login shell. The one node setup of every launch recipe:
#   cluster/onprem.yaml, cluster/aws-gpu.yaml  setup_commands (each node, after `ray up` copied ./dist there)
#   cluster/Dockerfile                         the image of cluster/kuberay.yaml (into the image's Python)
#
# Packages come from wherever this node's pip is configured to take them (pip.conf, PIP_INDEX_URL,
# PIP_FIND_LINKS: PyPI, a site mirror, a wheelhouse); nothing else is downloaded (no Python builds, no
# installers). Safe to rerun (`ray up` reruns setup on every node): when this very wheel (same sha256, same
# extras) is installed in the virtualenv already, it does nothing. Concurrent runs on one virtualenv (a home
# directory on NFS shared by the nodes) take turns (flock).
#
# Settings (environment):
#   THB_DIST    a directory with exactly one tune_hardbatch-*.whl (default ~/tune-hardbatch/dist)
#   THB_VENV    the virtualenv (default ~/thb); created when it has no bin/python, else used as it is
#               (also an existing environment such as a container image's own Python)
#   THB_PYTHON  the Python that creates it (default python3, the node's own; >= 3.10)
#   THB_EXTRAS  the wheel's extras to install (default cluster)
#   THB_BASHRC  the file that gets `export PATH="$THB_VENV/bin:$PATH"` (default ~/.bashrc; empty: none)
set -euo pipefail

dist="${THB_DIST:-$HOME/tune-hardbatch/dist}"
venv="${THB_VENV:-$HOME/thb}"
python="${THB_PYTHON:-python3}"
extras="${THB_EXTRAS:-cluster}"
bashrc="${THB_BASHRC-$HOME/.bashrc}"

say() { echo "setup-node: $*"; }
die() { echo "setup-node: error: $*" >&2; exit 1; }

shopt -s nullglob
wheels=("$dist"/tune_hardbatch-*.whl)
shopt -u nullglob
[ "${#wheels[@]}" -eq 1 ] || die "expected exactly one tune_hardbatch-*.whl in $dist, found ${#wheels[@]} (build it with: rm -rf dist && python -m pip wheel --no-deps -w dist .)"
wheel="${wheels[0]}"
want="$(sha256sum "$wheel" | cut -d' ' -f1) [$extras]"

mkdir -p "$venv"
if command -v flock >/dev/null; then
    exec 9>"$venv/.tune-hardbatch-setup.lock"
    flock 9
fi

add_to_path() {
    [ -n "$bashrc" ] || return 0
    local line="export PATH=\"$venv/bin:\$PATH\""
    touch "$bashrc"
    grep -qxF "$line" "$bashrc" || echo "$line" >> "$bashrc"
}

marker="$venv/.tune-hardbatch-wheel"
if [ -x "$venv/bin/python" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want" ] \
        && "$venv/bin/python" -c 'import importlib.metadata as m; m.distribution("tune-hardbatch")' 2>/dev/null; then
    add_to_path
    say "$(basename "$wheel") [$extras] is installed in $venv already: nothing to do"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    command -v "$python" >/dev/null || die "no $python on this node (set THB_PYTHON to a Python >= 3.10)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "$python is Python $("$python" -c 'import platform; print(platform.python_version())'); tune-hardbatch needs >= 3.10 (set THB_PYTHON)"
    say "creating the virtualenv $venv with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$python" -m venv "$venv" \
        || die "'$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi

# Are all requirements of this wheel with these extras (the new wheel's own metadata, followed through
# what is installed) met in the virtualenv already? Then pip's resolver would change nothing: skip it (it
# takes ~20 s over the ~150 installed distributions) and only replace the code.
deps_met() {
    "$venv/bin/python" - "$wheel" "$extras" <<'PY'
import email.parser, importlib.metadata as md, sys, zipfile
try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a fresh virtualenv: pip's own copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

with zipfile.ZipFile(sys.argv[1]) as zf:
    meta = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
    top = email.parser.Parser().parsestr(zf.read(meta).decode()).get_all("Requires-Dist") or []
seen = set()


def met(reqs, extras):
    for text in reqs:
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras):
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            return False
        if not req.specifier.contains(dist.version, prereleases=True):
            return False
        for extra in {""} | set(req.extras):
            key = (canonicalize_name(req.name), extra)
            if key not in seen:
                seen.add(key)
                if not met(dist.requires or [], {"", extra}):
                    return False
    return True


sys.exit(0 if met(top, {""} | set(filter(None, sys.argv[2].split(",")))) else 1)
PY
}

rm -f "$marker"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off)
if deps_met; then
    say "the requirements of $(basename "$wheel") [$extras] are met in $venv: replacing the code only"
else
    say "installing $(basename "$wheel") [$extras] into $venv"
    "${pip[@]}" "$wheel[$extras]"
fi
# Exactly this wheel's code: pip keeps an installed tune-hardbatch of the same version (a rebuilt checkout).
"${pip[@]}" --no-deps --force-reinstall "$wheel"
echo "$want" > "$marker"
add_to_path
say "done: $("$venv/bin/python" - <<'PY'
import importlib.metadata as m
have = []
for d in ("tune-hardbatch", "ray", "mlflow", "torch"):
    try:
        have.append(f"{d} {m.version(d)}")
    except m.PackageNotFoundError:
        pass
print(", ".join(have))
PY
)"
