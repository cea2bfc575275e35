"""Published figures and protocol facts (results/references.yaml) set beside a report's own numbers, for the arms
(dataset labels) the report holds."""

from __future__ import annotations

import fnmatch
from typing import Any


def relative_pct(mine: float | None, base: float | None) -> float | None:
    """(mine - base) / |base| in %, the way the papers report "+17.57%"; None without a nonzero baseline."""
    return (mine - base) / abs(base) * 100 if mine is not None and base else None


def reference_rows(comp: Any, references: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Published gains next to ours, for each reference whose arms are in this report (results/references.yaml):
    `relative_pct` against our relative gain, `delta_points` against our difference in points (where the reference
    names the family/metric it is over; otherwise shown alone)."""
    rows = []
    for ref in references:
        if "relative_pct" not in ref and "delta_points" not in ref:
            continue
        base = ref.get("baseline")
        if ref.get("ours") not in comp.labels or (base is not None and base not in comp.labels):
            continue
        col = next((c for c in comp.columns if c.family == ref.get("family") and c.metric == ref.get("metric")
                    and c.lang == "avg"), None)
        mine = comp.cell(ref["ours"], col).mean if col else None
        theirs = comp.cell(base, col).mean if col and base else None
        if "relative_pct" in ref:
            if col is None:
                continue
            ours = relative_pct(mine, theirs)
        else:
            ours = mine - theirs if mine is not None and theirs is not None else None
        rows.append({**ref, "column": col.name if col else None, "ours_pct" if "relative_pct" in ref else "ours_points": ours})
    return rows


def reference_facts(comp: Any, references: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Protocol facts (`fact`, `applies_to`: a label glob) for the labels in this report."""
    return [ref for ref in references if "fact" in ref
            and any(fnmatch.fnmatchcase(label, str(ref.get("applies_to", ""))) for label in comp.labels)]
