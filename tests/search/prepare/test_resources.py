"""Resources (`search.prepare.resources`): a trial's CPUs and GPUs against this machine or a cluster's nodes,
and how many trials run at once."""

from __future__ import annotations

import time

from search_helpers import run_cli

from tune_hardbatch.search import space as SP
from tune_hardbatch.search.prepare import check_resources


def test_concurrency_is_the_sum_of_what_fits_on_each_node():
    spec = SP.load_space(None, ["resources.gpu=0.3", "resources.cpu=1"])
    assert check_resources(spec, 8, 1, nodes=[(8.0, 1.0)] * 16) == 48  # 3 per GPU, not 16 / 0.3 = 53
    assert check_resources(spec, 8, 1, nodes=[(8.0, 1.0), (2.0, 1.0), (8.0, 0.0)]) == 5  # CPUs bind too


def test_bad_resources_real_cli_exit_2(tmp_path):
    start = time.time()
    code, out, err = run_cli(["--set", "resources.gpu=0.5", "--out", str(tmp_path)], timeout=60)
    assert code == 2 and err.strip().startswith("error: resources.gpu") and "0 GPUs" in err
    assert len(err.strip().splitlines()) == 1 and time.time() - start < 60
