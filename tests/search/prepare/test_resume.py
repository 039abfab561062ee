"""Where a search runs and `--resume` (`search.prepare.resume`): the saved space, what may change on resume (applied and
said), what may not (refused naming the key), and the starting command plus `--resume NAME` accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import prepare
from tune_hardbatch.search import space as SP


def test_resume_applies_what_may_change_and_says_so(searches):
    spec, _, name, resuming = prepare.resolve_run(None, ["run.max_failures=3"], "old", str(searches))
    assert resuming and name == "old" and spec.run.max_failures == 3
    assert any("--resume applies run.max_failures = 3 (was 1)" in n for n in spec.notes)
    same, *_ = prepare.resolve_run(None, ["search.num_samples=4"], "old", str(searches))  # no change: fine
    assert same.search.num_samples == 4 and not same.notes


def test_resume_with_the_starting_command_is_accepted(tmp_path):
    """The command that started a search, plus --resume NAME, continues it (the hint the tool prints)."""
    out = tmp_path / "out"
    sets = ["search.num_samples=4", "run.name=s1"]
    spec, storage, name, _ = prepare.resolve_run(None, sets, None, str(out))
    Path(storage, name).mkdir(parents=True)
    from tune_hardbatch.output.console import space_yaml

    Path(storage, name, "search_space.yaml").write_text(space_yaml(spec))
    again, _, _, resuming = prepare.resolve_run(str(SP.DEFAULT_SPACE), sets, "s1", str(out))
    assert resuming and again.search.num_samples == 4
    with pytest.raises(UserError, match=r"^base\.optim\.lr: .*the space gives"):
        prepare.resolve_run(str(SP.DEFAULT_SPACE), [*sets, "optim.lr=0.5"], "s1", str(out))
