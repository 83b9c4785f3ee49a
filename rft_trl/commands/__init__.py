"""Subcommands of the `rft-trl` CLI: each module has `add_arguments(parser)` and `run(args)`."""
