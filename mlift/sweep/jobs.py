"""A sweep job: what it runs, what it produces, what it waits for, and whether it is already complete."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "_SUCCESS"


@dataclass
class Job:
    name: str                      # unique in the sweep, filesystem-safe
    kind: str                      # data | global | finalize | train | eval | report (| answer | judge ...)
    command: str                   # shell; `$TASK` is the array index
    out: str                       # what the job produces
    deps: list[str] = field(default_factory=list)
    array: int | None = None       # number of array tasks
    resources: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    seed: int | None = None
    model: str | None = None
    inputs: list[str] = field(default_factory=list)   # content hashes of the recipe files it reads + its parents' hashes
    root: str = ""                 # the directory the job's work lives in (default: out); set aside when stale

    def markers(self) -> list[Path]:
        if self.array:
            return [Path(self.out, f"{MARKER}.task-{i}") for i in range(self.array)]
        return [Path(self.out, MARKER)]

    @property
    def hash(self) -> str:
        """Of what the job runs and reads: a marker left by another command or an edited recipe does not count."""
        text = "\n".join([self.command, self.out, str(self.array), *self.inputs])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def complete(self) -> bool:
        return all(marker_hash(p) == self.hash for p in self.markers())

    def stale(self) -> bool:
        """Finished before with other inputs (an edited recipe, a rebuilt parent): its work must not be reused."""
        return any(marker_hash(p) not in (None, self.hash) for p in self.markers())

    def set_aside_if_stale(self) -> Path | None:
        """Move a stale job's work to <root>.stale-<time> (kept, never deleted) so the job starts clean."""
        if self.complete() or not self.stale():
            return None
        root = Path(self.root or self.out)
        dest = root.with_name(f"{root.name}.stale-{time.strftime('%Y%m%dT%H%M%S')}")
        root.rename(dest)
        return dest


def file_digest(path: str | Path) -> str:
    """The content of a file a job reads, as a short hash (a missing file hashes as its name)."""
    try:
        return f"{path}:{hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]}"
    except OSError:
        return f"{path}:missing"


def marker_hash(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("hash")
    except (OSError, ValueError, AttributeError):
        return None


def named_inputs(out: Path, schema: type, recipe: str, sets: list[str]) -> list[str]:
    """The content of every file a job's recipe names (inputs, prompts, few-shot files, chat templates, packaged
    defaults), as `key=sha256`, so an edit reruns the job and what depends on it. Read from the YAML with the job's
    overrides along the schema, without validating (--no-validate gives the same hashes). Files under the sweep's
    output_dir are other jobs' outputs: their jobs' hashes already count."""
    import yaml

    from mlift.fingerprint import recipe_files
    from mlift.recipe import RecipeError, apply_override, parse_override
    try:
        data = yaml.safe_load(Path(recipe).read_text(encoding="utf-8")) or {}
        for item in sets:
            apply_override(data, *parse_override(item))
        files = recipe_files(schema, data)
    except (OSError, yaml.YAMLError, RecipeError, TypeError, AttributeError):
        return []  # a broken recipe: validation says so, or the job does
    return [f"{key}={fp['sha256']}" for key, fp in sorted(files.items()) if not _under(fp["path"], out)]


def _under(path: str, root: Path) -> bool:
    return Path(path.split("*")[0].split("{")[0] or ".").resolve().is_relative_to(root)
