"""`mlift train RECIPE --slurm`: slurm/train.sbatch rendered with the recipe's Slurm values (multi-node accelerate
launch through srun; the warning signal checkpoints, requeues and resumes: see the template's header)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlift.recipe import Recipe


def render_sbatch(recipe: Recipe[Any], recipe_arg: str, overrides: list[str]) -> str:
    """slurm/train.sbatch rendered with the recipe's Slurm values (a train recipe: mlift.train.sft imports this module)."""
    import shlex

    import jinja2

    s = recipe.cfg.slurm
    workdir = s.workdir or os.getcwd()
    template = Path(s.template) if s.template else Path(__file__).resolve().parents[2] / "slurm" / "train.sbatch"
    if not template.is_file():
        raise FileNotFoundError(f"sbatch template not found: {template} (set slurm.template)")
    train_args = " ".join(shlex.quote(a) for a in [recipe_arg, *sum((["--set", o] for o in overrides), [])])
    values = {
        "job_name": f"train-{Path(recipe.cfg.output_dir).name}",
        "nodes": s.nodes, "gpus_per_node": s.gpus_per_node, "cpus_per_task": s.cpus_per_task, "mem": s.mem,
        "time": s.time, "partition": s.partition, "account": s.account,
        "gres": s.gres if s.gres is not None else (f"gpu:{s.gpus_per_node}" if s.gpus_per_node else None),
        "accelerate_config": s.accelerate_config, "env_activate": s.env_activate,
        "workdir": workdir, "log_dir": str(Path(workdir, recipe.cfg.output_dir)), "port": s.port, "signal": s.signal,
        "signal_seconds": s.signal_seconds,
        "extra_sbatch": s.extra_sbatch, "output_dir": recipe.cfg.output_dir, "train_args": train_args,
        "num_processes_per_node": max(s.gpus_per_node, 1), "recipe_hash": recipe.hash,
        "q": shlex.quote,
    }
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text(encoding="utf-8")).render(**values)
