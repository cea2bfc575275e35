"""`mlift judge RECIPE`: pairwise LLM judge of two models' answers to the same prompts (both orders, tie = 0.5)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlift.languages import get_language


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mlift.cli import add_recipe_arguments

    add_recipe_arguments(parser, shards=False)


def _answers(path: str, key: str) -> dict[str, dict]:
    """id -> row of an answers file; any row that cannot be judged is refused here, naming the file, line and key."""
    from mlift.recipe import RecipeError
    from mlift.records import BadLine, read_jsonl

    if not Path(path).is_file():
        raise RecipeError(f"{key}.path: answers file not found: {path}")
    out = {}
    for line, row in read_jsonl(path):
        if isinstance(row, BadLine):
            raise RecipeError(f"{path}:{line}: {row.reason}")
        if not isinstance(row, dict):
            raise RecipeError(f"{path}:{line}: expected a JSON object per line, got {type(row).__name__}")
        for names in (("id",), ("lang",), ("instruction", "prompt"), ("response", "output")):
            if not any(isinstance(row.get(n), str) or (n == "id" and row.get(n) is not None) for n in names):
                raise RecipeError(f"{path}:{line}: no {' or '.join(repr(n) for n in names)} field "
                                  f"(an answers file has id, lang, instruction/prompt, response/output)")
        try:
            get_language(row["lang"])
        except ValueError as exc:
            raise RecipeError(f"{path}:{line}: lang: {exc}") from None
        row["_line"] = line
        out[str(row["id"])] = row
    return out


def main(args: argparse.Namespace) -> int:
    from mlift.judge import JudgeRecipe, aggregate, combine, judge_prompts, parse_verdict
    from mlift.llm import Request, make_llm
    from mlift.pending import PendingFailures
    from mlift.recipe import RecipeError, load_recipe
    from mlift.records import write_json_atomic, write_records

    recipe = load_recipe(args.recipe, JudgeRecipe, args.overrides)
    cfg = recipe.cfg
    out = Path(cfg.output_dir)
    a, b = _answers(cfg.model_a.path, "model_a"), _answers(cfg.model_b.path, "model_b")
    try:
        wanted = {get_language(x).flores for x in cfg.langs} if cfg.langs else None
    except ValueError as exc:
        raise RecipeError(f"{args.recipe}: langs: {exc}") from None
    ids = [i for i in a if i in b and (wanted is None or get_language(a[i]["lang"]).flores in wanted)]
    ids = ids[: cfg.limit] if cfg.limit else ids
    if not ids:
        raise RecipeError(f"no prompt id is shared by {cfg.model_a.path} and {cfg.model_b.path} (after langs/limit)")

    def text(path: str, row: dict, *keys: str) -> str:
        for k in keys:
            if k in row:
                return str(row[k])
        raise RecipeError(f"{path}:{row['_line']}: id {row['id']}: no {' or '.join(keys)} field")

    requests = []
    for i in ids:
        lang = get_language(a[i]["lang"])
        instr = text(cfg.model_a.path, a[i], "instruction", "prompt")
        ra, rb = text(cfg.model_a.path, a[i], "response", "output"), text(cfg.model_b.path, b[i], "response", "output")
        for prompt in judge_prompts(cfg.prompt, instr, ra, rb, lang.name):  # both orders: A first, then swapped
            requests.append(Request(messages=[{"role": "user", "content": prompt}]) if cfg.chat else Request(prompt=prompt))
    llm = make_llm(cfg.judge, out, seed=cfg.seed)
    completions = llm.generate(requests)
    rows, outcomes = [], []
    for k, i in enumerate(ids):
        c_ab, c_ba = completions[2 * k], completions[2 * k + 1]
        v_ab, v_ba = parse_verdict(c_ab.text), parse_verdict(c_ba.text)
        outcome = combine(v_ab, v_ba)
        lang = get_language(a[i]["lang"]).flores
        outcomes.append((lang, outcome))
        rows.append({"id": i, "lang": lang, "verdict_ab": v_ab, "verdict_ba": v_ba, "outcome": outcome,
                     "judge_ab": c_ab.text, "judge_ba": c_ba.text, "error": c_ab.error or c_ba.error})
    table = aggregate(outcomes)
    name_a = cfg.model_a.name or Path(cfg.model_a.path).stem
    name_b = cfg.model_b.name or Path(cfg.model_b.path).stem
    write_records(out / "judgments.jsonl", rows)
    write_json_atomic(out / "scores.json", {"model_a": name_a, "model_b": name_b, "scores": table,
                                            "unparsed": sum(r["verdict_ab"] is None or r["verdict_ba"] is None
                                                            for r in rows),
                                            "recipe": recipe.as_manifest()})
    print(f"{name_a} vs {name_b} (score of {name_a}: win 1, tie 0.5, loss 0)")
    for lang, s in table.items():
        print(f"{lang:<10} score={s['score']:.3f}  win={s['win']} tie={s['tie']} loss={s['loss']}  n={s['n']}")
    transient = sum(c.transient for c in completions)
    if transient:  # the judgments that did succeed are cached: a rerun asks only for these again
        raise PendingFailures(transient, [f"judge requests: {transient}"])
    return 0
