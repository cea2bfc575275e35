"""`mlift mix RECIPE`: build a pinch / monolingual / k-language / weighted mixture of instruction datasets; the counts
and the rounding rule go to manifest.json (see mlift/data/mix.py for the rule)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from mlift.commands import add_recipe_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from mlift.baselines.common import DATASET_GLOB, memory_inputs
    from mlift.data.contamination import check_records, print_report
    from mlift.data.conversations import write_quarantine
    from mlift.data.mix import EmitStage, MixRecipe, build
    from mlift.recipe import load_recipe
    from mlift.runner.stage import guard_run_dir, raise_if_pending, runner_for, write_manifest

    recipe = load_recipe(args.recipe, MixRecipe, args.overrides)
    cfg = recipe.cfg
    out, n = Path(cfg.output_dir), cfg.num_shards
    guard_run_dir(out, recipe)
    records, info, reads = build(cfg)
    (out / "quarantine" / "sources.jsonl").unlink(missing_ok=True)
    for read, src in zip(reads, [r.info["path"] for r in reads]):
        write_quarantine(out / "quarantine" / "sources.jsonl", read.bad, src)
    if info["bad_lines"]:
        print(f"{info['bad_lines']} malformed source rows quarantined in {out}/quarantine/sources.jsonl")
    runner = runner_for(args, out, n, cfg)
    stats = runner.run(EmitStage(), memory_inputs(records, n))
    langs = dict(Counter(r.lang for r in records).most_common())
    extra = {"kind": cfg.mixture.kind, **info, "languages": langs, "total_records": len(records),
             "data_files": str(out / DATASET_GLOB)}
    if cfg.contamination is not None:
        extra["contamination"] = check_records(records, cfg.contamination)
        print_report(extra["contamination"])
    manifest = write_manifest(out, recipe, [EmitStage.name], n, extra, job_type=None if args.shard else "mix")
    print(f"{cfg.mixture.kind}: {stats.counts['keep']} records {langs}")
    print(f"wrote {out}/manifest.json (recipe {manifest['recipe']['hash']}, seed {cfg.seed})")
    raise_if_pending([stats])
    return 0
