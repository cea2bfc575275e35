"""`mlift judge RECIPE`: pairwise LLM judge of two models' answers to the same prompts (both orders, tie = 0.5)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlift.languages import get_language


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mlift.cli import add_recipe_arguments

    add_recipe_arguments(parser, shards=False)


def main(args: argparse.Namespace) -> int:

    from mlift.judge import JudgeRecipe, aggregate, answers_name, build_pairs, combine, judge_prompts, parse_verdict
    from mlift.llm import Request, make_llm
    from mlift.pending import PendingFailures
    from mlift.recipe import load_recipe
    from mlift.records import write_json_atomic, write_records

    recipe = load_recipe(args.recipe, JudgeRecipe, args.overrides)
    cfg = recipe.cfg
    from mlift.modelpath import check_llm_models

    check_llm_models(cfg, str(args.recipe))
    out = Path(cfg.output_dir)
    pairs = build_pairs(cfg)
    requests = []
    for p in pairs:
        for prompt in judge_prompts(cfg.prompt, p.instruction, p.response_a, p.response_b, get_language(p.lang).name):
            requests.append(Request(messages=[{"role": "user", "content": prompt}]) if cfg.chat else Request(prompt=prompt))
    llm = make_llm(cfg.judge, out, seed=cfg.seed)
    completions = llm.generate(requests)  # both orders per pair: A first, then swapped
    rows, outcomes = [], []
    for k, p in enumerate(pairs):
        c_ab, c_ba = completions[2 * k], completions[2 * k + 1]
        v_ab, v_ba = parse_verdict(c_ab.text), parse_verdict(c_ba.text)
        outcome = combine(v_ab, v_ba)
        outcomes.append((p.lang, outcome))
        rows.append({"id": p.id, "lang": p.lang, "model_b": p.model_b, "verdict_ab": v_ab, "verdict_ba": v_ba,
                     "outcome": outcome, "judge_ab": c_ab.text, "judge_ba": c_ba.text, "error": c_ab.error or c_ba.error})
    table = aggregate(outcomes)
    name_a = answers_name(cfg.model_a)
    name_b = answers_name(cfg.model_b) if cfg.model_b else "reference per language"
    references = ({get_language(k).flores: answers_name(v) for k, v in cfg.reference_by_lang.items()}
                  if cfg.reference_by_lang else None)
    write_records(out / "judgments.jsonl", rows)
    write_json_atomic(out / "scores.json", {"model_a": name_a, "model_b": name_b, "references": references,
                                            "scores": table,
                                            "unparsed": sum(r["verdict_ab"] is None or r["verdict_ba"] is None
                                                            for r in rows),
                                            "recipe": recipe.as_manifest()})
    print(f"{name_a} vs {name_b} (score of {name_a} in %: win 1, tie 0.5, loss 0; 50 = parity)")
    for lang, s in table.items():
        print(f"{lang:<10} score={s['score_pct']:6.2f}  win={s['win']} tie={s['tie']} loss={s['loss']}  n={s['n']}")
    transient = sum(c.transient for c in completions)
    if transient:  # the judgments that did succeed are cached: a rerun asks only for these again
        raise PendingFailures(transient, [f"judge requests: {transient}"])
    return 0
