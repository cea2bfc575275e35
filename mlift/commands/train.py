"""`mlift train RECIPE`: TRL SFT (LoRA or full) on a mix of datasets; the same recipe runs under
`accelerate launch -m mlift.train RECIPE` and, with --slurm, as a multi-node sbatch job. See mlift/train/sft.py."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mlift.commands import add_recipe_arguments
from mlift.train.sft import load_train_recipe, train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser, shards=False)
    parser.add_argument("--resume", action="store_true",
                        help="the default, kept for scripts: a checkpoint of the same recipe in output_dir is always "
                             "resumed (same data order and seed)")
    parser.add_argument("--fresh", action="store_true",
                        help="start at step 0; earlier work in output_dir is moved to output_dir/previous-<time>/")
    parser.add_argument("--slurm", action="store_true", help="render slurm/train.sbatch for this recipe and submit it")
    parser.add_argument("--dry-run", action="store_true", help="with --slurm (implied): print the sbatch script, submit nothing")


def main(args: argparse.Namespace) -> int:
    from mlift.train.checkpoints import PREEMPTED_EXIT, Preempted
    from mlift.train.slurm import render_sbatch

    recipe = load_train_recipe(args.recipe, args.overrides)
    if args.slurm or args.dry_run:
        script = render_sbatch(recipe, args.recipe, args.overrides)
        if args.dry_run:
            sys.stdout.write(script)
            return 0
        import subprocess
        import tempfile

        # Slurm does not create the --output directory; a missing one loses the log silently
        Path(recipe.cfg.slurm.workdir or os.getcwd(), recipe.cfg.output_dir).mkdir(parents=True, exist_ok=True)

        with tempfile.NamedTemporaryFile("w", suffix=".sbatch", delete=False) as fh:
            fh.write(script)
        done = subprocess.run(["sbatch", "--parsable", fh.name], capture_output=True, text=True)
        if done.returncode:
            print(f"mlift train: sbatch failed: {done.stderr.strip()}", file=sys.stderr)
            return done.returncode
        print(done.stdout.strip())
        return 0
    from mlift.commands.modelpath import check_model

    check_model(recipe.cfg.model.name_or_path, "model.name_or_path")  # here, not in the schema: a sweep's may be remote
    if args.no_progress:
        os.environ["TQDM_DISABLE"] = "1"
    try:
        manifest = train(recipe, fresh=args.fresh)
    except Preempted:
        return PREEMPTED_EXIT
    if manifest:
        print(json.dumps({"output_dir": recipe.cfg.output_dir, **manifest["metrics"]}, default=str))
    return 0


def module_main(argv: list[str] | None = None) -> int:
    from mlift.recipe import RecipeError

    parser = argparse.ArgumentParser(prog="python -m mlift.train", description="TRL SFT (LoRA or full) on a mix of "
                                     "datasets: what `mlift train RECIPE` runs, for accelerate launch and sbatch")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return main(args)
    except RecipeError as exc:
        print(f"mlift train: {exc}", file=sys.stderr)
        return 2
