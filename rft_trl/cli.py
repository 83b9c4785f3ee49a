"""`rft-trl` command line: one subcommand per module in `rft_trl.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from rft_trl import __version__

# name -> module in rft_trl.commands exposing `add_arguments(parser)` and `run(args) -> int`
COMMANDS = {
    "train": "Train with SHAD + RFT from a `trl sft`-style YAML config.",
    "shad": "Label a dataset's response tokens as boilerplate or reasoning (SHAD).",
    "inspect": "Show SHAD labels as coloured tokens (terminal or HTML).",
    "check-config": "Check an Axolotl or TRL YAML for settings training would refuse or silently "
    "ignore (exit 0 OK, 1 problems, 2 unreadable file).",
    "demo": "Run the whole pipeline on a bundled synthetic agent dataset and write a report.",
    "synth": "Write a tiny local model and synthetic agent data (for the example configs).",
    "examples": "Write the example configs (TRL, Axolotl, accelerate) to ./plugin_configs.",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="rft-trl",
        description="SHAD token labelling and reasoning-highlighted fine-tuning (RFT) for TRL and Axolotl.",
    )
    parser.add_argument("--version", action="version", version=f"rft-trl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = _command_module(name)
        if module is None:
            continue
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def _command_module(name: str):
    """The module implementing subcommand `name`, or None while it is not built yet."""
    module_name = f"rft_trl.commands.{name.replace('-', '_')}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise


def _quiet_known_noise() -> None:
    """Hide bitsandbytes' CPU notice about an optional hub kernel (it falls back by itself)."""
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
        lambda record: "kernels-community" not in record.getMessage()
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `rft-trl` console script."""
    _quiet_known_noise()
    parser = build_parser()
    # `train` takes `--key value` overrides of its YAML, as `trl sft` does; argparse leaves
    # them unrecognised, so they are collected here and refused for every other command.
    args, extra = parser.parse_known_args(argv)
    if hasattr(args, "overrides"):
        args.overrides = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
