"""The Slurm executor: sbatch every incomplete job parents first, `--dependency=afterok` on its parents' ids.

An array longer than the cluster's MaxArraySize is submitted as several array jobs (`--array=0-K` each, the part's
offset in MLIFT_TASK_OFFSET); the next stage waits on all of them. Every sbatch line of the chain is checked with
`sbatch --test-only` before the first one is submitted, so a refused job does not leave half a chain queued."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from mlift.recipe import Recipe
from mlift.sweep.jobs import Job
from mlift.sweep.schema import SweepRecipe
from mlift.sweep.scripts import log_pattern
from mlift.sweep.state import job_state, load_state, save_state

DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's default MaxArraySize


def cluster_max_array_size() -> int:
    """MaxArraySize from `scontrol show config` where Slurm answers, else Slurm's default."""
    try:
        done = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_MAX_ARRAY_SIZE
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", done.stdout, re.M)
    return int(m.group(1)) if done.returncode == 0 and m else DEFAULT_MAX_ARRAY_SIZE


def array_parts(n: int, max_size: int) -> list[tuple[int, int]]:
    """(offset, count) of each array job for n tasks: indices stay below MaxArraySize, which bounds the index too."""
    return [(off, min(max_size, n - off)) for off in range(0, n, max_size)]


def sbatch_lines(cfg: SweepRecipe, job: Job, script: Path, max_size: int) -> list[list[str]]:
    """The sbatch arguments (without dependencies) of each part of a job."""
    if not job.array:
        return [[str(script)]]
    throttle = f"%{cfg.slurm.array_throttle}" if cfg.slurm.array_throttle else ""
    return [[f"--array=0-{count - 1}{throttle}", f"--export=ALL,MLIFT_TASK_OFFSET={off}", str(script)]
            for off, count in array_parts(job.array, max_size)]


def check_chain(plan: dict[str, list[list[str]]]) -> None:
    """`sbatch --test-only` on every part of every job to submit (no dependencies yet: the parents do not exist):
    the cluster's refusal (array size, gres, partition, time limit) comes before anything is queued."""
    for name, parts in plan.items():
        for args in parts:
            done = subprocess.run(["sbatch", "--test-only", *args], capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"sbatch --test-only refused {name} ({' '.join(args[:-1]) or 'no array'}): "
                                   f"{done.stderr.strip()}; nothing was submitted")


def submit(recipe: Recipe[SweepRecipe], jobs: list[Job], scripts: dict[str, Path],
           echo=print) -> dict[str, str | None]:
    """sbatch every incomplete job, parents first; a job still queued/running from the last submit is reused. An
    array job split in parts has the ids of all its parts, colon-separated (as afterok takes them)."""
    state = load_state(recipe)
    cfg = recipe.cfg
    max_size = cfg.slurm.max_array_size or cluster_max_array_size()
    plan = {job.name: sbatch_lines(cfg, job, scripts[job.name], max_size) for job in jobs if not job.complete()
            and not ((e := state["jobs"].get(job.name)) and not e.get("local") and job_state(job, e)[0] == "active")}
    check_chain(plan)
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
        part_ids = []
        for args in plan[job.name]:
            cmd = ["sbatch", "--parsable", *([f"--dependency=afterok:{':'.join(parents)}"] if parents else []), *args]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                save_state(recipe, state)
                raise RuntimeError(f"sbatch failed for {job.name}: {done.stderr.strip()}")
            part_ids.append(done.stdout.strip().split(";")[0])
        job_id = ":".join(part_ids)
        ids[job.name] = job_id
        state["jobs"][job.name] = {"id": job_id, "script": str(scripts[job.name]), "deps": parents,
                                   "log": log_pattern(recipe.cfg, job), "submitted": time.time()}
        echo(f"submit {job.name} -> {job_id}" + (f" (after {', '.join(parents)})" if parents else ""))
    save_state(recipe, state)
    return ids


def wait(job_ids: list[str], timeout: float, poll: float = 0.5) -> bool:
    """Poll squeue until none of the jobs is queued or running; False on timeout."""
    deadline = time.time() + timeout
    ids = [part for i in job_ids if i for part in i.split(":")]  # a split array job: every part
    while ids and time.time() < deadline:
        done = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(ids)], capture_output=True, text=True)
        if done.returncode == 0 and not done.stdout.strip():
            return True
        time.sleep(poll)
    return not ids
