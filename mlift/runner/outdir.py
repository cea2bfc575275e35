"""Is an output directory usable? Asked before any work starts, so a run never ends in a crash at its first write
(or, with an empty value, writes into the current directory)."""

from __future__ import annotations

import os
from pathlib import Path


def output_dir_problem(value: str | os.PathLike | None) -> str | None:
    """Why `value` cannot be an output directory (empty, a file, under a file, not writable), or None."""
    if value is None or not str(value).strip():
        return "empty (the run would be written into the current directory); give a directory"
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        return f"{path} exists and is not a directory"
    probe = path
    while not probe.exists():  # the nearest existing ancestor is where the directory will be created
        if probe.parent == probe:
            return None
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot be created: {probe} is a file"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None
