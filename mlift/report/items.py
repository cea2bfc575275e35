"""The report's per-item layer: language-fidelity rows, 95% intervals per cell, paired tests of each arm against the
baseline, and the pivoted interval tables (languages as rows, arms as columns) in Markdown and LaTeX.

Per-item scores come from each eval dir's items.jsonl (mlift.eval.item_scores; written from lm-eval's samples when missing).
Every cell of a column uses the same items: those every arm and seed was scored on.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlift.eval.item_scores import kind, read_items
from mlift.report.stats import ALPHA, Paired, interval, paired, point

FIDELITY = "fidelity"  # the report family; its metric is the task family whose outputs are checked (xlsum, flores)


@dataclass
class CellStats:
    value: float
    ci: tuple[float, float]
    n_items: int
    vs: Paired | None = None  # against the baseline


def column_key(row: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(report family, metric, lang, direction) of an item row: fidelity rows form their own family."""
    if row["metric"] == FIDELITY:
        return FIDELITY, row["family"], row["lang"], row.get("direction")
    return row["family"], row["metric"], row["lang"], row.get("direction")


def load_items(seeds: dict[str, list], sources: dict[str, list[str]]) -> dict[tuple, dict[Any, dict[Any, list]]]:
    """(family, metric, lang, direction, label) -> seed -> doc_id -> stats."""
    items: dict[tuple, dict[Any, dict[Any, list]]] = defaultdict(lambda: defaultdict(dict))
    for label, dirs in sources.items():
        for seed, path in zip(seeds[label], dirs):
            for row in read_items(Path(path)):
                items[(*column_key(row), label)][seed][row["doc_id"]] = row["stats"]
    return items


def fidelity_rows(items: dict[tuple, dict[Any, dict[Any, list]]]) -> list[dict[str, Any]]:
    """Table rows (as load_rows gives them) for the language-fidelity family: % of outputs in the asked language."""
    rows = []
    for (family, metric, lang, direction, label), by_seed in items.items():
        if family != FIDELITY:
            continue
        for seed, docs in by_seed.items():
            rows.append({"task": f"{FIDELITY}_{metric}", "family": FIDELITY, "metric": metric, "lang": lang,
                         "direction": direction, "value": 100.0 * float(np.mean([s[0] for s in docs.values()])),
                         "n": len(docs), "label": label, "seed": seed})
    return rows


def cell_stats(comp: Any, items: dict[tuple, dict[Any, dict[Any, list]]], baseline: str | None,
               iters: int = 1000) -> dict[tuple[str, str], CellStats]:
    """(label, column name) -> value, interval, and the paired test against `baseline`, for every column whose
    languages have per-item scores in every arm and seed."""
    out: dict[tuple[str, str], CellStats] = {}
    for col in comp.columns:
        if kind(col.metric if col.family != FIDELITY else FIDELITY) is None:
            continue
        arms = _arms(comp, items, col, _langs(comp, col))
        if not arms:
            continue
        metric = FIDELITY if col.family == FIDELITY else col.metric
        for k, label in enumerate(comp.labels):
            seed = k  # fixed draws: a rerun gives the same intervals
            arm, n = arms[label]
            lo, hi = interval(metric, arm, iters, seed)
            vs = None
            if baseline and label != baseline and baseline in arms:
                vs = paired(metric, arm, arms[baseline][0], iters, seed)
            out[(label, col.name)] = CellStats(point(metric, arm), (lo, hi), n, vs)
    return out


def _arms(comp: Any, items: dict, col: Any, langs: list[str]) -> dict[str, tuple[list[list[np.ndarray]], int]]:
    """label -> (per seed, per language: the aligned stats arrays; items per seed), or {} when an arm lacks items."""
    family, metric = col.family, col.metric
    if not langs:
        return {}
    common: dict[str, set] = {}
    for lang in langs:
        sets = []
        for label in comp.labels:
            by_seed = items.get((family, metric, lang, col.direction, label), {})
            if not by_seed or any(s not in by_seed for s in comp.seeds[label]):
                return {}
            sets += [set(by_seed[s]) for s in comp.seeds[label]]
        common[lang] = set.intersection(*sets)
        if not common[lang]:
            return {}
    out = {}
    for label in comp.labels:
        arm = [[np.array([items[(family, metric, lang, col.direction, label)][s][d] for d in sorted(common[lang], key=str)],
                         dtype=float) for lang in langs] for s in comp.seeds[label]]
        out[label] = (arm, sum(len(common[lang]) for lang in langs))
    return out


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        s = s.replace(a, b)
    return s


