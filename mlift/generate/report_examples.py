"""Examples for the generation report: per language, a few kept pairs of the final data and a few records of each
drop reason of every step (from the runner's `dropped/` shards, which keep each record with its `_reason`), so a
reader sees what the funnel's numbers are made of."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

MAX_CHARS = 240
TEXT_FIELDS = ("instruction", "response", "text", "fragment", "source_text", "translation")


def _short(text: Any) -> str:
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= MAX_CHARS else flat[:MAX_CHARS] + " …"


def preview(obj: dict[str, Any]) -> str:
    """One line: a pair's user and assistant turns, else the record's main text fields."""
    if isinstance(obj.get("messages"), list):
        return " / ".join(f"**{m.get('role')}**: {_short(m.get('content', ''))}" for m in obj["messages"]
                          if isinstance(m, dict))
    shown = [f"**{k}**: {_short(obj[k])}" for k in TEXT_FIELDS if isinstance(obj.get(k), str) and obj[k].strip()]
    return " / ".join(shown[:2]) or _short({k: v for k, v in obj.items() if k not in ("meta", "id")})


def _read(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(folder.glob("shard-*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a half-written shard of a running step
    return rows


def example_lines(out: Path, langs: list[str], steps: list[str], final: str, k: int = 3) -> list[str]:
    """Markdown: per language, up to `k` kept pairs and up to `k` examples per (step, drop reason)."""
    lines = ["## Examples", "", f"Per language: the first {k} pairs of the final data, and the first {k} records of "
             "each drop reason (texts cut at 240 characters).", ""]
    for lang in langs:
        lines += [f"### {lang}", "", "Kept pairs:", ""]
        kept = _read(out / lang / final)[:k]
        lines += [f"- {preview(r)}" for r in kept] or ["- (none)"]
        lines.append("")
        for step in steps:
            by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in _read(out / lang / step / "dropped"):
                by_reason[r.get("_reason") or "unspecified"].append(r)
            for reason, rows in sorted(by_reason.items()):
                lines += [f"Dropped at {step}, reason `{reason}` ({len(rows)}):", ""]
                for r in rows[:k]:
                    detail = f" — {_short(r['_detail'])}" if r.get("_detail") else ""
                    lines.append(f"- {preview(r)}{detail}")
                lines.append("")
    return lines
