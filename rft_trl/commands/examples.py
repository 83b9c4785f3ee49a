"""`rft-trl examples [--out DIR] [--force] [--list]`: write the bundled example configs.

The README's commands name `plugin_configs/...`; a user who installed rft-trl from a package
index has no checkout, so this writes the same files to `./plugin_configs` and the commands work
as written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rft_trl.example_configs import (
    ExampleTargetError,
    copy_example_configs,
    example_config_files,
    example_configs_dir,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `rft-trl examples`."""
    parser.add_argument(
        "--out",
        default="plugin_configs",
        metavar="DIR",
        help="Folder to write them to (default: plugin_configs, the path the README's commands "
        "and the configs themselves use to name each other).",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="Replace files in DIR that differ from the bundled ones.",
    )
    parser.add_argument(
        "--list", action="store_true", help="Only list the bundled files and where they are."
    )


def run(args: argparse.Namespace) -> int:
    try:
        files = example_config_files()
    except FileNotFoundError as error:  # the bundle itself is missing
        print(f"rft-trl examples: {error}", file=sys.stderr)
        return 2
    if args.list:
        print(f"bundled example configs in {example_configs_dir()}:")
        for rel in files:
            print(f"  {rel}")
        return 0
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"rft-trl examples: --out {out} is a file; give a folder.", file=sys.stderr)
        return 2
    try:
        written, unchanged = copy_example_configs(out, overwrite=args.force)
    except ExampleTargetError as error:
        print(f"rft-trl examples: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"rft-trl examples: cannot write to {out}: {error}. Fix: --out a writable folder.",
            file=sys.stderr,
        )
        return 2
    for rel in written:
        print(f"wrote {out / rel}")
    if unchanged:
        print(f"{len(unchanged)} file(s) already there and identical: left as they are")
    tiny = out / "trl" / "tiny_cpu.yaml"
    print(f"Try: rft-trl synth --out .rft-tiny && rft-trl train --config {tiny}")
    return 0
