"""`mlift judge-report LABEL@SEED=JUDGE_DIR... --out DIR`: per-language judge scores per model (table + Pinch's figure)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="[LABEL[@SEED]=]JUDGE_DIR", help="output dirs of `mlift judge`")
    parser.add_argument("--out", required=True)
    parser.add_argument("--x", default=None, help="regex on a label: group 1 the family (a figure each), group 2 the x value "
                        "(default: ^(.*)-P(\\d+)$, e.g. pinch-P10)")


def main(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from mlift.commands.argcheck import check_out, resolve_results
    from mlift.recipe import RecipeError
    from mlift.report.judge import DEFAULT_X, make_judge_report

    # a LABEL@SEED or a dir given twice would be merged into one model's scores
    resolve_results(args.results, ("scores.json", "judge"), "scores.json", ("model_a",), None)
    check_out(args.out)
    if args.x is not None:
        try:
            groups = re.compile(args.x).groups
        except re.error as exc:
            raise RecipeError(f"--x {args.x!r}: not a regular expression ({exc})") from None
        if groups < 2:
            raise RecipeError(f"--x {args.x!r}: needs two groups, (family) and (x), e.g. ^(.*)-P(\\d+)$")
    summary = make_judge_report(args.results, args.out, args.x or DEFAULT_X)
    print(Path(args.out, "judge_table.md").read_text())
    print(f"wrote {args.out}/judge_table.md, judge_scores.json" + "".join(f", {p}" for p in summary["plots"]))
    return 0
