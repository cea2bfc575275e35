"""Thin entry modules, one per `mlift` subcommand: `add_arguments(parser)` and `main(args) -> int`."""
