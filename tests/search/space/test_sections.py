"""The `search`, `confirm`, ... sections (`space.sections`): bad and misspelt keys name the key. No Ray here."""

from __future__ import annotations

import pytest
from search_helpers import BASE

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import space as SP


@pytest.mark.parametrize("section, key, fragment", [
    ({"confirm": {"seeds": -1}}, "confirm.seeds", "integer >= 0"),
    ({"confirm": {"max_arms": 0}}, "confirm.max_arms", "integer >= 1"),
    ({"confirm": {"sedes": 3}}, "confirm.sedes", "did you mean confirm.seeds"),
    ({"confirm": {"resolution": 0}}, "confirm.resolution", "0 < resolution < 100"),
    ({"confirm": {"resolution": 150.0}}, "confirm.resolution", "0 < resolution < 100"),
    ({"confirm": {"resolution": True}}, "confirm.resolution", "0 < resolution < 100"),
    ({"confirm": {"max_seeds": 1}}, "confirm.max_seeds", "integer >= 2"),
    ({"confirm": {"looks": 6}}, "confirm.looks", "1 <= looks <= 5"),
    ({"confirm": {"looks": 0}}, "confirm.looks", "1 <= looks <= 5"),
    ({"confirm": {"test_limit": 0}}, "confirm.test_limit", "integer >= 1"),
    ({"confirm": {"equivalence_margin": 100}}, "confirm.equivalence_margin", "0 < equivalence_margin < 100"),
    ({"confirm": {"primary": "trim vs plain"}}, "confirm.primary", "a list of comparisons"),
    ({"confirm": {"primary": ["trim versus plain"]}}, "confirm.primary", "'ARM vs OTHER'"),
    ({"confirm": {"primary": ["trim vs nope"]}, "arms": {"plain": {}, "trim": {"fixed": {"trim.schedule": "linear"}}},
      "space": {"optim.lr": {"choice": [0.1]}}}, "confirm.primary", "no arm named 'nope'"),
    ({"search": {"allow_test_metric": "yes"}}, "search.allow_test_metric", "true, false"),
])
def test_bad_confirm_and_search_keys(section, key, fragment):
    with pytest.raises(UserError) as info:
        SP.validate_space({"base": BASE, **section})
    assert info.value.key == key and fragment in str(info.value)
