"""What was submitted (<output_dir>/sweep_state.json) and what each job's state is: completion markers first, then
Slurm (`scontrol -o show job`, no slurmdbd needed) or the local executor's exit codes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from mlift.recipe import Recipe
from mlift.sweep.jobs import Job
from mlift.sweep.schema import SweepRecipe

STATE_FILE = "sweep_state.json"
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED", "REQUEUE_HOLD"}
FAILED = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def _state_path(recipe: Recipe[SweepRecipe]) -> Path:
    return Path(recipe.cfg.output_dir).resolve() / STATE_FILE


def load_state(recipe: Recipe[SweepRecipe]) -> dict[str, Any]:
    path = _state_path(recipe)
    return json.loads(path.read_text()) if path.is_file() else {"jobs": {}}


def save_state(recipe: Recipe[SweepRecipe], state: dict[str, Any]) -> None:
    from mlift.records import write_json_atomic

    write_json_atomic(_state_path(recipe), state)


def slurm_tasks(job_id: str) -> list[dict[str, str]]:
    """`scontrol -o show job ID` (one line per array task) as dicts; [] when Slurm no longer knows the job."""
    done = subprocess.run(["scontrol", "-o", "show", "job", str(job_id)], capture_output=True, text=True)
    if done.returncode:
        return []
    rows = []
    for line in done.stdout.splitlines():
        row = dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line))
        if row:
            rows.append(row)
    return rows


def job_state(job: Job, entry: dict[str, Any] | None) -> tuple[str, list[dict[str, str]]]:
    """('done'|'active'|'failed'|'not submitted'|'unknown', failed tasks with their log paths)."""
    if job.complete():
        return "done", []
    if not entry:
        return "not submitted", []
    if entry.get("local"):
        bad = [{"task": t, "log": v["log"], "state": f"exit {v['rc']}"} for t, v in entry["tasks"].items() if v["rc"]]
        return ("failed", bad) if bad else ("unknown", [])
    rows = [row for part in str(entry["id"]).split(":") for row in slurm_tasks(part)]  # all parts of a split array
    if not rows:
        return "unknown", []
    states = {r.get("JobState", "") for r in rows}
    bad = [{"task": r.get("ArrayTaskId", "-"), "log": r.get("StdOut", entry.get("log", "")), "state": r["JobState"],
            "reason": r.get("Reason", "")} for r in rows if r.get("JobState") in FAILED]
    if bad:
        return "failed", bad
    if states & ACTIVE:
        return "active", []
    return "unknown", []  # COMPLETED without a marker: the job ran an old script, or its marker was removed


def status(recipe: Recipe[SweepRecipe], jobs: list[Job], echo=print) -> dict[str, int]:
    """Print one line per job and every failed task with its log; counts per state."""
    state = load_state(recipe)
    counts: dict[str, int] = {}
    for job in jobs:
        entry = state["jobs"].get(job.name)
        st, bad = job_state(job, entry)
        counts[st] = counts.get(st, 0) + 1
        jid = "local" if entry and entry.get("local") else (entry or {}).get("id", "-")
        echo(f"{st:<14} {job.name:<40} {jid}")
        for b in bad:
            echo(f"    task {b['task']}: {b['state']} {b.get('reason', '')} log: {b['log']}")
    echo("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return counts
