"""The recorded loop cases, run on kernels that every x86-64 CPU computes alike (run as a script).

Float results depend on the kernels a CPU gets: ATen's AVX2 and AVX-512 paths, MKL's and oneDNN's
dispatch, and the number of threads all change the order of additions, so a recording made on one CPU
differs from another's in the 7th digit and, a few SGD steps later, by whole samples. These settings
pin each library to its baseline kernels and one thread, where the same inputs give the same bits.

    python tests/training/portable_loop.py            # print every case's reports (JSON)
    python tests/training/portable_loop.py --record   # rewrite the recording from this checkout
"""

import json
import os
import subprocess
import sys
from pathlib import Path

RECORDED = Path(__file__).parent / "data" / "loop_reports.json"
PORTABLE = {
    "ATEN_CPU_CAPABILITY": "default",  # ATen's vectorised kernels: the baseline path, no AVX2/AVX-512
    "MKL_CBWR": "COMPATIBLE",  # MKL's conditional bitwise reproducibility: the same code path on any x86
    "DNNL_MAX_CPU_ISA": "SSE41",  # oneDNN (convolutions): no wider ISA than every x86-64 CPU has
    "OMP_NUM_THREADS": "1",  # a reduction split over threads adds in another order
    "MKL_NUM_THREADS": "1",
}


def reports_of(recorded: dict, names) -> dict:
    """The named cases' reports, restricted to the recorded keys (run in this process as it is set up)."""
    import torch

    from tune_hardbatch.metrics import json_safe
    from tune_hardbatch.training.config import build_config
    from tune_hardbatch.training.loop import Trainer

    torch.set_num_threads(1)
    out = {}
    for name in names:
        case = recorded["cases"][name]
        keys = case["reports"][0].keys()
        reports = Trainer(build_config({**recorded["base"], **case["mapping"]})).run()
        out[name] = [{k: json_safe(r)[k] for k in keys} for r in reports]
    return out


def run_portable(names=None, workers: int = 2) -> dict:
    """The named cases' (default: every case's) `reports_of`, in fresh interpreters with the portable
    settings (set before import): `workers` of them at once, each on one thread."""
    names = names or list(json.loads(RECORDED.read_text())["cases"])
    parts = [names[i::workers] for i in range(min(workers, len(names)))]
    children = [subprocess.Popen([sys.executable, __file__, *part], env={**os.environ, **PORTABLE},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for part in parts]
    out = {}
    for child in children:
        stdout, stderr = child.communicate()
        assert child.returncode == 0, stderr[-3000:]
        out.update(json.loads(stdout))
    return out


if __name__ == "__main__":
    recorded = json.loads(RECORDED.read_text())
    names = [a for a in sys.argv[1:] if not a.startswith("--")] or list(recorded["cases"])
    if os.environ.get("ATEN_CPU_CAPABILITY") != PORTABLE["ATEN_CPU_CAPABILITY"]:
        got = run_portable(names)  # started by hand: rerun with the settings in place
    else:
        got = reports_of(recorded, names)
    if "--record" in sys.argv:
        for name, reports in got.items():
            recorded["cases"][name]["reports"] = reports
        RECORDED.write_text(json.dumps(recorded, indent=1) + "\n")
    else:
        print(json.dumps(got, sort_keys=True))
