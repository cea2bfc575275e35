"""Checkpoints that belong to one recipe, and a clean stop when the cluster asks for one.

Every `checkpoint-N/` gets a stamp (`mlift_stamp.json`, the recipe hash) written inside it before the Trainer fills it.
A run resumes only checkpoints with its own stamp; another recipe's checkpoints (or an unstamped one) in the output
directory are refused by name unless the user asks for a fresh start, which moves the old work aside to
`<out>/previous-<time>/` (never deleted: the Trainer's rotation would otherwise remove them, DESIGN.md section 7).

Preemption: Slurm sends the batch script a signal before the time limit; the script touches a stop file
($MLIFT_STOP_FILE) and the training processes, which check it (and their own SIGUSR1) at every step boundary, agree
through one all-reduce, save a checkpoint and stop. The script then requeues the job, which resumes from it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

STAMP = "mlift_stamp.json"
RUN_STAMP = "mlift_recipe.json"  # the output directory's stamp: the recipe of the latest run there
PREEMPTED_EXIT = 75  # EX_TEMPFAIL: checkpointed on request, not finished; the same command resumes
_CKPT = re.compile(r"^checkpoint-(\d+)$")


class Preempted(Exception):
    """Training stopped on request (a stop file or SIGUSR1) after saving a checkpoint; the same command resumes."""


def checkpoints(out: str | Path) -> list[Path]:
    """The output directory's checkpoint-N folders, oldest step first."""
    root = Path(out)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _CKPT.match(p.name)]
    return sorted(found, key=lambda p: int(_CKPT.match(p.name).group(1)))


def stamp_of(ckpt: Path) -> str | None:
    try:
        return json.loads((ckpt / STAMP).read_text()).get("hash")
    except (OSError, ValueError):
        return None


def write_stamp(ckpt: Path, recipe_hash: str) -> None:
    from mlift.records import write_json_atomic

    ckpt.mkdir(parents=True, exist_ok=True)
    write_json_atomic(ckpt / STAMP, {"hash": recipe_hash})


def _finished_hash(out: Path) -> str | None:
    """The recipe hash of a finished run in out (its manifest.json), else None."""
    try:
        return json.loads((out / "manifest.json").read_text())["recipe"]["hash"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def move_aside(out: Path) -> Path | None:
    """Move everything a run left in out (checkpoints, model, manifest, stamp) to out/previous-<time>/; Slurm logs and
    earlier previous-* folders stay. Returns the new folder, or None when there was nothing to move."""
    keep = [p for p in out.iterdir() if not (p.name.startswith("previous-") or re.match(r"slurm-.*\.out$", p.name))] \
        if out.is_dir() else []
    if not keep:
        return None
    dest = out / time.strftime("previous-%Y%m%d-%H%M%S", time.gmtime())
    n = 1
    while dest.exists():
        dest = dest.with_name(f"{dest.name.split('.')[0]}.{n}")
        n += 1
    dest.mkdir()
    for p in keep:
        p.rename(dest / p.name)  # same filesystem: atomic per entry, nothing copied or deleted
    return dest


def _changed_since(out: Path, named_files: dict[str, Any] | None) -> str:
    """The files the recipe names that changed since the last run in out (its stamp keeps their fingerprints)."""
    try:
        old = json.loads((out / RUN_STAMP).read_text())
    except (OSError, ValueError):
        return ""
    if named_files is None or not isinstance(old, dict) or "files" not in old:
        return ""
    from mlift.fingerprint import changed_files

    changed = changed_files(old.get("files") or {}, named_files)
    return f"; files changed since: {'; '.join(changed)}" if changed else ""


def plan_start(out: str | Path, recipe_hash: str, fresh: bool, main: bool,
               named_files: dict[str, Any] | None = None) -> tuple[str, Path | None]:
    """What a run in `out` does: ("fresh", None), ("resume", checkpoint) or ("done", None) for a finished same-recipe
    run. Another recipe's work in `out` raises RecipeError unless `fresh`; then the main process moves it aside.
    Every process calls this (it only reads, except the main process's move), so all ranks take the same decision."""
    from mlift.recipe import RecipeError

    out = Path(out)
    if fresh:
        if main:
            moved = move_aside(out)
            if moved:
                print(f"mlift train: --fresh: the earlier work in {out} is now in {moved}", flush=True)
        return "fresh", None
    ckpts = checkpoints(out)
    foreign = [c for c in ckpts if stamp_of(c) != recipe_hash]
    finished = _finished_hash(out)
    if foreign or (finished and finished != recipe_hash):
        what = foreign[-1] if foreign else out / "manifest.json"
        other = stamp_of(foreign[-1]) if foreign else finished
        raise RecipeError(f"{what} was made by another recipe (its hash {other or 'unstamped'}, this one {recipe_hash})"
                          f"{_changed_since(out, named_files)}; rerun with --fresh to move the earlier work aside "
                          f"to {out}/previous-<time>/, or use a new output_dir")
    if finished == recipe_hash:
        return "done", None
    usable = [c for c in ckpts if (c / "trainer_state.json").is_file()]  # a save killed half-way is skipped
    return ("resume", usable[-1]) if usable else ("fresh", None)


class RunCallback(TrainerCallback):
    """Stamps each checkpoint with the recipe hash before it is written, and stops with a checkpoint at the step
    boundary after a stop request (SIGUSR1 to this process, or the stop file the Slurm batch script touches)."""

    def __init__(self, recipe_hash: str, stop_file: str | None = None) -> None:
        self.recipe_hash = recipe_hash
        self.stop_file = stop_file or os.environ.get("MLIFT_STOP_FILE")
        self.signalled = False
        self.preempted_at: int | None = None
        try:
            signal.signal(signal.SIGUSR1, self._on_signal)
        except ValueError:  # not the main thread (e.g. inside a notebook worker): the stop file still works
            pass

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signalled = True

    def _stop_requested(self, args) -> bool:
        asked = self.signalled or bool(self.stop_file and os.path.exists(self.stop_file))
        if args.world_size > 1:  # every rank must stop at the same step, or the next collective hangs
            import torch
            import torch.distributed as dist

            flag = torch.tensor([1.0 if asked else 0.0], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            asked = bool(flag.item())
        return asked

    def on_step_end(self, args, state, control, **kwargs):
        if self.preempted_at is None and self._stop_requested(args):
            self.preempted_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        if control.should_save and state.is_world_process_zero:
            write_stamp(Path(args.output_dir) / f"checkpoint-{state.global_step}", self.recipe_hash)
        return control

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:  # a save not announced at a step end gets its stamp too
            write_stamp(Path(args.output_dir) / f"checkpoint-{state.global_step}", self.recipe_hash)
        return control
