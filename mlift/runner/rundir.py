"""A run directory's input and ownership: the job's input sharded once, and the recipe stamp that lets only the same
recipe resume a directory that holds data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlift.records import BadLine, Record, write_json_atomic, write_records


def write_input_shards(input_dir: Path, items: list[Record | BadLine], n: int, extra: dict[str, Any] | None = None) -> dict:
    """Split a job's input into n contiguous shards, written once (atomically, with a completion file) so every stage
    reads shard j of n; unreadable lines go to <input_dir>/quarantine.jsonl with their reasons. An input of which no
    line is readable is refused (RecipeError naming the file and the first problem): it is the wrong file or format."""
    from mlift.recipe import RecipeError

    done = input_dir / "_complete"
    if not done.exists():
        bad = [x for x in items if isinstance(x, BadLine)]
        recs = [x for x in items if not isinstance(x, BadLine)]
        if bad and not recs:
            raise RecipeError(f"{bad[0].source}:{bad[0].line}: no line of the input is a readable record "
                              f"({len(bad)} unreadable; first: {bad[0].reason[:200]})")
        write_records(input_dir / "quarantine.jsonl", [b.to_json() for b in bad])
        per = -(-len(recs) // n) if recs else 0
        for j in range(n):
            write_records(input_dir / f"shard-{j:05d}-of-{n:05d}.jsonl", recs[j * per:(j + 1) * per])
        write_json_atomic(done, {"records": len(recs), "unreadable": len(bad), **(extra or {})})
    return json.loads(done.read_text())


def guard_run_dir(run_dir: str | Path, recipe: Any) -> None:
    """Resume only the same recipe, with the same content in every file it names (inputs, prompts, few-shot files,
    templates): another recipe's finished shards, or shards made from an older input, would be silently reused.

    The directory belongs to a recipe only once that recipe produced data there (a shard marker, a pending ledger,
    sharded input): a first run that failed on its input (a missing file, a bad value) leaves it free for the
    corrected recipe, which then claims it."""
    from mlift.fingerprint import changed_files
    from mlift.recipe import RecipeError, recipe_hash

    stamp = Path(run_dir) / "_recipe.json"
    old = json.loads(stamp.read_text()) if stamp.exists() else None
    files = recipe.named_files(known=(old or {}).get("files"))  # unchanged files (size, mtime) are not read again
    if old is not None and old.get("hash") != recipe.hash and holds_data(run_dir):
        legacy = "files" not in old and old.get("hash") == recipe_hash(recipe.resolved)  # stamped before files counted
        if not legacy:
            changed = changed_files(old.get("files") or {}, files)
            if old.get("resolved") == recipe.resolved and changed:
                raise RecipeError(f"{run_dir} holds a run made from other file contents; a file the recipe names "
                                  f"changed since: {'; '.join(changed)}. Its finished shards would be reused with the "
                                  f"old content: use a new output_dir, or move {run_dir} aside to rerun from scratch")
            raise RecipeError(f"{run_dir} holds a run of another recipe (hash {old.get('hash')}, this one {recipe.hash})"
                              + (f"; files changed: {'; '.join(changed)}" if changed else "")
                              + "; use a new output_dir, or delete the old run")
    if old is None or old.get("hash") != recipe.hash or old.get("files") != files:
        write_json_atomic(stamp, {"hash": recipe.hash, "resolved": recipe.resolved, "files": files})


def holds_data(run_dir: str | Path) -> bool:
    """Whether any stage of a run wrote results here (the request cache does not count: it is keyed by request)."""
    root = Path(run_dir)
    for pattern in ("**/_done/*.json", "**/_pending/*.json", "**/_complete", "**/_plan.json", "manifest.json"):
        if next(root.glob(pattern), None) is not None:
            return True
    return False
