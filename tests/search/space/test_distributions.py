"""The `space` section's distributions (`space.distributions`, checked per corner by `space.corners`): each bad
value is one `UserError` naming the space key and what is allowed. No Ray here."""

from __future__ import annotations

import pytest
from search_helpers import BASE

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP


@pytest.mark.parametrize("dims, key, fragment", [
    ({"hard_batch.delta": {"uniform": [0, 1]}}, "space.hard_batch.delta", "0 < delta <= 1"),
    ({"optim.lr": {"loguniform": [0.3, 0.01]}}, "space.optim.lr", "low < high"),
    ({"optim.lr": {"loguniform": [0, 0.1]}}, "space.optim.lr", "0 < low"),
    ({"hard_batch.delta": {"choice": []}}, "space.hard_batch.delta", "non-empty"),
    ({"seed": {"grid": [0, 1]}}, "space.seed", "searcher random or grid"),
    ({"optim.nope": {"uniform": [0, 1]}}, "space.optim.nope", "unknown config key"),
    ({"optim.batch_size": {"uniform": [32, 64]}}, "space.optim.batch_size", "int"),
    ({"optim.batch_size": {"int": [32, 100, 32]}}, "space.optim.batch_size", "multiple of the step"),
    ({"optim.lr": {"normal": [0, 1]}}, "space.optim.lr", "loguniform"),
    ({"trim.schedule": {"choice": ["linear"]}, "trim.p_start": {"choice": [0.5, 1.0]},
      "trim.p_end": {"uniform": [0.2, 0.8]}}, "space.trim.p_end", "p_end <= p_start"),
])
def test_bad_space_values_name_the_key(dims, key, fragment):
    with pytest.raises(UserError) as info:
        SP.validate_space({"base": BASE, "space": dims})
    assert info.value.key == key and fragment in str(info.value)
