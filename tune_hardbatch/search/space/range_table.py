"""Every numeric setting's range, as one table: the training config's (`training.ranges.CONFIG_RANGES`),
each declared strategy's (`Declaration.ranges`) and the search sections' (`sections.SECTION_RANGES`).

The same `Range` objects check the values (`training.ranges.check`) and render this table, which README's
"Ranges" section holds (a test keeps the two alike: `python -m tune_hardbatch.search.space.range_table` prints it)
and which the sections' docstring carries, so no setting can be checked one way and documented another.
"""

from __future__ import annotations

from ...training.ranges import CONFIG_RANGES, Range, describe
from ...training.strategies import registry
from .sections import SECTION_RANGES


def table() -> dict[str, Range]:
    """Dotted key -> range, as a space file spells it (training keys under `base.`)."""
    out = {f"base.{k}": r for k, r in CONFIG_RANGES.items()}
    for d in registry.declarations():
        out.update({f"base.{d.name}.{k}": r for k, r in d.ranges.items()})
    for section, ranges in SECTION_RANGES.items():
        out.update({f"{section}.{k}": r for k, r in ranges.items()})
    return out


def markdown() -> str:
    """The table as Markdown rows: key, allowed values, what the number means."""
    rows = ["| key | allowed | meaning |", "|---|---|---|"]
    for key, rng in table().items():
        rows.append(f"| `{key}` | {describe(rng, key.rpartition('.')[2])} | {rng.why} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
