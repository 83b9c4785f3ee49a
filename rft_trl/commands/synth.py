"""`rft-trl synth --out DIR`: write a tiny local model and synthetic agent data to try rft-trl with.

The example configs in plugin_configs/ (`rft-trl examples` writes them) point at `.rft-tiny/`;
nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=".rft-tiny", help="Output folder (default: .rft-tiny).")
    parser.add_argument("--train", type=int, default=200, help="Training samples (default: 200).")
    parser.add_argument("--test", type=int, default=50, help="Held-out samples (default: 50).")
    parser.add_argument("--family", default="mixed", choices=["react", "json", "mixed"])
    parser.add_argument(
        "--form",
        default="messages",
        choices=["messages", "prompt_completion"],
        help="Conversational `messages` (assistant-only loss) or `prompt`/`completion` rows.",
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"rft-trl synth: --out {out} is a file; give a folder.", file=sys.stderr)
        return 2
    if args.train < 1 or args.test < 0:
        print("rft-trl synth: --train must be >= 1 and --test >= 0.", file=sys.stderr)
        return 2

    from rft_trl.synthetic import make_splits, save_tiny_checkpoint

    model_dir = save_tiny_checkpoint(out / "model")
    splits = make_splits(args.train, args.test, form=args.form, family=args.family, seed=args.seed)
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        if len(split):
            split.to_json(str(data_dir / f"{name}.jsonl"), lines=True)
    print(f"model: {model_dir}")
    print(f"data:  {data_dir} ({args.train} train, {args.test} test, {args.family}, {args.form})")
    return 0
