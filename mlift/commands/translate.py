"""`mlift translate RECIPE`: translate text fields of a dataset (JSONL records or plain-text lines) into other languages,
on the sharded, resumable, cached runner. The smallest real end-to-end job: recipe -> runner -> translator -> shards."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import Field

from mlift.commands import add_recipe_arguments
from mlift.fingerprint import InputPath
from mlift.languages import LangCode
from mlift.recipe import Schema
from mlift.runner.pending import DEFAULT_MAX_ATTEMPTS, MaxAttempts
from mlift.translate.translators import TranslatorConfig


class TextInput(Schema):
    path: InputPath = Field(description="JSONL of records ({id, lang, <field>...}) or a plain-text file, one text per line")
    format: str = Field("auto", pattern="^(auto|jsonl|lines)$")
    lang: LangCode | None = Field(None, description="language of plain-text lines (FLORES code or ISO 639-1)")
    field: str = "text"
    limit: int | None = Field(None, ge=1, description="only the first N texts")


class TranslateRecipe(Schema):
    seed: int = 0
    output_dir: str
    num_shards: int = Field(4, ge=1)
    max_attempts: MaxAttempts = DEFAULT_MAX_ATTEMPTS
    input: TextInput
    target_langs: list[LangCode] = Field(min_length=1)
    fields: list[str] = Field(default_factory=lambda: ["text"])
    translator: TranslatorConfig
    batch_size: int = Field(16, ge=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from mlift.languages import get_language
    from mlift.recipe import RecipeError, load_recipe
    from mlift.records import Record, read_records
    from mlift.runner.stage import (
        guard_run_dir,
        raise_if_pending,
        runner_for,
        shard_files,
        write_input_shards,
        write_manifest,
    )
    from mlift.translate.stage import TranslateStage
    from mlift.translate.translators import make_translator

    recipe = load_recipe(args.recipe, TranslateRecipe, args.overrides)
    cfg = recipe.cfg
    try:
        targets = [get_language(t).flores for t in cfg.target_langs]
        src_lang = get_language(cfg.input.lang).flores if cfg.input.lang else None
    except ValueError as exc:
        raise RecipeError(f"{args.recipe}: {exc}") from None
    from mlift.commands.modelpath import check_llm_models

    check_llm_models(cfg, str(args.recipe))
    out = Path(cfg.output_dir)
    guard_run_dir(out, recipe)
    n = cfg.num_shards
    src_path = Path(cfg.input.path)
    if not src_path.is_file():
        raise RecipeError(f"{args.recipe}: input.path: file not found: {src_path}")

    # Input shards: contiguous slices of the input, written once, so every stage reads shard j of n.
    input_dir = out / "input"
    if not (input_dir / "_complete").exists():
        fmt = cfg.input.format
        if fmt == "auto":
            fmt = "jsonl" if src_path.suffix in (".jsonl", ".json") else "lines"
        if fmt == "lines":
            if src_lang is None:
                raise RecipeError(f"{args.recipe}: input.lang is required for plain-text input")
            from mlift.textio import read_text

            lines = [x.rstrip("\n") for x in read_text(src_path).splitlines() if x.strip()]
            items = [Record(id=f"{src_path.stem}-{i}", lang=src_lang, fields={cfg.input.field: x}) for i, x in enumerate(lines)]
        else:
            items = list(read_records(src_path))
        if not items:
            raise RecipeError(f"{src_path}: input.path: the file holds no text (empty, or only blank lines)")
        write_input_shards(input_dir, items[: cfg.input.limit] if cfg.input.limit else items, n)
    source = json.loads((input_dir / "_complete").read_text())
    if source.get("unreadable"):  # said on every run, resumed or not: those lines are not translated
        print(f"input: {source['unreadable']} unreadable line(s) quarantined, see {input_dir / 'quarantine.jsonl'}")

    translator = make_translator(cfg.translator, out, cfg.seed)
    runner = runner_for(args, out, n, cfg)
    stages, all_stats = [], []
    for tgt in targets:
        short = get_language(tgt).short
        stage = TranslateStage(f"to_{short}", translator, {f: f"{f}_{short}" for f in cfg.fields}, tgt, src=src_lang,
                               batch_size=cfg.batch_size)
        stats = runner.run(stage, shard_files(input_dir, n))
        stages.append(stage.name)
        all_stats.append(stats)
        c = stats.counts
        print(f"{stage.name}: in {c['in']}  kept {c['keep']}  quarantined {c['quarantine']}  retried {c['retried']}  "
              f"pending {stats.pending}  ({stats.shards_done}/{n} shards, {stats.shards_skipped} resumed)"
              + (f"; quarantined records with their reasons: {out / stage.name / 'quarantine'}/" if c["quarantine"] else ""))
    manifest = write_manifest(out, recipe, stages, n, {"input": source}, job_type=None if args.shard else "translate")
    print(f"wrote {out}/manifest.json (recipe {manifest['recipe']['hash']}, seed {cfg.seed})")
    raise_if_pending(all_stats)
    return 0

