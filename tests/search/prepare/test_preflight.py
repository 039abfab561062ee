"""The pre-flight check in a child process (`search.prepare.preflight`): its answer, its mistakes as `UserError`s, a
child that dies, and the driver's side without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP
from tune_hardbatch.search.prepare import preflight


@pytest.mark.e2e  # two pre-flight children, each importing torch and timm
@pytest.mark.timeout(120)
def test_a_good_space_passes_and_a_bad_model_is_its_user_error():
    spec = SP.load_space(None)
    assert preflight.start(spec, local=True).result() > 0
    bad = SP.load_space(None, ["base.model.name=vit_tiny_patch16_224"])
    with pytest.raises(UserError) as err:
        preflight.start(bad, local=True).result()
    assert err.value.key == "base.model.name" and "cannot take 1x8x8 input" in str(err.value)


def test_a_child_that_dies_without_its_answer_is_a_runtime_error_with_its_last_line():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with pytest.raises(RuntimeError, match="pre-flight check of the space died: boom"):
        preflight.Preflight(proc).result()

