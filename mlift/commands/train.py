"""`mlift train RECIPE`: TRL SFT (LoRA or full) on a mix of datasets; the same recipe runs under
`accelerate launch -m mlift.train RECIPE` and, with --slurm, as a multi-node sbatch job. See mlift/train/sft.py."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mlift.train.sft import add_arguments as add

    add(parser)


def main(args: argparse.Namespace) -> int:
    from mlift.train.sft import run

    return run(args)
