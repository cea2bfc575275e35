"""`mlift check-contamination RECIPE`: n-gram overlap between a built training set and the eval sets in use; writes
<output_dir>/contamination.json (per language) and a copy of the set with hits flagged or dropped (`drop: true`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlift.commands import add_recipe_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from mlift.baselines.common import DATASET_GLOB, memory_inputs
    from mlift.data.contamination import (
        ContaminationRecipe,
        ContaminationStage,
        NgramIndex,
        print_report,
        report,
    )
    from mlift.data.mix import DataSource, load_source  # noqa: F401 (DataSource: mlift.data.conversations)
    from mlift.recipe import load_recipe
    from mlift.records import write_json_atomic
    from mlift.runner.stage import guard_run_dir, raise_if_pending, runner_for, write_manifest

    recipe = load_recipe(args.recipe, ContaminationRecipe, args.overrides)
    cfg = recipe.cfg
    out, n = Path(cfg.output_dir), cfg.num_shards
    guard_run_dir(out, recipe)
    records = load_source(DataSource(path=cfg.dataset))
    index = NgramIndex.build(cfg.eval_sets, cfg.n, cfg.boilerplate_texts)
    rep = report(records, index, cfg.min_hits)
    write_json_atomic(out / "contamination.json", rep)
    runner = runner_for(args, out, n, cfg)
    stage = ContaminationStage(index, cfg.min_hits, cfg.drop)
    stats = runner.run(stage, memory_inputs(records, n))
    write_manifest(out, recipe, [stage.name], n, {"contamination": {k: v for k, v in rep.items() if k != "per_language"},
                                                  "data_files": str(out / DATASET_GLOB)})
    print_report(rep)
    print(f"{rep['contaminated']}/{rep['records']} contaminated ({cfg.n}-grams); kept {stats.counts['keep']}, "
          f"dropped {stats.counts['drop']}; wrote {out}/contamination.json")
    raise_if_pending([stats])
    return 0
