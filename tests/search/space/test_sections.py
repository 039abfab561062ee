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
    ({"search": {"allow_test_metric": "yes"}}, "search.allow_test_metric", "true, false"),
])
def test_bad_confirm_and_search_keys(section, key, fragment):
    with pytest.raises(UserError) as info:
        SP.validate_space({"base": BASE, **section})
    assert info.value.key == key and fragment in str(info.value)
