"""The example plug-in (`examples/loss_threshold`) as a user installs it: `pip install` into a directory of
its own, found through its entry point by the driver and every Ray worker, searched as an arm next to plain
SGD, confirmed on seeds and judged in verdict.json."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from search_helpers import ENV, run_cli, space

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def env(tmp_path_factory):  # its own tests (examples/loss_threshold/tests) are for its users: README there
    """The example installed with pip into a directory of its own, on the path of every process started."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(REPO / "examples" / "loss_threshold")], check=True, timeout=300,
                   capture_output=True)
    return {**ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), ENV.get("PYTHONPATH")]))}


def test_the_loss_threshold_plugin_is_searched_and_judged_as_an_arm(env, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space(
        base={"epochs": 2, "data": {"name": "digits", "val_fraction": 0.2, "train_limit": 600}},
        space={"optim.lr": {"loguniform": [0.03, 0.2]}},
        arms={"plain": {}, "lossthr": {"fixed": {"loss_threshold.factor": 1.0}}},
        search={"trials_per_arm": 1, "scheduler": "fifo"}, confirm={"seeds": 2})))
    code, out, err = run_cli([str(path), "--out", str(tmp_path / "runs")], timeout=600, env=env)
    assert code == 0, err[-3000:]
    verdict = json.loads(next((tmp_path / "runs").rglob("verdict.json")).read_text())
    arms = {a["arm"]: a for a in verdict["arms"]}
    assert set(arms) == {"plain", "lossthr"} and arms["lossthr"]["family"] == "lossthr"
    assert arms["lossthr"]["n"] == 2 and arms["plain"]["is_baseline"]
    assert [d["baseline"] for d in arms["lossthr"]["diffs"]] == ["plain"] and arms["lossthr"]["diffs"][0]["n"] == 2
    assert "lossthr" in out  # the printed verdict names it
