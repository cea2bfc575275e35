"""Run inside train jobs: the shard dirs of a built dataset, known only once it is built (its languages)."""

from __future__ import annotations

import glob
import json
from pathlib import Path


def data_sources(run_dir: str | Path) -> list[dict[str, str]]:
    """The shard dirs of a built dataset (from its manifest's data_files glob), as train `data.datasets` entries."""
    run_dir = Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    pattern = manifest.get("data_files") or (manifest.get("dataset") or {}).get("data_files")
    if not pattern:
        raise RuntimeError(f"{run_dir}/manifest.json names no data_files")
    dirs = sorted({str(Path(f).parent.resolve()) for f in glob.glob(pattern)})
    if not dirs:
        raise RuntimeError(f"{run_dir}: no files match {pattern}")
    return [{"path": d} for d in dirs]
