"""`rft-trl inspect LABELS [--samples N] [--html out.html] [--threshold X]`: view SHAD labels as coloured tokens."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from rft_trl.options import OPTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `rft-trl inspect`."""
    parser.add_argument(
        "labels",
        metavar="LABELS",
        help="A labels directory: written by `rft-trl shad`, or `<output_dir>/_shad_labels` of a "
        "training run.",
    )
    parser.add_argument(
        "--samples", type=int, default=3, metavar="N", help="How many samples to show (default 3)."
    )
    parser.add_argument(
        "--start", type=int, default=0, metavar="I", help="Index of the first sample shown."
    )
    parser.add_argument(
        "--split", default="train", help="Which labelled split to show (default train)."
    )
    parser.add_argument(
        "--html",
        metavar="OUT.html",
        help="Write a standalone HTML page instead of terminal output.",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        metavar="X",
        help="Re-threshold LD (no rescoring): LD <= X is boilerplate.",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="ANSI colours (auto: only on a terminal and without NO_COLOR).",
    )


def use_color(choice: str, stream) -> bool:
    """Whether to emit ANSI colours: `auto` means a tty, no NO_COLOR, and not TERM=dumb."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def run(args: argparse.Namespace) -> int:
    """Show or export the labels; expected errors print one paragraph and return 2."""
    try:
        return _run(args)
    except ValueError as error:  # ShadLabelsError and RFTConfigError are ValueErrors
        print(f"rft-trl inspect: error: {error}", file=sys.stderr)
        return 2


def _ground_truth(data, tokenizer):
    """Ground-truth classes per row if the labels carry them (or synthetic spans to derive them from)."""
    if "gt_class" in data.column_names:
        return data["gt_class"]
    if "gt_spans" in data.column_names and tokenizer is not None:
        try:
            from rft_trl.synthetic import add_ground_truth_columns

            return add_ground_truth_columns(data, tokenizer)["gt_class"]
        except (ValueError, KeyError):
            return None
    return None


def _run(args: argparse.Namespace) -> int:
    from rft_trl.shad.classify import L_O, L_S, TOKEN_CLASS, reclassify
    from rft_trl.shad.labels_io import LabelsDir
    from rft_trl.shad.viewer import Row, agreement, render_html, render_terminal

    if args.samples < 1 or args.start < 0:
        raise ValueError("--samples must be >= 1 and --start >= 0.")
    if args.html and Path(args.html).is_dir():
        raise ValueError(
            f"--html {args.html} is a folder. Fix: give a file name, e.g. labels.html."
        )
    labels = LabelsDir(args.labels)
    data = labels.read(args.split)
    if args.threshold is not None:
        OPTIONS["shad_threshold"].validate(args.threshold)
        data = reclassify(data, args.threshold)
    threshold = (
        args.threshold if args.threshold is not None else labels.metadata.get("threshold", 0.0)
    )
    if args.start >= len(data):
        raise ValueError(f"--start {args.start} is past the last sample ({len(data) - 1}).")
    tokenizer = None
    if labels.tokenizer_path is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(labels.tokenizer_path))
    shown = data.select(range(args.start, min(len(data), args.start + args.samples)))
    truth_all = _ground_truth(data, tokenizer) if "gt_class" in data.column_names else None
    truth_shown = _ground_truth(shown, tokenizer)
    classes = np.concatenate([np.asarray(c) for c in data[TOKEN_CLASS]])
    response = int((classes != -100).sum())
    lines = [
        f"{args.labels} [{args.split}]: {len(data)} samples, {response} response tokens, "
        f"{100 * (classes == 0).sum() / max(1, response):.1f}% boilerplate at LD <= {threshold:g}"
    ]
    if truth_all is not None:
        lines.append(agreement(data[TOKEN_CLASS], truth_all).line())
    elif truth_shown is not None:
        lines.append("shown samples " + agreement(shown[TOKEN_CLASS], truth_shown).line())
    rows = [
        Row(
            index=args.start + i,
            input_ids=shown[i]["input_ids"],
            token_class=shown[i][TOKEN_CLASS],
            l_o=shown[i][L_O],
            l_s=shown[i][L_S],
            gt_class=truth_shown[i] if truth_shown is not None else None,
        )
        for i in range(len(shown))
    ]
    summary = "\n".join(lines)
    if args.html:
        page = render_html(
            rows, tokenizer, title=f"SHAD labels: {Path(args.labels).name}", summary=summary
        )
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(page, encoding="utf-8")
        print(summary)
        print(f"HTML written to {args.html}")
        return 0
    color = use_color(args.color, sys.stdout)
    print(summary)
    sys.stdout.write(render_terminal(rows, tokenizer, color))
    return 0