def _f(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.2f}"


def cell_text(st: CellStats | None) -> str:
    """`value [lo, hi]`, and for an arm against the baseline `Δ +d (p=…)` with `n.s.` when not significant."""
    if st is None:
        return "–"
    text = f"{_f(st.value)} [{_f(st.ci[0])}, {_f(st.ci[1])}]"
    if st.vs is not None:
        mark = "" if st.vs.significant else ", n.s."
        text += f" Δ {st.vs.delta:+.2f} (p={st.vs.p:.3f}{mark})"
    return text


def interval_tables(comp: Any, stats: dict[tuple[str, str], CellStats], baseline: str | None) -> list[str]:
    """Markdown: per (family, metric, direction) a table with languages (and avg) as rows and arms as columns."""
    if not stats:
        return ["## Intervals and tests", "", "No per-item scores (samples/ or items.jsonl) in these eval dirs: no "
                "intervals or tests.", ""]
    vs = f"; Δ: against {baseline}, paired permutation test over the same items" if baseline else ""
    lines = ["## Intervals and tests", "",
             f"Cells: score [95% CI: bootstrap over items, and over seeds where there are several]{vs}; "
             f"n.s.: not significant at p < {ALPHA}. fidelity: % of outputs in the language the task asked for "
             "(mlift.langid).", ""]
    groups: dict[tuple, list[Any]] = defaultdict(list)
    for c in comp.columns:
        if any((label, c.name) in stats for label in comp.labels):
            groups[(c.family, c.metric, c.direction)].append(c)
    for (family, metric, direction), cols in groups.items():
        n = sorted({stats[(label, c.name)].n_items for c in cols if c.lang != "avg" for label in comp.labels
                    if (label, c.name) in stats})
        lines += [f"### {family} {metric}" + (f" ({direction})" if direction else ""), "",
                  f"Items per language: {n[0] if len(n) == 1 else f'{n[0]}-{n[-1]}'}" if n else "", "",
                  "| language | " + " | ".join(comp.labels) + " |", "|---|" + "---|" * len(comp.labels)]
        for c in cols:
            lines.append(f"| {c.lang} | " + " | ".join(cell_text(stats.get((label, c.name))) for label in comp.labels)
                         + " |")
        lines.append("")
    return lines


def interval_latex(comp: Any, stats: dict[tuple[str, str], CellStats]) -> str:
    """The same pivoted tables for the paper; a dagger marks a difference from the baseline that is not significant."""
    parts = []
    for family_metric in dict.fromkeys((c.family, c.metric, c.direction) for c in comp.columns):
        cols = [c for c in comp.columns if (c.family, c.metric, c.direction) == family_metric
                and any((label, c.name) in stats for label in comp.labels)]
        if not cols:
            continue
        body = []
        for c in cols:
            cells = []
            for label in comp.labels:
                st = stats.get((label, c.name))
                if st is None:
                    cells.append("--")
                    continue
                mark = "" if st.vs is None or st.vs.significant else r"$^\dagger$"
                cells.append(f"{_f(st.value)}{mark} [{_f(st.ci[0])}, {_f(st.ci[1])}]")
            body.append(f"{_tex(c.lang)} & " + " & ".join(cells) + r" \\")
        title = " ".join(x for x in family_metric if x)
        parts.append(f"% {title}: 95% CI; $^\\dagger$ not significantly different from the baseline (p >= {ALPHA})\n"
                     "\\begin{tabular}{l" + "r" * len(comp.labels) + "}\n\\toprule\n" + _tex(title) + " & "
                     + " & ".join(_tex(label) for label in comp.labels) + " \\\\\n\\midrule\n" + "\n".join(body)
                     + "\n\\bottomrule\n\\end{tabular}\n")
    return "\n".join(parts)


def errors(comp: Any, stats: dict[tuple[str, str], CellStats], label: str, cols: list[Any]) -> list[list[float]] | None:
    """Asymmetric error bars (the 95% CI) for a plot, or None when a column has no interval."""
    sts = [stats.get((label, c.name)) for c in cols]
    if not sts or any(s is None for s in sts):
        return None
    return [[max(0.0, s.value - s.ci[0]) for s in sts], [max(0.0, s.ci[1] - s.value) for s in sts]]


