"""`mlift eval --model PATH_OR_ID [--adapter PATH] --suite RECIPE --langs ... --out DIR`: XLSUM, FLORES-200 and
multilingual MMLU through lm-eval; writes lm-eval's full results and a flat table (table.csv / table.json)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="HF hub id or local model directory")
    parser.add_argument("--adapter", default=None, help="PEFT/LoRA adapter directory applied on top of --model")
    parser.add_argument("--suite", required=True, help="eval suite recipe (recipes/eval/*.yaml)")
    parser.add_argument("--langs", nargs="+", default=None, help="languages (FLORES code, ISO 639-1 or name); "
                        "default: the suite's")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--data-dir", default=None, help="local data root (offline): flores200/, xlsum/, m_mmlu/, mmlu/")
    parser.add_argument("--limit", type=int, default=None, help="docs per task")
    parser.add_argument("--backend", choices=["hf", "vllm"], default=None)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:0 ...")
    parser.add_argument("--batch-size", type=int, default=None)
    chat = parser.add_mutually_exclusive_group()
    chat.add_argument("--chat-template", dest="chat", action="store_true", default=None,
                      help="apply the tokenizer's chat template (recorded with the results)")
    chat.add_argument("--no-chat-template", dest="chat", action="store_false")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a suite value, e.g. --set num_fewshot=1 (repeatable)")


def suite_overrides(args: argparse.Namespace) -> list[str]:
    """The suite's --set overrides, with the flags that stand for suite keys (--limit, --batch-size, ...)."""
    overrides = list(args.overrides)
    for key, value in (("data_dir", args.data_dir), ("limit", args.limit), ("backend", args.backend),
                       ("device", args.device), ("batch_size", args.batch_size), ("apply_chat_template", args.chat)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.langs:
        overrides.append(f"langs=[{', '.join(args.langs)}]")
    return overrides


def main(args: argparse.Namespace) -> int:
    from mlift.commands.argcheck import check_out
    from mlift.commands.modelpath import check_adapter, check_model
    from mlift.eval.run import EvalSuite, run_eval
    from mlift.recipe import load_recipe

    check_model(args.model)
    check_adapter(args.adapter)
    check_out(args.out)
    recipe = load_recipe(args.suite, EvalSuite, suite_overrides(args))
    table = run_eval(recipe.cfg, args.model, args.out, adapter=args.adapter, manifest={"recipe": recipe.as_manifest()})
    for row in table:
        value = "n/a" if row["value"] is None else f"{row['value']:.4g}"
        print(f"{row['task']:<40} {row['metric']:<8} {value:>10}  n={row['n']}")
    print(f"wrote {args.out}/table.csv, table.json, results.json, samples/")
    _log_wandb(args, recipe.as_manifest(), table)
    return 0


def _log_wandb(args: argparse.Namespace, recipe: dict, table: list[dict]) -> None:
    """With W&B on (WANDB_PROJECT set): one eval run, a summary metric per task/language and the flat table."""
    from mlift.tracking import log_job, run_name

    summary = {f"{r['family']}/{r['metric']}/{r['lang']}" + (f":{r['direction']}" if r.get("direction") else ""):
               r["value"] for r in table if r["value"] is not None}
    columns = list(table[0]) if table else []
    log_job("eval", run_name(args.out), {"recipe": recipe, "model": args.model, "adapter": args.adapter}, summary,
            {"eval": (columns, [[r.get(c) for c in columns] for r in table])})
