"""`mlift generate RECIPE`: natural multilingual IFT data from monolingual corpora, per language, in five stages
(fragments, to_english, instruct, score, to_target) plus two global steps (dedup, select), on the sharded,
resumable, cached runner. `--stage NAME` runs one step; the final data is <output_dir>/<lang>/to_target/shard-*.jsonl."""

from __future__ import annotations

import argparse

from mlift.commands import add_recipe_arguments
from mlift.generate.config import STEPS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--stage", choices=STEPS, default=None, help="run only this step (its input must be done)")
    parser.add_argument("--steps", default=None, metavar="A,B,..",
                        help=f"run only these steps, in pipeline order ({','.join(STEPS)}); `mlift sweep` runs the map "
                             "steps between two global steps as one job array, each global step as one job")
    parser.add_argument("--no-report", action="store_true", help="skip the report even when the run is complete")


def main(args: argparse.Namespace) -> int:
    import sys

    from mlift.generate.config import GenerateRecipe
    from mlift.generate.pipeline import all_done, run_pipeline
    from mlift.generate.plan import NotReady
    from mlift.languages import get_language
    from mlift.recipe import RecipeError, load_recipe
    from mlift.runner.stage import guard_run_dir, parse_shard_selector, raise_if_pending, write_manifest

    recipe = load_recipe(args.recipe, GenerateRecipe, args.overrides)
    cfg = recipe.cfg
    try:
        langs = [get_language(x).flores for x in cfg.languages]
    except ValueError as exc:
        raise RecipeError(f"{args.recipe}: languages: {exc}") from None
    from mlift.generate.fragments import check_languages

    check_languages(cfg.fragments, langs)  # a language no chosen detector knows: the recipe must say what to do
    steps = [args.stage] if args.stage else None
    if args.steps:
        steps = [s.strip() for s in args.steps.split(",") if s.strip()]
        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise RecipeError(f"--steps: unknown step(s) {unknown}; steps: {', '.join(STEPS)}")
    shard = parse_shard_selector(args.shard)
    from mlift.commands.modelpath import check_llm_models
    from mlift.data.corpus import check_local_files

    check_llm_models(cfg, str(args.recipe))

    try:
        check_local_files(cfg.sources, [get_language(x) for x in langs])
    except FileNotFoundError as exc:
        raise RecipeError(f"{args.recipe}: {exc}") from None
    guard_run_dir(cfg.output_dir, recipe)
    try:
        stats = run_pipeline(cfg, shard, steps, progress=not args.no_progress,
                             retry_quarantined=args.retry_quarantined)
    except NotReady as exc:
        print(f"mlift generate: waiting: {exc}", file=sys.stderr)
        return 3
    except FileNotFoundError as exc:
        raise RecipeError(f"{args.recipe}: {exc}") from None
    from mlift.generate.report import language_warnings

    warns = language_warnings(cfg)  # a language that lost everything is said, never silent
    for w, _ in (x for ws in warns.values() for x in ws):
        print(f"mlift generate: warning: {w}", file=sys.stderr)
    lost = [lang for lang, ws in warns.items() if any(fatal for _, fatal in ws)]
    raise_if_pending(s for per_lang in stats.values() for s in per_lang.values())
    if all_done(cfg):
        from mlift.generate.report import cost_ledger, funnel, write_report

        fun = funnel(cfg)
        manifest = write_manifest(cfg.output_dir, recipe, [f"{lang}/{s}" for lang in langs for s in STEPS],
                                  cfg.num_shards, {"funnel": {k: {x: v[x] for x in ("documents", "fragment_candidates",
                                                                                       "lang_id_pass_rate", "final", "adds_up",
                                                                                       "contamination", "retried",
                                                                                       "final_after_retries")}
                                                              for k, v in fun.items()},
                                                   "cost_ledger": cost_ledger(cfg),
                                                   "dataset": {"data_files": f"{cfg.output_dir}/*/to_target/shard-*.jsonl"}},
                                  job_type=None if args.shard else "generate")
        if cfg.report.enabled and not args.no_report:
            report = write_report(cfg, manifest["recipe"]["hash"])
            print(f"wrote {report}")
        bad = [lang for lang, f in fun.items() if not f["adds_up"]]
        if bad:
            print(f"mlift generate: the funnel does not add up for {bad}: see report.md", file=sys.stderr)
            return 1
        if not lost:
            print(f"done: {sum(f['final'] for f in fun.values())} pairs in {len(fun)} languages -> "
                  f"{cfg.output_dir}/*/to_target/ (manifest.json, recipe {manifest['recipe']['hash']})")
    if lost:
        print(f"mlift generate: everything was dropped for {lost}: see the warnings above (and report.md)",
              file=sys.stderr)
        return 1
    return 0
