"""`rft-trl demo [--out DIR] [--quick] [--seed N]`: the whole pipeline on the bundled synthetic agent data."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default="rft-demo",
        help="Folder for metrics.json and report.html (default: rft-demo/).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Tiny smoke run (under 2 minutes); its numbers mean nothing.",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the corpus, SHAD and training (default 0)."
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's choice, one per core).",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="Where the base model and SHAD labels are cached (default: $RFT_TRL_CACHE, else $XDG_CACHE_HOME/rft-trl or ~/.cache/rft-trl).",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="Where to pretrain the base and run SHAD, SFT and RFT: cpu (default; the documented "
        "figures) or cuda (one GPU, fp32).",
    )
    parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")


def _summary(metrics: dict, report: str) -> str:
    seconds = metrics["seconds"]
    lines = [
        "",
        "rft-trl demo: done in {:.0f} s ({})".format(
            seconds["total"], ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items() if k != "total")
        ),
        f"  SHAD labels vs ground truth: token accuracy {100 * metrics['shad_token_accuracy']:.1f}%, "
        f"reasoning F1 {metrics['shad_reasoning_f1']:.2f} (P {metrics['shad_reasoning_precision']:.2f}, "
        f"R {metrics['shad_reasoning_recall']:.2f}), AUROC {metrics['shad_auroc']:.2f}, "
        f"labelled boilerplate {100 * metrics['boilerplate_fraction']:.1f}% "
        f"(truth {100 * metrics['true_boilerplate_fraction']:.1f}%)",
        f"  held-out exact match:  SFT {100 * metrics['sft_exact_match']:.1f}%   RFT {100 * metrics['rft_exact_match']:.1f}%",
        f"  held-out format valid: SFT {100 * metrics['sft_format_valid']:.1f}%   RFT {100 * metrics['rft_format_valid']:.1f}%",
        f"  metrics: {os.path.join(os.path.dirname(report), 'metrics.json')}",
        f"  report:  {report}",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rft_trl.demo.pipeline import (
        REPORT_FILE,
        DemoError,
        check_device,
        check_out_dir,
        run_demo,
        settings_for,
    )

    # Every check before any work, and before `check_out_dir` creates the output folder.
    problem = None
    if importlib.util.find_spec("matplotlib") is None:  # the report's plots, in the last phase
        problem = 'report.html is plotted with matplotlib. Fix: pip install "rft-trl[demo]".'
    elif not 0 <= args.seed < 2**32:
        problem = f"--seed {args.seed} must be in [0, 2**32) (the range numpy and SHAD accept)."
    elif args.threads is not None and args.threads < 1:
        problem = f"--threads {args.threads} must be >= 1."
    elif args.cache_dir is not None and Path(args.cache_dir).expanduser().is_file():
        problem = (
            f"--cache-dir {args.cache_dir} is a file. Fix: pass a folder (created if missing)."
        )
    if problem:
        print(f"rft-trl demo: {problem}", file=sys.stderr)
        return 2
    try:
        check_device(args.device)
        out = check_out_dir(args.out)
    except DemoError as error:
        print(f"rft-trl demo: {error}", file=sys.stderr)
        return 2
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    settings = settings_for(
        out,
        seed=args.seed,
        quick=args.quick,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        device=args.device,
    )
    metrics = run_demo(settings)
    print(_summary(metrics, str((out / REPORT_FILE).resolve())))
    return 0
