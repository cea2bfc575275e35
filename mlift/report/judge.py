"""Per-language judge scores per model (Pinch's figure): a table of score % by language (mean over seeds, +- std) and a
line plot per arm family with x = the mixture's P (read from the label: pinch-P10 is P = 10 of family `pinch`), one line
per language, 50 = parity.

Input: `mlift judge` output dirs (their scores.json), each named `LABEL@SEED=DIR`. Labels that carry no P (e.g. the
unseen-language split) are rows of the table, not points of the figure."""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from mlift.recipe import RecipeError
from mlift.report.judge_fidelity import fidelity_lines

DEFAULT_X = r"^(.*)-P(\d+(?:\.\d+)?)$"   # group 1: the family (one figure each), group 2: x


def load_scores(results: list[str], quality: dict[str, dict[str, list[dict]]] | None = None
                ) -> dict[str, dict[str, list[float]]]:
    """label -> lang -> [score % per seed]; `quality`, when given, gets label -> lang -> [that language's counts of
    excluded pairs and position bias per seed] (a language with no scored pair has no score)."""
    from mlift.report.tables import parse_result_arg

    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for arg in results:
        label, _seed, path = parse_result_arg(arg)
        scores = path / "scores.json"
        if not scores.is_file():
            raise RecipeError(f"{arg}: no {scores} (expected the output dir of `mlift judge`)")
        data = json.loads(scores.read_text())
        label = label or data.get("model_a") or path.name
        for lang, s in data["scores"].items():
            if s["score"] is not None:
                table[label][lang].append(100 * s["score"])
            if quality is not None:
                quality.setdefault(label, {}).setdefault(lang, []).append(s)
    return {k: dict(v) for k, v in table.items()}


def _quality_cell(runs: list[dict]) -> str:
    """Excluded pairs (unparsed + failed) of all pairs, and pairs with the same position chosen in both orders of the
    scored ones, summed over seeds (runs written before these counts existed show what they have)."""
    if not runs:
        return ""
    pairs = sum(r.get("pairs", r["n"]) for r in runs)
    excl = sum(r.get("unparsed", 0) + r.get("failed", 0) for r in runs)
    scored = sum(r["n"] for r in runs)
    same = sum(r.get("same_position", 0) for r in runs)
    return f"{excl}/{pairs} ({_pct(excl, pairs)}) · {same}/{scored} ({_pct(same, scored)})"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _cell(values: list[float]) -> str:
    if not values:
        return ""
    mean = statistics.fmean(values)
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f} ± {statistics.stdev(values):.1f}"


def x_of(label: str, pattern: str) -> float | None:
    m = re.search(pattern, label)
    return float(m.group(2)) if m else None


def family_of(label: str, pattern: str) -> str | None:
    m = re.search(pattern, label)
    return m.group(1) if m else None


def make_judge_report(results: list[str], out: str | Path, x_pattern: str = DEFAULT_X) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    quality: dict[str, dict[str, list[dict]]] = {}
    scores = load_scores(results, quality)
    langs = sorted({lang for v in quality.values() for lang in v if lang != "all"}) + ["all"]
    labels = sorted(quality, key=lambda k: (family_of(k, x_pattern) or "~", x_of(k, x_pattern) or 0, k))
    lines = ["# Judge scores (%) vs the monolingual model of each language (50 = parity)", "",
             "Win 1 (chosen in both orders), tie 0.5, loss 0; mean over seeds ± std.", "",
             "| model | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(_cell(scores.get(label, {}).get(lang, [])) for lang in langs) + " |")
    lines += ["", "## What the scores leave out", "",
              "Per language: pairs excluded from the score (the judge's verdict unreadable, or its request failed) of "
              "all pairs · pairs where the judge chose the same position in both orders (position bias; scored as "
              "ties) of the scored pairs; summed over seeds.", "",
              "| model | " + " | ".join(langs) + " |", "|---|" + "---|" * len(langs)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(_quality_cell(quality[label].get(lang, [])) for lang in langs) + " |")
    lines += fidelity_lines(results, labels, langs)
    (out / "judge_table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = [{"label": label, "lang": lang, "x": x_of(label, x_pattern),
             "mean": statistics.fmean(v) if (v := scores.get(label, {}).get(lang, [])) else None, "n_seeds": len(v),
             "values": v, "excluded": sum(r.get("unparsed", 0) + r.get("failed", 0) for r in runs),
             "pairs": sum(r.get("pairs", r["n"]) for r in runs),
             "same_position": sum(r.get("same_position", 0) for r in runs)}
            for label in labels for lang, runs in quality[label].items()]
    (out / "judge_scores.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    families = sorted({f for label in labels if (f := family_of(label, x_pattern)) is not None})
    plots = [plot(scores, out / f"judge_scores_{f}.png", x_pattern, f) for f in families]
    return {"labels": labels, "langs": langs, "plots": [str(p) for p in plots]}


def plot(scores: dict[str, dict[str, list[float]]], path: Path, x_pattern: str, family: str) -> Path:
    """x = P, one line per language (mean over seeds), a dashed line at parity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted((x_of(label, x_pattern), label) for label in scores if family_of(label, x_pattern) == family)
    langs = sorted({lang for v in scores.values() for lang in v if lang != "all"})
    fig, ax = plt.subplots(figsize=(7, 4))
    for lang in langs:
        xs = [x for x, label in points if scores[label].get(lang)]
        ys = [statistics.fmean(scores[label][lang]) for x, label in points if scores[label].get(lang)]
        ax.plot(xs, ys, marker="o", markersize=3, label=lang)
    ax.axhline(50, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("P (% of the examples that are multilingual)")
    ax.set_ylabel("judge score vs monolingual (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{family}: judge score vs the monolingual model")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
