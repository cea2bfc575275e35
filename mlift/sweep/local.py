"""The local executor (`mlift sweep --local`): the same scripts with bash, here, in dependency order."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from mlift.recipe import Recipe
from mlift.sweep.jobs import Job
from mlift.sweep.schema import SweepRecipe
from mlift.sweep.scripts import log_pattern
from mlift.sweep.state import load_state, save_state


def run_local(recipe: Recipe[SweepRecipe], jobs: list[Job], scripts: dict[str, Path], echo=print) -> bool:
    """Run the scripts with bash here, parents first; the dependents of a failed job are skipped."""
    state = load_state(recipe)
    Path(recipe.cfg.output_dir, "logs").resolve().mkdir(parents=True, exist_ok=True)
    failed: set[str] = set()
    for job in jobs:
        if job.complete():
            echo(f"skip   {job.name} (complete)")
            continue
        if any(d in failed for d in job.deps):
            failed.add(job.name)
            echo(f"skip   {job.name} (a dependency failed)")
            continue
        moved = job.set_aside_if_stale()
        if moved:
            echo(f"stale  {job.name}: its inputs changed; earlier work moved to {moved}")
        tasks = {}
        for task in range(job.array or 1):
            log = log_pattern(recipe.cfg, job, local=True).format(task=task)
            env = {**os.environ, "SLURM_CPUS_PER_TASK": str(job.resources.get("cpus") or recipe.cfg.slurm.cpus)}
            if job.array:
                env["SLURM_ARRAY_TASK_ID"] = str(task)
            started = time.time()
            with open(log, "w") as fh:
                rc = subprocess.run(["bash", str(scripts[job.name])], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                    cwd=recipe.cfg.slurm.workdir or os.getcwd()).returncode
            tasks[str(task)] = {"rc": rc, "log": log, "seconds": round(time.time() - started, 1)}
            echo(f"{'ok  ' if rc == 0 else 'FAIL'}   {job.name}" + (f"[{task}]" if job.array else "")
                 + f" ({tasks[str(task)]['seconds']} s)" + ("" if rc == 0 else f" log: {log}"))
        state["jobs"][job.name] = {"local": True, "tasks": tasks, "script": str(scripts[job.name])}
        save_state(recipe, state)
        if any(t["rc"] for t in tasks.values()):
            failed.add(job.name)
    return not failed
