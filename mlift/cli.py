"""`mlift` entry point. Each subcommand is a thin module in mlift/commands/ with `add_arguments(parser)` and
`main(args) -> int`; heavy imports happen inside `main`, so `mlift --help` stays fast. A subcommand whose module does not
exist yet says so plainly and exits non-zero."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from mlift import __version__

# name -> (module, one-line help, issue that builds it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": ("mlift.commands.generate", "generate natural multilingual IFT data from monolingual corpora (5 stages)", "#3"),
    "baseline": ("mlift.commands.baseline", "build a baseline dataset: translated-alpaca, templated, sphinx", "#4"),
    "mix": ("mlift.commands.mix", "pinch / monolingual / k-language / weighted mixtures of datasets", "#4"),
    "check-contamination": ("mlift.commands.check_contamination", "n-gram overlap of training sets with eval sets", "#4"),
    "translate": ("mlift.commands.translate", "translate text fields of a dataset with any translator (sharded, cached)", "#2"),
    "train": ("mlift.commands.train", "fine-tune a model with TRL SFT (LoRA or full; accelerate/DeepSpeed)", "#5"),
    "eval": ("mlift.commands.eval", "evaluate a model on XLSUM, FLORES-200 and multilingual MMLU through lm-eval", "#6"),
    "answer": ("mlift.commands.answer", "a model answers an instruction eval set per language (for the judge)", "#11"),
    "judge": ("mlift.commands.judge", "pairwise LLM judge of two models' answers (both orders, tie = 0.5)", "#6"),
    "judge-report": ("mlift.commands.judge_report", "per-language judge scores per model: table + figure", "#11"),
    "report": ("mlift.commands.report", "merge eval outputs into comparison tables, plots and W&B", "#7"),
    "sweep": ("mlift.commands.sweep", "expand a grid into Slurm jobs (generate -> train -> eval) with dependencies", "#7"),
    "demo": ("mlift.commands.demo", "the CPU demo: generate, baseline, train, eval and compare on a small shipped corpus", "#7"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlift", description="Multilingual instruction fine-tuning experiments.")
    parser.add_argument("--version", action="version", version=f"mlift {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text, issue) in COMMANDS.items():
        built = importlib.util.find_spec(module) is not None
        sub = subs.add_parser(name, help=help_text if built else f"{help_text} [not built yet: {issue}]",
                              description=help_text)
        if built:
            importlib.import_module(module).add_arguments(sub)
        else:
            sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        sub.set_defaults(_module=module, _built=built, _issue=issue)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if not args._built:
        print(f"mlift {args.command}: not built yet (tracked in issue {args._issue}).", file=sys.stderr)
        return 2
    import os

    from mlift.languages import UnknownLanguageError
    from mlift.recipe import RecipeError
    from mlift.runner.pending import PendingFailures
    from mlift.textio import TextFileError

    if getattr(args, "shard", None):  # each array task writes its own request-cache file (see mlift/llm/cache.py)
        os.environ["MLIFT_CACHE_WRITER"] = "shard-" + args.shard.replace("/", "-of-")
    try:
        return int(importlib.import_module(args._module).main(args) or 0)
    except (RecipeError, UnknownLanguageError, TextFileError) as exc:
        print(f"mlift {args.command}: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # a path named by the user that does not exist: a message, not a traceback
        print(f"mlift {args.command}: file not found: {exc.filename or exc}", file=sys.stderr)
        return 2
    except PendingFailures as exc:
        print(f"mlift {args.command}: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print(f"mlift {args.command}: interrupted; rerun the same command to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