def reference_verdicts(comp: Any, items: dict, refs: list[dict[str, Any]], iters: int = 1000) -> None:
    """Add `verdict` and `verdict_why` to each published-figure row: our paired difference (relative % or points, as
    the paper reports it) with its interval and p against the paper's figure (mlift.report.stats.verdict)."""
    from mlift.report.stats import verdict

    cols = {c.name: c for c in comp.columns}
    for ref in refs:
        col = cols.get(ref.get("column") or "")
        base = ref.get("baseline")
        arms = _arms(comp, items, col, _langs(comp, col)) if col is not None and base else {}
        if not arms:
            why = "no column of ours to compare" if col is None or not base else "no per-item scores"
            ref["verdict"], ref["verdict_why"] = "inconclusive", why
            continue
        metric = FIDELITY if col.family == FIDELITY else col.metric
        pr = paired(metric, arms[ref["ours"]][0], arms[base][0], iters, 0)
        if "relative_pct" in ref:
            ours, ci, papers = pr.rel_pct, pr.rel_ci, [float(ref["relative_pct"])]
        else:  # several reported figures (e.g. one per model): a verdict on each
            ours, ci, papers = pr.delta, pr.ci, [float(x) for x in ref["delta_points"]]
        if ours is None or ci is None:
            ref["verdict"], ref["verdict_why"] = "inconclusive", "the baseline scores 0: no relative difference"
            continue
        per_lang = min(len(block) for block in arms[ref["ours"]][0][0])
        found = [verdict(paper, ours, ci, pr.p, n_items=per_lang) for paper in papers]
        ref["verdict"] = " / ".join(dict.fromkeys(v for v, _ in found))
        ref["verdict_why"] = "; ".join(dict.fromkeys(w for _, w in found))
        ref["ours_ci"], ref["p"] = ci, pr.p


def _langs(comp: Any, col: Any) -> list[str]:
    if col.lang != "avg":
        return [col.lang]
    return next((a.langs for a in comp.averages if a.column == col.name), [])


def missing_lines(comp: Any) -> list[str]:
    """One line per (family, metric) with no value in any arm, saying why, instead of an empty chart."""
    lines = []
    for fm in dict.fromkeys((c.family, c.metric) for c in comp.columns):
        cells = [comp.cell(label, c).mean for c in comp.columns if (c.family, c.metric) == fm for label in comp.labels]
        if all(v is None or math.isnan(v) for v in cells):
            lines.append(f"- {fm[0]} {fm[1]}: not computed in any arm ({_why_missing(fm[1])}); no chart.")
    return ["## Metrics without values", "", *lines, ""] if lines else []


def _why_missing(metric: str) -> str:
    if metric == "spbleu":
        from mlift.eval.metrics import MetricResourceError, _flores200_tokenizer

        try:
            _flores200_tokenizer()
        except MetricResourceError as exc:
            return str(exc).split(";")[0]
    return "the eval logged why; every run scored it NaN"


STATS_FIELDS = ["ci_low", "ci_high", "n_items", "delta_ci_low", "delta_ci_high", "p_vs_baseline", "significant"]


def stats_row(st: CellStats | None, as_dict: bool = False) -> list[Any] | dict[str, Any]:
    """A cell's interval and test for table.csv (blank without per-item scores) or report.json."""
    vals: list[Any] = [""] * len(STATS_FIELDS)
    if st is not None:
        vals = [st.ci[0], st.ci[1], st.n_items, *(st.vs.ci if st.vs else ("", "")),
                st.vs.p if st.vs else "", st.vs.significant if st.vs else ""]
    if as_dict:
        return {"value": st.value if st else None, **{k: (None if v == "" else v) for k, v in zip(STATS_FIELDS, vals)}}
    return vals


def mark_not_significant(ax: Any, stats: dict[tuple[str, str], CellStats], label: str, cols: list[Any],
                         xs: list[float]) -> None:
    """`n.s.` above the error bar of a bar whose difference from the baseline is not significant."""
    for x, c in zip(xs, cols):
        st = stats.get((label, c.name))
        if st is not None and st.vs is not None and not st.vs.significant:
            ax.text(x, st.ci[1], "n.s.", ha="center", va="bottom", fontsize=6)
