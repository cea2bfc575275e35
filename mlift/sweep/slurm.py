"""The Slurm executor: sbatch every incomplete job parents first, `--dependency=afterok` on its parents' ids."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from mlift.recipe import Recipe
from mlift.sweep.jobs import Job
from mlift.sweep.schema import SweepRecipe
from mlift.sweep.scripts import log_pattern
from mlift.sweep.state import job_state, load_state, save_state


def submit(recipe: Recipe[SweepRecipe], jobs: list[Job], scripts: dict[str, Path],
           echo=print) -> dict[str, str | None]:
    """sbatch every incomplete job, parents first; a job still queued/running from the last submit is reused."""
    state = load_state(recipe)
    Path(recipe.cfg.output_dir, "logs").resolve().mkdir(parents=True, exist_ok=True)  # Slurm does not create it
    ids: dict[str, str | None] = {}
    for job in jobs:
        entry = state["jobs"].get(job.name)
        if job.complete():
            ids[job.name] = None
            echo(f"skip   {job.name} (complete)")
            continue
        if entry and not entry.get("local") and job_state(job, entry)[0] == "active":
            ids[job.name] = entry["id"]
            echo(f"keep   {job.name} (job {entry['id']} still queued/running)")
            continue
        moved = job.set_aside_if_stale()
        if moved:
            echo(f"stale  {job.name}: its inputs changed; earlier work moved to {moved}")
        parents = [ids[d] for d in job.deps if ids.get(d)]
        cmd = ["sbatch", "--parsable", *([f"--dependency=afterok:{':'.join(parents)}"] if parents else []),
               str(scripts[job.name])]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            save_state(recipe, state)
            raise RuntimeError(f"sbatch failed for {job.name}: {done.stderr.strip()}")
        job_id = done.stdout.strip().split(";")[0]
        ids[job.name] = job_id
        state["jobs"][job.name] = {"id": job_id, "script": str(scripts[job.name]), "deps": parents,
                                   "log": log_pattern(recipe.cfg, job), "submitted": time.time()}
        echo(f"submit {job.name} -> {job_id}" + (f" (after {', '.join(parents)})" if parents else ""))
    save_state(recipe, state)
    return ids


def wait(job_ids: list[str], timeout: float, poll: float = 0.5) -> bool:
    """Poll squeue until none of the jobs is queued or running; False on timeout."""
    deadline = time.time() + timeout
    ids = [i for i in job_ids if i]
    while ids and time.time() < deadline:
        done = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True)
        if done.returncode == 0 and not done.stdout.strip():
            return True
        time.sleep(poll)
    return not ids
