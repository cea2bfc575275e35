"""One thin module per subcommand (add_arguments + main), and the arguments the recipe-driven ones share."""

from __future__ import annotations

import argparse


def add_recipe_arguments(parser: argparse.ArgumentParser, shards: bool = True) -> None:
    """The arguments every recipe-driven command shares."""
    parser.add_argument("recipe", help="YAML recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set seed=1 --set translator.llm.batch_size=8 (repeatable)")
    if shards:
        parser.add_argument("--shard", default=None, metavar="I/N",
                            help="do only shards j with j %% N == I (e.g. a Slurm array task: $SLURM_ARRAY_TASK_ID/$N)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs stay readable)")
    parser.add_argument("--retry-quarantined", action="store_true",
                        help="retry the records quarantined after max_attempts transient failures (e.g. once a server "
                             "is back); finished work is reused from the cache")
