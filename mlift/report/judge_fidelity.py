"""Language fidelity of the judged answers, for `mlift judge-report`: per label and language, the % of model A's
answers (the answers file its judge recipe names) written in the language they were asked in (mlift.langid), with a
95% bootstrap interval over the answers and over seeds. Shown as its own table beside the judge scores."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from mlift.eval.item_scores import in_language
from mlift.report.stats import interval


def answers_path(judge_dir: Path) -> str | None:
    """Model A's answers file, from the recipe recorded in the judge dir's scores.json."""
    scores = json.loads((judge_dir / "scores.json").read_text(encoding="utf-8"))
    model_a = ((scores.get("recipe") or {}).get("resolved") or {}).get("model_a") or {}
    path = model_a.get("path")
    return path if path and Path(path).is_file() else None


def fidelity_by_label(results: list[str]) -> dict[str, dict[str, list[np.ndarray]]]:
    """label -> lang -> per seed: 0/1 per answer (in the asked language or not)."""
    from mlift.judge.pairwise import read_answers
    from mlift.report.tables import parse_result_arg

    out: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for arg in results:
        label, _seed, path = parse_result_arg(arg)
        answers = answers_path(path)
        if answers is None:
            continue
        label = label or json.loads((path / "scores.json").read_text())["model_a"]
        per_lang: dict[str, list[float]] = defaultdict(list)
        for (lang, _id), row in sorted(read_answers(answers).items()):
            text = str(row.get("response", row.get("output", "")))
            per_lang[lang].append(1.0 if in_language(text, lang) else 0.0)
        for lang, xs in per_lang.items():
            out[label][lang].append(np.array(xs)[:, None])
    return out


def fidelity_lines(results: list[str], labels: list[str], langs: list[str]) -> list[str]:
    """The Markdown table: % of model A's answers in the asked language [95% CI], per label and language."""
    fid = fidelity_by_label(results)
    if not fid:
        return ["", "Language fidelity: the judge dirs do not name a readable answers file (scores.json recipe)."]
    lines = ["", "## Language fidelity of the judged answers (% in the asked language [95% CI])", "",
             "| model | " + " | ".join(lang for lang in langs if lang != "all") + " |",
             "|---|" + "---|" * len([x for x in langs if x != "all"])]
    for label in labels:
        cells = []
        for lang in langs:
            if lang == "all":
                continue
            seeds = fid.get(label, {}).get(lang)
            if not seeds or len({len(s) for s in seeds}) != 1:
                cells.append("")
                continue
            value = float(np.mean([100 * s.mean() for s in seeds]))
            lo, hi = interval("fidelity", [[s] for s in seeds])
            cells.append(f"{value:.1f} [{lo:.1f}, {hi:.1f}]")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines
