"""Checks of command-line arguments that name several runs or metrics, before any output is written: a duplicate
LABEL@SEED, a directory given twice, an unknown or miscased metric family or name would otherwise drop results
silently. Each error names the argument, with a close match when there is one (RecipeError: exit 2)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from mlift.recipe import RecipeError


def suggest(word: str, choices: list[str] | set[str]) -> str:
    """' (did you mean X?)' for a close or differently-cased match, else ' (expected one of: ...)'."""
    choices = sorted(choices)
    same_case = [c for c in choices if c.lower() == word.lower()]
    near = same_case or difflib.get_close_matches(word, choices, n=1) or \
        difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1)
    if near:
        match = next((c for c in choices if c.lower() == near[0].lower()), near[0])
        return f" (did you mean {match!r}?)"
    return f" (expected one of: {', '.join(choices)})" if choices else ""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecipeError(f"{path}: not readable JSON ({exc})") from None


def resolve_results(results: list[str], marker: tuple[str, str], meta_file: str,
                    label_keys: tuple[str, ...], seed_key: str | None) -> list[tuple[str, str | None, Path]]:
    """(label, seed or None, dir) of each `[LABEL[@SEED]=]DIR` argument as the report will name it; a missing dir, an
    empty label or seed, a dir or LABEL@SEED given twice is an error naming the arguments. `marker`: (the file such a
    dir must hold, the mlift command that writes it); label and seed fall back to keys of `meta_file` in the dir."""
    from mlift.report.tables import parse_result_arg

    seen_dirs: dict[Path, str] = {}
    seen_pairs: dict[tuple[str, str], str] = {}
    out = []
    for arg in results:
        label, seed, path = parse_result_arg(arg)
        if "=" in arg and not label:
            raise RecipeError(f"{arg!r}: empty LABEL before '=' (write LABEL=DIR, LABEL@SEED=DIR or DIR)")
        if "=" in arg and "@" in arg.split("=", 1)[0] and seed is None:
            raise RecipeError(f"{arg!r}: empty SEED after '@' (write LABEL@SEED=DIR)")
        if not (path / marker[0]).is_file():
            raise RecipeError(f"{arg!r}: no {path / marker[0]} (expected the output dir of `mlift {marker[1]}`)")
        manifest = path / meta_file
        meta = _read_json(manifest) if manifest.is_file() else {}
        if not label:
            label = next((meta[k] for k in label_keys if isinstance(meta, dict) and isinstance(meta.get(k), str)
                          and meta[k]), None) or path.name
        if seed is None and seed_key and isinstance(meta, dict) and meta.get(seed_key) is not None:
            seed = str(meta[seed_key])
        real = path.resolve()
        if real in seen_dirs:
            raise RecipeError(f"{arg!r}: the directory {path} is given twice (also as {seen_dirs[real]!r}); "
                              "it would count as two seeds")
        seen_dirs[real] = arg
        if seed is not None:
            if (label, str(seed)) in seen_pairs:
                raise RecipeError(f"{arg!r}: {label}@{seed} is given twice (also as "
                                  f"{seen_pairs[(label, str(seed))]!r}); one of them would be dropped. Give each run "
                                  "its own LABEL@SEED")
            seen_pairs[(label, str(seed))] = arg
        out.append((label, seed, path))
    return out


def parse_metrics(items: list[str], defaults: dict[str, list[str]], present: dict[str, set[str]]) -> dict[str, list[str]]:
    """`--metric FAMILY=M1,M2` items over the defaults. A family or metric the results do not have (`present`:
    family -> metric names in the eval tables), a miscased one, or one named twice is an error."""
    metrics = dict(defaults)
    families = set(defaults) | set(present)
    given: set[str] = set()
    for item in items:
        family, sep, names = item.partition("=")
        family = family.strip()
        if not sep or not family or not names.strip():
            raise RecipeError(f"--metric {item!r}: expected FAMILY=M1,M2 (e.g. flores=chrf++,spbleu)")
        if family not in families:
            raise RecipeError(f"--metric {item!r}: unknown task family {family!r}{suggest(family, families)}")
        if family in given:
            raise RecipeError(f"--metric {item!r}: family {family!r} is given twice; list its metrics once, "
                              "comma-separated")
        given.add(family)
        chosen = [n.strip() for n in names.split(",")]
        for name in chosen:
            if not name:
                raise RecipeError(f"--metric {item!r}: empty metric name")
            if chosen.count(name) > 1:
                raise RecipeError(f"--metric {item!r}: metric {name!r} is named twice")
            known = present.get(family)
            if known and name not in known:
                raise RecipeError(f"--metric {item!r}: no metric {name!r} in the {family} results"
                                  f"{suggest(name, known)}")
        metrics[family] = chosen
    return metrics


def table_metrics(dirs: list[Path]) -> dict[str, set[str]]:
    """family -> the metric names found in the eval tables (table.json) of these dirs."""
    found: dict[str, set[str]] = {}
    for d in dirs:
        rows = _read_json(d / "table.json")
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and "family" in row and "metric" in row:
                found.setdefault(str(row["family"]), set()).add(str(row["metric"]))
    return found


def check_baseline(baseline: str | None, labels: list[str]) -> None:
    if baseline is not None and baseline not in labels:
        raise RecipeError(f"--baseline {baseline!r} is not one of the labels{suggest(baseline, set(labels))}")


def check_out(value: str, flag: str = "--out") -> None:
    """An output directory argument: not empty, not a file, writable (mlift.recipe)."""
    from mlift.recipe import output_dir_problem

    problem = output_dir_problem(value)
    if problem:
        raise RecipeError(f"{flag}: {problem}")


def check_positive(**values: float | None) -> None:
    """Numeric arguments that must be >= 1 (None: not given), named as their --flag."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise RecipeError(f"--{name.replace('_', '-')}: must be at least 1, got {value}")
