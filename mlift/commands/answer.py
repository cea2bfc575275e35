"""`mlift answer --model M [--adapter DIR] --instructions DIR_OR_FILE --out OUT`: the model answers an instruction eval
set per language through its chat template; writes OUT/answers.jsonl ({id, lang, instruction, response}: the answer
file `mlift judge` reads), OUT/quarantine.jsonl (failed requests, with the reason) and OUT/manifest.json."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="HF hub id or local model directory (base or full checkpoint)")
    parser.add_argument("--adapter", default=None, help="PEFT/LoRA adapter directory applied on top of --model")
    parser.add_argument("--instructions", default="shipped",
                        help="JSONL (id, lang, instruction [, input]) or a dir of <lang>.jsonl; 'shipped': the tiny "
                             "12-language set in mlift/resources/pinch_instructions (tests, rehearsals)")
    parser.add_argument("--langs", nargs="+", default=None, help="only these languages (default: all in the files)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    parser.add_argument("--device", default="auto", help="transformers backend: cpu, cuda, auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--chat-template", default=None,
                        help="None: the checkpoint's own (mlift's default when it has none); default; tokenizer; "
                             "a .jinja file")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=None, help="instructions per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="accepted for symmetry with the other commands")


def check_values(args: argparse.Namespace) -> None:
    """The numeric flags (also checked by `mlift sweep --dry-run` on a sweep's answer.args)."""
    from mlift.commands.argcheck import check_positive
    from mlift.recipe import RecipeError

    check_positive(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, limit=args.limit)
    if args.temperature < 0:
        raise RecipeError(f"--temperature: must be >= 0, got {args.temperature}")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlift.commands.argcheck import check_out
    from mlift.commands.modelpath import check_adapter, check_model
    from mlift.judge.answer import (
        answer_rows,
        chat_template,
        load_instructions,
        manifest,
        model_digest,
        template_sha256,
        user_message,
    )
    from mlift.llm import Request, make_llm
    from mlift.llm.base import GenParams, TransformersLLMConfig, VLLMConfig
    from mlift.records import write_json_atomic, write_records

    # before any model loads: a zero batch size or a wrong path would fail after minutes of loading
    check_values(args)
    check_model(args.model)
    check_adapter(args.adapter)
    check_out(args.out)
    rows = load_instructions(args.instructions, args.langs, args.limit)
    template, source, tok_path = chat_template(args.model, args.adapter, args.chat_template)
    params = GenParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    common = {"model": args.model, "adapter": args.adapter, "tokenizer": tok_path, "chat_template": template,
              "params": params, "batch_size": args.batch_size}
    if args.backend == "vllm":
        cfg = VLLMConfig(backend="vllm", dtype=args.dtype, **common)
    else:
        cfg = TransformersLLMConfig(backend="transformers", device=args.device, dtype=args.dtype, **common)
    out = Path(args.out)
    fp = model_digest(args.model, args.adapter)
    llm = make_llm(cfg, out / "cache" / fp, seed=args.seed)  # a retrained model gets a fresh cache
    completions = llm.generate([Request(messages=[{"role": "user", "content": user_message(r)}]) for r in rows])
    good, bad = answer_rows(rows, completions)
    write_records(out / "answers.jsonl", good)
    write_records(out / "quarantine.jsonl", bad)
    counts: dict[str, int] = {}
    for r in good:
        counts[r["lang"]] = counts.get(r["lang"], 0) + 1
    write_json_atomic(out / "manifest.json", manifest(
        model=args.model, adapter=args.adapter, tokenizer=tok_path, model_fingerprint=fp,
        instructions=str(args.instructions), backend=args.backend, chat_template_source=source,
        chat_template_sha256=template_sha256(template), params=params.model_dump(), seed=args.seed,
        answered=counts, quarantined=len(bad)))
    for lang, n in sorted(counts.items()):
        print(f"{lang:<10} answered={n}")
    print(f"wrote {out}/answers.jsonl ({len(good)} answers, {len(bad)} quarantined)")
    return 0 if good else 1
