"""`mlift baseline {translated-alpaca,templated,sphinx} RECIPE`: build a baseline dataset on the sharded, resumable,
cached runner. Output: chat records under <output_dir>/dataset/<lang>/shard-*.jsonl (TRL trains on `messages`), a
manifest.json whose per-language counts add up to the input."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlift.commands import add_recipe_arguments

BUILDERS = ("translated-alpaca", "templated", "sphinx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    subs = parser.add_subparsers(dest="builder", metavar="BUILDER", required=True)
    helps = {"translated-alpaca": "Bactrian-X style: an English instruction set machine-translated (+ optional regeneration)",
             "templated": "xP3/Aya style: labelled NLP datasets (train splits) through Jinja templates",
             "sphinx": "selective translation with protected spans + N-shot guided samples"}
    for name in BUILDERS:
        add_recipe_arguments(subs.add_parser(name, help=helps[name], description=helps[name]))


def main(args: argparse.Namespace) -> int:
    from mlift.runner.stage import raise_if_pending

    _PENDING.clear()
    rc = {"translated-alpaca": _translated_alpaca, "templated": _templated, "sphinx": _sphinx}[args.builder](args)
    raise_if_pending(_PENDING)
    return rc


def _targets(recipe_path: str, langs: list[str]) -> list[str]:
    from mlift.languages import get_language
    from mlift.recipe import RecipeError

    try:
        return list(dict.fromkeys(get_language(t).flores for t in langs))
    except ValueError as exc:
        raise RecipeError(f"{recipe_path}: {exc}") from None


def _runner(args: argparse.Namespace, out: Path, n: int, cfg=None):
    from mlift.runner.stage import runner_for

    return runner_for(args, out, n, cfg)


_PENDING: list = []  # stages of this command that left records pending (exit 4 at the end)


def _report(stats) -> None:
    c = stats.counts
    if stats.pending:
        _PENDING.append(stats)
    print(f"{stats.name}: in {c['in']}  kept {c['keep']}  dropped {c['drop']}  quarantined {c['quarantine']}  "
          f"retried {c['retried']}  pending {stats.pending}  "
          f"({stats.shards_done}/{stats.shards_total} shards, {stats.shards_skipped} resumed)")


def _finish(out: Path, recipe: Any, stages: list[str], n: int, extra: dict[str, Any], whole: bool) -> None:
    """`whole`: this process ran every shard (not an array task): then the run is also logged to W&B when it is on."""
    from mlift.baselines.common import DATASET_GLOB
    from mlift.runner.stage import collect_stats, write_manifest

    per_lang = {}
    for name in stages:
        if name.startswith("dataset/"):
            c = collect_stats(out, name, n).counts
            per_lang[name.split("/", 1)[1]] = {k: c.get(k, 0) for k in ("in", "keep", "drop", "quarantine")}
    extra = {**extra, "data_files": str(out / DATASET_GLOB), "languages": per_lang,
             "total_records": sum(v["keep"] for v in per_lang.values())}
    check = getattr(recipe.cfg, "contamination", None)
    if check is not None:
        extra["contamination"] = _contamination(out, check)
    manifest = write_manifest(out, recipe, stages, n, extra, job_type="baseline" if whole else None)
    print(f"wrote {out}/manifest.json: {manifest['total_records']} records (recipe {manifest['recipe']['hash']})")


def _contamination(out: Path, check: Any) -> dict[str, Any]:
    from mlift.baselines.common import DATASET_GLOB
    from mlift.data.contamination import check_records, print_report
    from mlift.data.mix import DataSource, load_source  # noqa: F401 (DataSource: mlift.data.conversations)

    rep = check_records(load_source(DataSource(path=str(out / DATASET_GLOB))), check)
    print_report(rep)
    return rep


@dataclass
class _Translating:
    """What the two translating builders (translated-alpaca, sphinx) set up alike: the recipe, the English pairs
    sharded under <out>/input, and a translator (None when every target is the source language)."""

    recipe: Any
    targets: list[str]
    src: str
    out: Path
    n: int
    source: dict[str, Any]
    translator: Any


def _translating(args: argparse.Namespace, schema: type) -> _Translating:
    from mlift.baselines.common import load_pairs
    from mlift.data.conversations import write_quarantine
    from mlift.languages import get_language
    from mlift.recipe import load_recipe
    from mlift.runner.stage import guard_run_dir, write_input_shards
    from mlift.translate.translators import make_translator

    recipe = load_recipe(args.recipe, schema, args.overrides)
    cfg = recipe.cfg
    targets = _targets(args.recipe, cfg.target_langs)
    src = get_language(cfg.source.lang).flores
    out, n = Path(cfg.output_dir), cfg.num_shards
    from mlift.commands.modelpath import check_llm_models

    check_llm_models(cfg, str(args.recipe))
    guard_run_dir(out, recipe)
    pairs, bad = load_pairs(cfg.source)
    quarantine = out / "quarantine" / "sources.jsonl"
    quarantine.unlink(missing_ok=True)
    write_quarantine(quarantine, bad, cfg.source.path)
    if bad:
        print(f"{len(bad)} unreadable source row(s) quarantined in {quarantine}")
    source = {**write_input_shards(out / "input", pairs, n), "bad_lines": len(bad)}  # type: ignore[arg-type]
    translator = make_translator(cfg.translator, out, cfg.seed) if any(t != src for t in targets) else None
    return _Translating(recipe, targets, src, out, n, source, translator)


def _translated_alpaca(args: argparse.Namespace) -> int:
    from mlift.baselines.translated_alpaca import PairTranslateStage, TranslatedAlpacaRecipe
    from mlift.languages import get_language
    from mlift.llm import make_llm
    from mlift.runner.stage import shard_files

    job = _translating(args, TranslatedAlpacaRecipe)
    cfg, out, n, translator, src = job.recipe.cfg, job.out, job.n, job.translator, job.src
    regen = make_llm(cfg.regenerate.llm, out, cfg.seed) if cfg.regenerate else None
    runner = _runner(args, out, n, cfg)
    stages = []
    for tgt in job.targets:
        stage = PairTranslateStage(f"dataset/{get_language(tgt).short}", translator, tgt, src=src,
                                   batch_size=cfg.batch_size, regenerate=regen,
                                   regen_mode=regen.prompt_mode(cfg.regenerate.mode) if regen else "completion",
                                   regen_tokens=cfg.regenerate.max_new_tokens if cfg.regenerate else 256)
        _report(runner.run(stage, shard_files(out / "input", n)))
        stages.append(stage.name)
    _finish(out, job.recipe, stages, n, {"input": job.source}, whole=not args.shard)
    return 0


def _sphinx(args: argparse.Namespace) -> int:
    from mlift.baselines.common import read_stage
    from mlift.baselines.sphinx import NShotStage, SphinxRecipe
    from mlift.baselines.translated_alpaca import PairTranslateStage
    from mlift.languages import get_language
    from mlift.runner.stage import collect_stats, shard_files

    job = _translating(args, SphinxRecipe)
    cfg, out, n, translator, src = job.recipe.cfg, job.out, job.n, job.translator, job.src
    runner = _runner(args, out, n, cfg)
    stages, waiting = [], []
    for tgt in job.targets:
        short = get_language(tgt).short
        stage = PairTranslateStage(f"translated/{short}", translator, tgt, src=src, protect=tuple(cfg.protect.kinds),
                                   terms=tuple(cfg.protect.terms), batch_size=cfg.batch_size)
        _report(runner.run(stage, shard_files(out / "input", n)))
        stages.append(stage.name)
        # N-shot draws from the whole language pool, so it needs every translation shard (other --shard processes too).
        if collect_stats(out, stage.name, n).shards_done < n:
            waiting.append(short)
            continue
        pool = read_stage(out, stage.name)
        shot = NShotStage(f"dataset/{short}", pool, cfg.nshot.n, seed=cfg.seed, selection=cfg.nshot.selection,
                          embedding_model=cfg.nshot.embedding_model)
        _report(runner.run(shot, shard_files(out / stage.name, n)))
        stages.append(shot.name)
    if waiting:
        print(f"N-shot stage waits for all translation shards of: {', '.join(waiting)}; rerun once they are done")
    _finish(out, job.recipe, stages, n, {"input": job.source, "nshot": cfg.nshot.model_dump()}, whole=not args.shard)
    return 0


def _templated(args: argparse.Namespace) -> int:
    from mlift.baselines.templated import TemplatedRecipe, TemplateStage, load_rows, load_task
    from mlift.languages import get_language
    from mlift.recipe import load_recipe
    from mlift.records import RESERVED, Record
    from mlift.runner.stage import guard_run_dir, shard_files, write_input_shards

    recipe = load_recipe(args.recipe, TemplatedRecipe, args.overrides)
    cfg = recipe.cfg
    out, n = Path(cfg.output_dir), cfg.num_shards
    guard_run_dir(out, recipe)
    by_lang: dict[str, list[Record]] = {}
    sources = []
    for spec in cfg.datasets:
        load_task(spec.task, cfg.templates_dir)  # a missing or broken template file fails before any data is read
        for lang in _targets(args.recipe, spec.langs):
            short = get_language(lang).short
            if (out / "input" / short / "_complete").exists():
                continue  # resume: the rows of this language are already sharded
            rows = load_rows(spec, lang)
            sources.append({"task": spec.task, "source": spec.source, "lang": lang, "split": spec.split,
                            "rows": len(rows)})
            for row in rows:
                fields = {k: v for k, v in row.items() if k not in RESERVED}
                by_lang.setdefault(lang, []).append(Record(
                    id=f"{spec.task}-{spec.source}-{row['id']}", lang=lang, fields=fields,
                    meta={"task": spec.task, "source": spec.source, "split": spec.split}))
    runner = _runner(args, out, n, cfg)
    stages = []
    langs = list(dict.fromkeys(t for spec in cfg.datasets for t in _targets(args.recipe, spec.langs)))
    inputs = {}
    for lang in langs:
        short = get_language(lang).short
        inputs[short] = write_input_shards(out / "input" / short, by_lang.get(lang, []), n)  # type: ignore[arg-type]
        stage = TemplateStage(f"dataset/{short}", cfg.seed, cfg.templates_per_example, cfg.template_langs,
                              cfg.templates_dir, cfg.batch_size)
        _report(runner.run(stage, shard_files(out / "input" / short, n)))
        stages.append(stage.name)
    _finish(out, recipe, stages, n, {"input": inputs, "sources": sources}, whole=not args.shard)
    return 0
