"""A sweep job: what it runs, what it produces, what it waits for, and whether it is already complete."""

from __future__ import annotations

import hashlib
import json
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
    inputs: list[str] = field(default_factory=list)   # content hashes of the recipe files it reads (stale-work check)

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


def marker_hash(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("hash")
    except (OSError, ValueError, AttributeError):
        return None
