"""Checks before anything is submitted, beyond each recipe's own schema: a mix only asks for languages its pool
produces; the labels named by report.baseline and by results/references.yaml rows for this sweep are arms of it.
A failure names the sweep file, the arm and the key (RecipeError: exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlift.recipe import RecipeError

REFERENCES = Path(__file__).resolve().parents[2] / "results" / "references.yaml"


def _flores(langs: list[str]) -> set[str]:
    from mlift.languages import get_language

    return {get_language(x).flores for x in langs}


def produced_languages(command: str, cfg: Any) -> set[str] | None:
    """The languages a data recipe produces (None: not known before it runs)."""
    if command in ("baseline translated-alpaca", "baseline sphinx"):
        return _flores(cfg.target_langs)
    if command == "generate":
        return _flores(cfg.languages)
    if command == "baseline templated":
        return _flores([x for d in cfg.datasets for x in d.langs])
    return None


def mix_languages(cfg: Any) -> tuple[str, set[str]]:
    """(key, languages) a mix recipe takes from its multilingual pool; English from a pinch's English set is not."""
    m = cfg.mixture
    if m.kind == "pinch":
        english = _flores([m.english.lang]) if m.english.lang else _flores(["eng_Latn"])
        return "mixture.langs", _flores(m.langs) - english
    if m.kind == "k_lang":
        return "mixture.langs", _flores(m.langs)
    if m.kind == "monolingual":
        return "mixture.lang", _flores([m.lang])
    return "mixture", set()


def check_mix_languages(sweep: Path | None, arm: str, mix_cfg: Any, pools: dict[str, tuple[str, Any]]) -> None:
    key, wanted = mix_languages(mix_cfg)
    for name, (command, cfg) in pools.items():
        have = produced_languages(command, cfg)
        if have is None or not wanted:
            continue
        missing = sorted(wanted - have)
        if missing:
            raise RecipeError(f"{sweep}: dataset {arm}: {key}: {missing} not produced by its pool {name!r} "
                              f"(which makes {sorted(have)})")


def references_path(args: list[str]) -> Path:
    if "--references" in args and args.index("--references") + 1 < len(args):
        return Path(args[args.index("--references") + 1])
    return REFERENCES


def check_labels(sweep: Path | None, name: str, baseline: str | None, report_args: list[str], labels: set[str],
                 warn=None) -> None:
    """report.baseline must be a label. results/references.yaml rows: a row with `sweep:` concerns the sweep of that
    name, and its `ours` and `baseline` must be labels of it (error). A row without `sweep:` concerns any sweep that
    has its `ours` arm: a missing `baseline` arm is warned about (the published figure will not be shown), since an
    ad-hoc sweep may well hold only one of the two."""
    import sys

    import yaml

    warn = warn or (lambda msg: print(msg, file=sys.stderr))
    if baseline and baseline not in labels:
        raise RecipeError(f"{sweep}: report.baseline: {baseline!r} is not a dataset label (labels: {sorted(labels)})")
    path = references_path(report_args)
    if not path.is_file():
        return
    rows = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "ours" not in row:
            continue
        where = f"{path} row {i} ({row.get('claim', '')!r})"
        if "sweep" in row:
            if row["sweep"] != name:
                continue
            for key in ("ours", "baseline"):
                if key in row and row[key] not in labels:
                    raise RecipeError(f"{sweep}: {where}: {key}: {row[key]!r} is not a label of sweep {name!r} "
                                      f"(labels: {sorted(labels)})")
        elif row["ours"] in labels and row.get("baseline") and row["baseline"] not in labels:
            warn(f"mlift sweep: warning: {sweep}: {where}: baseline {row['baseline']!r} is not an arm of this sweep "
                 f"(labels: {sorted(labels)}); the report will not show this published figure")
