"""How each arm's ROUGE was computed, read from its eval manifests (`rouge`: mode, scorer and version, per-language
setup), for the report: arms scored differently are not comparable, and the report says so."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path


def _parse(arg: str) -> tuple[str | None, Path]:
    name, sep, path = arg.partition("=")
    return (name.partition("@")[0], Path(path)) if sep else (None, Path(arg))


def rouge_setups(results: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Per label, the ROUGE setups its eval manifests record ("mode, scorer version"), and the setup notes."""
    setups: dict[str, set[str]] = defaultdict(set)
    notes: dict[str, None] = {}
    for arg in results:
        label, path = _parse(arg)
        manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").is_file() else {}
        label = label or manifest.get("label") or path.name
        rouge = manifest.get("rouge")
        if not isinstance(rouge, dict):
            continue
        setups[label].add(f"{rouge.get('mode')} mode, {rouge.get('scorer')}")
        for lang, info in (rouge.get("langs") or {}).items():
            for note in info.get("notes", []) if isinstance(info, dict) else []:
                notes[f"{lang}: {note}"] = None
    return {k: sorted(v) for k, v in setups.items()}, list(notes)


def rouge_lines(labels: list[str], rouge: dict[str, list[str]], notes: list[str]) -> list[str]:
    """The report's lines on ROUGE: the setup of every arm, a warning when they differ, deviations here."""
    if not rouge:
        return []
    kinds = {s for v in rouge.values() for s in v}
    if len(kinds) == 1 and set(rouge) == set(labels):
        lines = [f"ROUGE: {next(iter(kinds))} (every arm)."]
    else:
        lines = ["ROUGE: " + "; ".join(f"{k}: {' / '.join(v) or 'not recorded'}"
                                       for k, v in ((lbl, rouge.get(lbl, [])) for lbl in labels)) + ".",
                 "Warning: the arms were not all scored with the same ROUGE setup; their XL-Sum scores are not "
                 "comparable."]
    if notes:
        lines.append("ROUGE setup here, where it deviates from the XL-Sum authors': " + "; ".join(notes))
    return lines
