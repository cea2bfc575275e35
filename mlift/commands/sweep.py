"""`mlift sweep SWEEP.yaml`: expand a grid (datasets x models x seeds x override axes) into Slurm jobs (data shards as
job arrays, chained at a pipeline's global steps -> train -> eval -> report, wired with --dependency=afterok) and
submit them; `--dry-run` prints the job graph and the scripts, `--local` runs them here in dependency order,
`--status` lists job states and failed jobs' logs, `--rehearse` runs the sweep's miniature `rehearsal:` twin.
Re-running the same command skips every job whose completion marker carries its current hash. See mlift/sweep/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlift.recipe import Recipe, RecipeError, load_recipe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="sweep recipe (recipes/sweeps/*.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a sweep value, e.g. --set slurm.gres=null --set seeds=[1,2] (repeatable)")
    parser.add_argument("--rehearse", action="store_true",
                        help="run the sweep's `rehearsal:` twin instead (tiny models/data, same arms, grid, seeds, "
                             "shards and stages; outputs under runs/rehearsal/<name>); combines with the modes below")
    parser.add_argument("--hub-endpoint", metavar="URL", default=None,
                        help="with --rehearse: keep the sweep's hub datasets (its `rehearsal.hub:` part), read from this "
                             "Hugging Face endpoint (HF_ENDPOINT in every job, offline switches off), e.g. a local olah")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="write and print the sbatch scripts; submit nothing")
    mode.add_argument("--local", action="store_true", help="run the same scripts here with bash, in dependency order")
    mode.add_argument("--status", action="store_true", help="job states from Slurm (scontrol) and completion markers; "
                      "failed jobs with their log paths")
    parser.add_argument("--wait", action="store_true", help="after submitting, wait until no job is queued or running, "
                        "then print the status")
    parser.add_argument("--timeout", type=float, default=24 * 3600, help="with --wait: give up after this many seconds")
    parser.add_argument("--no-validate", action="store_true",
                        help="do not load the dataset/train recipes before expanding (faster; typos surface in jobs)")


def main(args: argparse.Namespace) -> int:
    from mlift.fingerprint import load_memo, save_memo
    from mlift.sweep import expand, load_sweep, run_local, status, submit, wait, write_manifest, write_scripts
    from mlift.sweep.slurm import array_parts, cluster_max_array_size, sbatch_lines

    if args.hub_endpoint and not args.rehearse:
        print("mlift sweep: --hub-endpoint goes with --rehearse (a real sweep sets HF_ENDPOINT in slurm.env)",
              file=sys.stderr)
        return 2
    recipe = load_sweep(args.recipe, args.overrides, rehearse=args.rehearse, hub_endpoint=args.hub_endpoint)
    memo = Path(recipe.cfg.output_dir).resolve() / "_fingerprints.json"  # the named files' hashes, by size and mtime
    load_memo(memo)
    jobs = expand(recipe, validate=not args.no_validate)
    if not args.no_validate:
        check_job_args(recipe)
    save_memo(memo)
    if args.status:
        counts = status(recipe, jobs)
        return 1 if counts.get("failed") else 0
    scripts = write_scripts(recipe, jobs)
    out = Path(recipe.cfg.output_dir).resolve()
    if args.dry_run:
        if not (out / "manifest.json").exists():  # never overwrite the manifest of a real submission
            write_manifest(recipe, jobs, "dry-run")
        max_size = recipe.cfg.slurm.max_array_size or cluster_max_array_size()
        for job in jobs:
            deps = f" --dependency=afterok:<{'>:<'.join(job.deps)}>" if job.deps else ""
            for args in sbatch_lines(recipe.cfg, job, scripts[job.name], max_size):
                print(f"# ==== {job.name}: sbatch --parsable{deps} {' '.join(args)}")
            print(scripts[job.name].read_text(), end="")
        print("# the job graph (parents first):", file=sys.stderr)
        for job in jobs:
            parts = len(array_parts(job.array, max_size)) if job.array else 0
            what = (f"array 0-{job.array - 1}" + (f" in {parts} parts" if parts > 1 else "")) if job.array else "1 job"
            print(f"#   {job.kind:<9} {job.name:<44} {what:<10} after {', '.join(job.deps) or '-'}", file=sys.stderr)
        print(f"# {len(jobs)} jobs; scripts in {out}/scripts (nothing submitted)", file=sys.stderr)
        return 0
    if args.local:
        write_manifest(recipe, jobs, "local")
        ok = run_local(recipe, jobs, scripts)
        print(f"sweep {recipe.cfg.name}: {'all jobs complete' if ok else 'some jobs failed'}; outputs in {out}")
        return 0 if ok else 1
    write_manifest(recipe, jobs, "slurm")
    try:
        ids = submit(recipe, jobs, scripts)
    except FileNotFoundError:
        print("mlift sweep: sbatch not found (no Slurm here?); use --local or --dry-run", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # jobs submitted before the failure are in the state file; rerun to go on
        print(f"mlift sweep: {exc}", file=sys.stderr)
        return 1
    submitted = [i for i in ids.values() if i]
    print(f"sweep {recipe.cfg.name}: {len(submitted)} job(s) queued, {len(jobs) - len(submitted)} complete; "
          f"state in {out}/sweep_state.json; check with: mlift sweep {args.recipe}{_rehearse_flags(args)} --status")
    if args.wait:
        if not wait(submitted, args.timeout):
            print(f"mlift sweep: still running after {args.timeout:.0f} s", file=sys.stderr)
        counts = status(recipe, jobs)
        return 1 if counts.get("failed") or counts.get("unknown") else 0
    return 0


def _rehearse_flags(args: argparse.Namespace) -> str:
    if not args.rehearse:
        return ""
    return " --rehearse" + (f" --hub-endpoint {args.hub_endpoint}" if args.hub_endpoint else "")


def check_command_args(sweep: Path | str | None, key: str, command: str, args: list[str], suite: str | None = None) -> None:
    """A sweep's extra flags for `mlift answer` / `mlift eval` (answer.args, eval.args), parsed by the command's own
    parser and checked as the job will check them, so a `--batch-size 0` fails here, not on the cluster."""
    import contextlib
    import io

    from mlift.commands import answer as answer_command
    from mlift.commands import eval as eval_command

    module = {"answer": answer_command, "eval": eval_command}[command]
    placeholders = ["--model", "m", "--out", "o", *(["--suite", suite or "s"] if command == "eval" else [])]
    parser = argparse.ArgumentParser(prog=f"mlift {command}")
    module.add_arguments(parser)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ns = parser.parse_args([*placeholders, *args])
    except SystemExit:
        why = err.getvalue().strip().splitlines()[-1:] or ["not accepted"]
        raise RecipeError(f"{sweep}: {key}: {args}: {why[0]}") from None
    try:
        if command == "answer":
            answer_command.check_values(ns)
        else:
            from mlift.eval.suite import EvalSuite

            load_recipe(suite, EvalSuite, eval_command.suite_overrides(ns))
    except RecipeError as exc:
        raise RecipeError(f"{sweep}: {key}: {exc}") from None


def check_job_args(recipe: Recipe) -> None:
    """The flags the sweep adds to its eval and answer jobs, checked before anything is submitted."""
    cfg = recipe.cfg
    if cfg.eval is not None:  # --limit, --batch-size as a job runs
        check_command_args(recipe.path, "eval.args", "eval", cfg.eval.args, cfg.eval.suite)
    if cfg.answer is not None:
        check_command_args(recipe.path, "answer.args", "answer", cfg.answer.args)
