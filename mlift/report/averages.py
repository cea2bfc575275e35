"""Averages over languages that compare like with like: every arm (training dataset) is averaged over the same
languages. A language that one arm lacks (missing from its results, or missing for one of its seeds) or scored NaN is
shown in its own column but left out of every arm's average, and a note says which and why; a NaN never silently
shrinks an average to fewer languages.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AverageSet:
    """The languages one average column is taken over, and those left out with the reason per arm."""

    column: str  # the report's column name, family/metric/avg[:direction]
    family: str
    metric: str
    direction: str | None
    langs: list[str]
    excluded: dict[str, list[str]] = field(default_factory=dict)  # lang -> reasons ("missing in X", "NaN in Y")

    def note(self) -> str | None:
        if not self.excluded:
            return None
        left_out = "; ".join(f"{lang} ({', '.join(why)})" for lang, why in self.excluded.items())
        over = ", ".join(self.langs) if self.langs else "none: no language is scored in every arm"
        return f"{self.column}: averaged over the languages every arm has ({over}); left out of all arms: {left_out}."


def comparable_averages(per_seed: dict[tuple[str, str], dict[Any, float]], columns: dict[str, Any],
                        labels: list[str], seeds: dict[str, list]) -> tuple[dict[tuple[str, str], list[float]],
                                                                               list[AverageSet]]:
    """Per (label, avg column name): the per-seed averages over the languages common to all arms; and the sets.

    `per_seed[(label, column name)][seed]` is a value (NaN allowed); `columns` maps column names to report Columns
    (family, metric, lang, direction); `seeds[label]` lists the label's seeds."""
    groups: dict[tuple, list[Any]] = defaultdict(list)
    for col in columns.values():
        groups[(col.family, col.metric, col.direction)].append(col)
    averages: dict[tuple[str, str], list[float]] = {}
    sets: list[AverageSet] = []
    for (family, metric, direction), cols in groups.items():
        avg_name = f"{family}/{metric}/" + ("avg:" + direction if direction else "avg")
        aset = AverageSet(avg_name, family, metric, direction, [])
        for col in cols:
            why = []
            for label in labels:
                by_seed = per_seed.get((label, col.name), {})
                if any(s not in by_seed for s in seeds.get(label, [])) or not by_seed:
                    why.append(f"missing in {label}")
                elif any(math.isnan(v) for v in by_seed.values()):
                    why.append(f"NaN in {label}")
            if why:
                aset.excluded[col.lang] = why
            else:
                aset.langs.append(col.lang)
        common = [c for c in cols if c.lang in aset.langs]
        for label in labels:
            if common:
                averages[(label, avg_name)] = [statistics.fmean(per_seed[(label, c.name)][s] for c in common)
                                               for s in sorted(seeds.get(label, []), key=str)]
        sets.append(aset)
    return averages, sets
