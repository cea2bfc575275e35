"""`mlift report RESULTS...`: comparison tables (Markdown, CSV, LaTeX), bar charts, an HTML page, optionally W&B."""

from __future__ import annotations

import argparse
from pathlib import Path

REFERENCES = Path(__file__).resolve().parents[2] / "results" / "references.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="[LABEL[@SEED]=]EVAL_DIR",
                        help="output dirs of `mlift eval`, named by training dataset (and seed)")
    parser.add_argument("--out", required=True, help="where the tables, plots and index.html go (e.g. results/core)")
    parser.add_argument("--baseline", help="label that deltas are computed against (absolute and relative %%)")
    parser.add_argument("--metric", action="append", default=[], metavar="FAMILY=M1,M2",
                        help="metrics per task family (default: xlsum=rougeL flores=chrf++,spbleu mmlu=acc)")
    parser.add_argument("--references", default=str(REFERENCES), help="published figures to show beside ours")
    parser.add_argument("--wandb-project", help="also log the tables to W&B (WANDB_MODE=offline works)")
    parser.add_argument("--wandb-group", help="W&B group, e.g. the experiment / sweep name")
    parser.add_argument("--note", help="a paragraph shown under the title (e.g. the scale the numbers come from)")


def main(args: argparse.Namespace) -> int:
    from mlift.commands.argcheck import check_baseline, check_out, parse_metrics, resolve_results, table_metrics
    from mlift.report.tables import DEFAULT_METRICS, make_report

    # before anything is written: a run given twice, or a metric the tables do not have, would be dropped silently
    runs = resolve_results(args.results, ("table.json", "eval"), "manifest.json", ("label",), "train_seed")
    metrics = parse_metrics(args.metric, DEFAULT_METRICS, table_metrics([path for _, _, path in runs]))
    check_baseline(args.baseline, [label for label, _, _ in runs])
    check_out(args.out)
    summary = make_report(args.results, args.out, args.baseline, args.references, metrics, args.wandb_project,
                          args.wandb_group, args.note)
    print(Path(args.out, "table.md").read_text())
    print(f"wrote {args.out}/table.md, table.csv, table.tex, index.html and {len(summary['plots'])} plot(s)")
    return 0
