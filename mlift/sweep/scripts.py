"""Job -> sbatch script (slurm/job.sbatch, Jinja2). The scripts are plain bash too: the local executor runs them."""

from __future__ import annotations

import os
import shlex
from dataclasses import asdict
from pathlib import Path

from mlift.recipe import Recipe, RecipeError
from mlift.sweep.jobs import MARKER, Job
from mlift.sweep.schema import SweepRecipe

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "slurm" / "job.sbatch"


def default_setup() -> str:
    return f"source {shlex.quote(str(REPO / '.venv' / 'bin' / 'activate'))}"


def log_pattern(cfg: SweepRecipe, job: Job, local: bool = False) -> str:
    logs = Path(cfg.output_dir).resolve() / "logs"
    if local:
        return str(logs / (f"{job.name}.local-{{task}}.log" if job.array else f"{job.name}.local.log"))
    return str(logs / (f"{job.name}.%A_%a.log" if job.array else f"{job.name}.%j.log"))


def job_env(cfg: SweepRecipe) -> dict[str, str]:
    """slurm.env, plus the W&B project and the sweep's name as the group when the sweep has a `wandb:` section."""
    env = dict(cfg.slurm.env)
    if cfg.wandb:
        env.update({"WANDB_PROJECT": cfg.wandb.project, "WANDB_RUN_GROUP": cfg.name,
                    **({"WANDB_ENTITY": cfg.wandb.entity} if cfg.wandb.entity else {})})
    return env


def render(recipe: Recipe[SweepRecipe], job: Job) -> str:
    import jinja2

    cfg = recipe.cfg
    s = cfg.slurm
    res = job.resources
    template = Path(s.template) if s.template else TEMPLATE
    gres = s.gres.format(n=res["gpus"]) if s.gres and res.get("gpus") else None
    values = {
        "sweep": cfg.name, "name": job.name, "kind": job.kind, "recipe_hash": recipe.hash,
        "job_name": f"{cfg.name}:{job.name}"[:120], "log": log_pattern(cfg, job),
        "workdir": str(Path(s.workdir or os.getcwd()).resolve()), "cpus": res.get("cpus") or s.cpus,
        "time": res.get("time") or s.time, "mem": res.get("mem") or s.mem, "array": job.array, "gres": gres,
        "partition": s.partition, "account": s.account, "extra_sbatch": s.extra_sbatch,
        "setup": s.setup or default_setup(), "env": job_env(cfg), "out": job.out,
        "marker_name": f"{MARKER}.task-${{TASK}}" if job.array else MARKER, "command": job.command,
        "job_hash": job.hash, "throttle": s.array_throttle, "q": shlex.quote,
    }
    # #SBATCH lines are comments to bash: a line break in a value would start a command line
    for key in ("job_name", "log", "workdir", "time", "mem", "gres", "partition", "account"):
        _one_line(recipe, key, values[key])
    for line in s.extra_sbatch:
        _one_line(recipe, "slurm.extra_sbatch", line)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text(encoding="utf-8")).render(**values)


def _one_line(recipe: Recipe[SweepRecipe], key: str, value: object) -> None:
    if value is not None and any(c in str(value) for c in "\n\r\0"):
        raise RecipeError(f"{recipe.path}: {key}: {value!r} holds a line break (it goes into an #SBATCH line)")


def write_scripts(recipe: Recipe[SweepRecipe], jobs: list[Job]) -> dict[str, Path]:
    scripts = Path(recipe.cfg.output_dir).resolve() / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    paths = {}
    for job in jobs:
        path = scripts / f"{job.name.replace('/', '-')}.sbatch"
        path.write_text(render(recipe, job), encoding="utf-8")
        paths[job.name] = path
    return paths


def write_manifest(recipe: Recipe[SweepRecipe], jobs: list[Job], mode: str) -> None:
    from mlift.records import write_json_atomic

    write_json_atomic(Path(recipe.cfg.output_dir).resolve() / "manifest.json", {
        "recipe": recipe.as_manifest(), "hash": recipe.hash, "seeds": recipe.cfg.seeds, "mode": mode,
        "jobs": [asdict(j) for j in jobs]})
