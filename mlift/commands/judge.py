"""`mlift judge RECIPE`: pairwise LLM judge of two models' answers to the same prompts (both orders, tie = 0.5)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlift.languages import get_language


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mlift.commands import add_recipe_arguments

    add_recipe_arguments(parser, shards=False)


def main(args: argparse.Namespace) -> int:

    import sys

    from mlift.judge.pairwise import (
        VERDICT_SCHEMA,
        JudgeRecipe,
        aggregate,
        answers_name,
        build_pairs,
        combine,
        exclusion,
        judge_prompts,
        over_threshold,
        read_verdict,
        summary_line,
    )
    from mlift.llm import Request, make_llm
    from mlift.recipe import load_recipe
    from mlift.records import write_json_atomic, write_records
    from mlift.runner.pending import PendingFailures

    recipe = load_recipe(args.recipe, JudgeRecipe, args.overrides)
    cfg = recipe.cfg
    from mlift.commands.modelpath import check_llm_models

    check_llm_models(cfg, str(args.recipe))
    out = Path(cfg.output_dir)
    pairs = build_pairs(cfg)
    requests = []
    for p in pairs:
        for prompt in judge_prompts(cfg.prompt, p.instruction, p.response_a, p.response_b, get_language(p.lang).name):
            requests.append(Request(messages=[{"role": "user", "content": prompt}]) if cfg.chat else Request(prompt=prompt))
    llm = make_llm(cfg.judge, out, seed=cfg.seed)
    structured = cfg.structured and llm.structured("chat" if cfg.chat else "completion")
    params = None  # the judge's own params: the cache keys of text requests stay as they were
    if structured:  # room for {"verdict": "A"} whatever max_new_tokens a text answer needs
        params = llm.params.model_copy(update={"json_schema": VERDICT_SCHEMA,
                                               "max_new_tokens": max(llm.params.max_new_tokens, 16)})
    completions = llm.generate(requests, params)  # both orders per pair: A first, then swapped
    rows = []
    for k, p in enumerate(pairs):
        c_ab, c_ba = completions[2 * k], completions[2 * k + 1]
        (v_ab, path_ab), (v_ba, path_ba) = read_verdict(c_ab.text, structured), read_verdict(c_ba.text, structured)
        rows.append({"id": p.id, "lang": p.lang, "model_b": p.model_b, "verdict_ab": v_ab, "verdict_ba": v_ba,
                     "path_ab": path_ab, "path_ba": path_ba,
                     "outcome": combine(v_ab, v_ba), "excluded": exclusion(v_ab, v_ba, [c_ab.error, c_ba.error]),
                     "judge_ab": c_ab.text, "judge_ba": c_ba.text, "error": c_ab.error or c_ba.error})
    table = aggregate(rows)
    name_a = answers_name(cfg.model_a)
    name_b = answers_name(cfg.model_b) if cfg.model_b else "reference per language"
    references = ({get_language(k).flores: answers_name(v) for k, v in cfg.reference_by_lang.items()}
                  if cfg.reference_by_lang else None)
    write_records(out / "judgments.jsonl", rows)
    write_json_atomic(out / "scores.json", {"model_a": name_a, "model_b": name_b, "references": references,
                                            "scores": table,
                                            "unparsed": table["all"]["unparsed"],
                                            "excluded": table["all"]["unparsed"] + table["all"]["failed"],
                                            "max_excluded_rate": cfg.max_excluded_rate,
                                            "recipe": recipe.as_manifest()})
    print(f"{name_a} vs {name_b} (score of {name_a} in %: win 1, tie 0.5, loss 0; 50 = parity; pairs without a "
          "readable verdict are excluded, not ties)")
    for lang, s in table.items():
        print(summary_line(lang, s))
    transient = sum(c.transient for c in completions)
    if transient:  # the judgments that did succeed are cached: a rerun asks only for these again
        raise PendingFailures(transient, [f"judge requests: {transient}"])
    too_many = over_threshold(table, cfg.max_excluded_rate)
    for line in too_many:  # the scores of such a language say more about the judge's format than about the models
        print(f"mlift judge: {line}; see {out}/judgments.jsonl", file=sys.stderr)
    return 1 if too_many else 0
