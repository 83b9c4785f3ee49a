"""Evidence: does RFT beat SFT? The demo pipeline across seeds, with label and loss ablations.

    python benchmarks/evidence.py run --seeds 0 1 2 3 4 --results benchmarks/results/evidence.jsonl
    python benchmarks/evidence.py summary --results benchmarks/results/evidence.jsonl
    python benchmarks/evidence.py thresholds --seeds 0 1 2 3 4   # SHAD labels at other thresholds
    python benchmarks/evidence.py errors --seeds 0 1 2           # which tokens SHAD labels wrong
    python benchmarks/evidence.py weights --seeds 0 1 2 3 4      # loss weight per token category
    python benchmarks/evidence.py shuffles --seeds 0 1 2         # SHAD over several shuffle-tunes

`--base-steps N` pretrains the base longer than the demo does (the demo's 600 steps fit its
10-minute budget but leave the base unable to copy argument values; docs/demo.md), built once and
cached. `--steps N` changes every variant's LoRA budget (for budget studies; write those rows to
their own results file). `--base-forms ...` picks the call forms of the base's pretraining text
(add `labelled keyed` for a base that has seen tool names in named slots; docs/benchmarks.md §2).
`--base-hidden N`, `--base-layers N` and `--base-lr X` size the base and set its pretraining
learning rate (the bigger-base question: does SHAD label better on a base with more parameters?
docs/benchmarks.md §2); `--base-batch N` its pretraining batch, `--base-seed N` its pretraining
seed (base-to-base variation). `--tools`/`--calls` set the corpus shape, and `--spoken-values`
has the requests say dates, times and small numbers in words, so calls must rewrite them (the
held-out prompts that need a rewrite are then scored apart); `--base-spoken-rate X` pretrains the
base with that share of its requests said that way, so it has seen the mapping. `--shad-lr X` sets
SHAD's shuffle-tune learning rate (the RFT variants' labels). `--device cuda`
runs everything on one GPU (fp32; a CUDA-built base is cached apart from the CPU one);
docs/benchmarks.md says which figures came from a GPU (stops 21-24) and which from `--device cpu`
(all others).

`run` is resumable: every (seed, variant) is one chunk whose result is appended to the JSONL file
as soon as it finishes, and chunks already in the file are skipped. The base model and SHAD's
labels are cached on disk (per seed), so an interrupted run loses at most one training run.
Run it in the background, e.g. `nohup nice python benchmarks/evidence.py run ... &`.

Variants (all from the same base, same LoRA budget, same data order):
    sft            TRL SFTTrainer, token-mean NLL
    rft            RFTTrainer, SHAD labels, tau = 3 (default)
    rft_tau1       tau = 1
    rft_tau10      tau = 10
    rft_margin     SHAD labels re-thresholded at LD > 0.005 nats instead of LD > 0 (no rescoring)
    alpha_ft       SHAD labels, fixed reasoning weight alpha = 0.75 (the paper's SHAD + alpha-FT)
    rft_gt         ground-truth labels (upper bound: perfect labels)
    rft_gt_format  ground truth with the format tokens (ReAct keywords, JSON keys and punctuation)
                   in the reasoning group: is rft_gt's format cost their lower weight?
    rft_random     random labels with SHAD's boilerplate fraction
    rft_regex      format-rule labels (the paper's Regex baseline)
    dft            TRL SFTTrainer with loss_type="dft" (Dynamic Fine-Tuning)
    sft_reseed     SFT again with another training seed (LoRA init, data order): its paired
                   difference from `sft` is the run-to-run noise every other difference carries
    sft_per_sample RFTTrainer with every response token in one group: SFT averaged per sample
                   instead of per token, RFT's sample weighting without its token weighting
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from rft_trl.synthetic.phrasing import EXTRA_STOCK_SENTENCES  # noqa: E402
from rft_trl.synthetic.pretrain_text import ALL_FORMS  # noqa: E402

if TYPE_CHECKING:
    from rft_trl.demo.data import Splits
    from rft_trl.demo.pipeline import DemoSettings
    from rft_trl.synthetic import Sample

# The demo base's head size (hidden 128, 4 heads); --base-hidden keeps it.
HEAD_DIM = 32

# Misses kept per run, family and kind (format / wrong call), to read what goes wrong afterwards.
FAILURES_KEPT = 5

VARIANTS: dict[str, dict[str, Any]] = {
    "sft": {"rft": False},
    "rft": {"rft": True, "labels": "shad", "options": {"rft_temperature": 3.0}},
    "rft_tau1": {"rft": True, "labels": "shad", "options": {"rft_temperature": 1.0}},
    "rft_tau10": {"rft": True, "labels": "shad", "options": {"rft_temperature": 10.0}},
    # SHAD's stored losses re-thresholded at a 0.005-nat margin (docs/benchmarks.md §2: tokens the
    # base already predicts drift up by about 0.001 nats under any adapter).
    "rft_margin": {"rft": True, "labels": "shad@0.005", "options": {"rft_temperature": 3.0}},
    "alpha_ft": {"rft": True, "labels": "shad", "options": {"rft_reasoning_weight": 0.75}},
    "rft_gt": {"rft": True, "labels": "gt", "options": {"rft_temperature": 3.0}},
    "rft_gt_format": {"rft": True, "labels": "gt+format", "options": {"rft_temperature": 3.0}},
    "rft_random": {"rft": True, "labels": "random", "options": {"rft_temperature": 3.0}},
    "rft_regex": {"rft": True, "labels": "regex", "options": {"rft_temperature": 3.0}},
    "dft": {"rft": False, "loss_type": "dft"},
    "sft_reseed": {"rft": False, "train_seed_offset": 1},
    # RFT's loss with one group per sample: SFT averaged per sample rather than per token.
    "sft_per_sample": {"rft": True, "labels": "one_group", "options": {"rft_temperature": 3.0}},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    # What a seed's context needs (base, data, SHAD): shared by `run` and `thresholds`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    common.add_argument("--n-test", type=int, default=1000, help="Held-out samples per seed.")
    common.add_argument(
        "--loss-samples", type=int, default=200, help="Held-out samples for the group losses."
    )
    common.add_argument(
        "--cache-dir", default=None, help="Base and SHAD cache (default: the demo's)."
    )
    common.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: a shared machine)."
    )
    common.add_argument(
        "--quick", action="store_true", help="The demo's quick preset (smoke test of this script)."
    )
    common.add_argument(
        "--fixed-base", action="store_true", help="Use the seed-0 base for every seed."
    )
    common.add_argument(
        "--base-seed",
        type=int,
        default=None,
        help="Use the base pretrained with this seed for every seed (--fixed-base is --base-seed "
        "0); for base-to-base variation at a fixed corpus.",
    )
    common.add_argument(
        "--steps",
        type=int,
        default=None,
        help="LoRA training steps of every variant (default: the demo's 150); for budget studies.",
    )
    common.add_argument(
        "--base-steps",
        type=int,
        default=None,
        help="Pretraining steps of the base (default: the demo's). The benchmark is not bound by the "
        "demo's 10-minute budget, so a longer-pretrained base (built once, cached) can be used.",
    )
    common.add_argument(
        "--base-forms",
        nargs="+",
        default=None,
        choices=ALL_FORMS,
        help="Call forms of the base's pretraining text (default: the demo's six classic forms). "
        "Add the slot forms (labelled, keyed) for a base that has seen tool names in named slots.",
    )
    common.add_argument(
        "--base-hidden",
        type=int,
        default=None,
        help="Hidden size of the base (default: the demo's 128). Heads and MLP scale with it as in "
        "the demo's shape: one head per 32 dimensions, MLP 3 x hidden. For the bigger-base question.",
    )
    common.add_argument(
        "--base-layers",
        type=int,
        default=None,
        help="Transformer layers of the base (default: the demo's 4).",
    )
    common.add_argument(
        "--base-lr",
        type=float,
        default=None,
        help="Peak pretraining learning rate of the base (default: the demo's 6e-3; a wider base "
        "may want less).",
    )
    common.add_argument(
        "--base-batch",
        type=int,
        default=None,
        help="Pretraining batch of the base in blocks (512 tokens; 128 with --quick) (default: the "
        "demo's 8); a GPU can afford more.",
    )
    common.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="Where the base is pretrained and SHAD and every variant run (default cpu, the "
        "documented figures). A CUDA-built base is cached apart from the CPU one.",
    )
    common.add_argument(
        "--stock-sentences",
        type=int,
        default=0,
        help="Extra input-independent sentences in every ReAct thought (default 0: the demo's "
        "corpus); a larger boilerplate share with the same tasks, sample for sample.",
    )
    common.add_argument(
        "--stock-fixed",
        action="store_true",
        help="Give every ReAct thought the same --stock-sentences sentences (the pool's first N, "
        "in order: nothing to choose) instead of drawing them per thought.",
    )
    common.add_argument(
        "--tools",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="Tools offered per prompt (default: the demo's 2 2). More tools make choosing one harder.",
    )
    common.add_argument(
        "--calls",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="Calls per prompt, at most one per offered tool (default: the demo's 1 3, so 1-2 with "
        "two tools). A JSON response makes every call at once, so more calls make exact match "
        "harder; a base that already solves the demo's task can be tested on a harder one.",
    )
    common.add_argument(
        "--base-spoken-rate",
        type=float,
        default=None,
        help="Share of the base's pretraining documents whose request says dates, times and small "
        "numbers in words while the calls write them in their own form (default: the demo's 0): a "
        "base that has seen the mapping --spoken-values asks of a response.",
    )
    common.add_argument(
        "--spoken-values",
        action="store_true",
        help="State dates, times and whole numbers up to twenty in words in the requests ('March 7, "
        "2025', '3:30 pm', 'seven'), so a call must rewrite them, not copy them: a mapping the base "
        "has not seen in pretraining (unless --base-spoken-rate), for a task a base that copies "
        "well cannot already solve.",
    )
    common.add_argument(
        "--shad-lr",
        type=float,
        default=None,
        help="SHAD's shuffle-tune learning rate (default: the demo's 1e-3). The RFT variants train "
        "on the labels of that tune; the SFT variants do not use SHAD.",
    )
    run = sub.add_parser("run", parents=[common], help="Run (or resume) the benchmark chunks.")
    run.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    run.add_argument("--results", default="benchmarks/results/evidence.jsonl")
    sweep = sub.add_parser(
        "thresholds",
        parents=[common],
        help="SHAD's label quality at other thresholds, from its cached losses (no training).",
    )
    sweep.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.0, 0.005, 0.01, 0.02, 0.05]
    )
    errors = sub.add_parser(
        "errors",
        parents=[common],
        help="SHAD's wrong labels per ground-truth category at one cut: their share of the "
        "response tokens, what precedes them, and the tokens behind them (no training).",
    )
    errors.add_argument("--threshold", type=float, default=0.005)
    errors.add_argument("--top", type=int, default=8, help="Tokens listed per category.")
    shuffles = sub.add_parser(
        "shuffles",
        parents=[common],
        help="SHAD with several shuffle-tunes per seed (other subsets, derangements and adapter "
        "seeds): how much LD moves between them, and whether averaging them labels better.",
    )
    shuffles.add_argument(
        "--shuffles",
        type=int,
        default=5,
        help="Shuffle-tunes per seed (default 5); the first is the seed's own, cached SHAD run.",
    )
    sub.add_parser(
        "weights",
        parents=[common],
        help="Share of the training loss's weight per ground-truth category under each variant's "
        "labels (no training).",
    )
    summary = sub.add_parser(
        "summary", help="Print mean +- std and paired differences vs SFT as Markdown."
    )
    summary.add_argument("--results", default="benchmarks/results/evidence.jsonl")
    args = parser.parse_args(argv)
    for name in ("base_steps", "steps", "base_layers", "base_batch", "shuffles"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} {value}: pass a number >= 1")
    base_lr = getattr(args, "base_lr", None)
    if base_lr is not None and not 0 < base_lr < 1:
        parser.error(f"--base-lr {base_lr}: pass a learning rate in (0, 1), e.g. 3e-3")
    shad_lr = getattr(args, "shad_lr", None)
    if shad_lr is not None and not 0 < shad_lr < 1:
        parser.error(f"--shad-lr {shad_lr}: pass a learning rate in (0, 1), e.g. 3e-3")
    spoken_rate = getattr(args, "base_spoken_rate", None)
    if spoken_rate is not None and not 0 <= spoken_rate <= 1:
        parser.error(f"--base-spoken-rate {spoken_rate}: pass a share in [0, 1], e.g. 0.3")
    hidden = getattr(args, "base_hidden", None)
    if hidden is not None and (hidden < HEAD_DIM or hidden % HEAD_DIM):
        parser.error(
            f"--base-hidden {hidden}: pass a multiple of {HEAD_DIM} (one attention head per "
            f"{HEAD_DIM} dimensions), e.g. 128, 192 or 256"
        )
    stock = getattr(args, "stock_sentences", 0)
    if not 0 <= stock <= len(EXTRA_STOCK_SENTENCES):
        parser.error(
            f"--stock-sentences {stock}: pass a number in [0, {len(EXTRA_STOCK_SENTENCES)}] "
            "(the size of the extra stock-sentence pool)"
        )
    if getattr(args, "fixed_base", False) and getattr(args, "base_seed", None) not in (None, 0):
        parser.error(
            f"--fixed-base uses the seed-0 base and --base-seed {args.base_seed} another: pass one"
        )
    if getattr(args, "stock_fixed", False) and stock == 0:
        parser.error("--stock-fixed has no sentences to fix: pass --stock-sentences N (N >= 1)")
    if getattr(args, "tools", None) is not None or getattr(args, "calls", None) is not None:
        from rft_trl.synthetic import default_world
        from rft_trl.synthetic.corpus import CorpusSettings

        shape = corpus_shape(seed_settings(0, args))
        (min_tools, max_tools), (min_calls, max_calls) = shape["tools"], shape["calls"]
        given = (
            f"--tools {min_tools} {max_tools} --calls {min_calls} {max_calls} (the demo's values "
            "where not given)"
        )
        try:
            CorpusSettings(
                min_tools=min_tools, max_tools=max_tools, min_calls=min_calls, max_calls=max_calls
            ).validate(default_world())
        except ValueError as error:
            parser.error(f"{given}: {_flag_names(str(error))}")
        if args.calls is not None and max_calls > max_tools:
            # the generator would cap the calls at the tools offered without a word
            parser.error(
                f"{given}: a prompt makes at most one call per offered tool; pass --calls MAX "
                f"<= --tools MAX ({max_tools})"
            )
    if getattr(args, "device", "cpu") != "cpu":
        from rft_trl.demo.pipeline import DemoError, check_device

        try:
            check_device(args.device)
        except DemoError as error:
            parser.error(str(error))
    return args


# ------------------------------------------------------------------------------------------ running


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file, none if it does not exist (a torn last line is ignored)."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def done_chunks(path: Path) -> set[tuple[int, str]]:
    """(seed, variant) pairs already in the results file."""
    return {(row["seed"], row["variant"]) for row in read_rows(path) if row.get("kind") == "run"}


def _flag_names(message: str) -> str:
    """A corpus-shape error with the corpus' argument names written as this script's flags."""
    for name, flag in [
        ("min_tools", "--tools MIN"),
        ("max_tools", "--tools MAX"),
        ("min_calls", "--calls MIN"),
        ("max_calls", "--calls MAX"),
    ]:
        message = message.replace(name, flag)
    return message


def corpus_shape(settings: DemoSettings) -> dict[str, list[int]]:
    """Tools offered and calls made per prompt, [min, max] each, as a seed record stores them."""
    return {
        "tools": [settings.min_tools, settings.max_tools],
        "calls": [settings.min_calls, settings.max_calls],
    }


def setup_of(settings: DemoSettings) -> dict[str, Any]:
    """What a seed's rows depend on besides the seed and variant: its base and corpus, and the budget."""
    from rft_trl.demo.base_model import base_path

    return {
        "base": base_path(settings.base, settings.cache_dir, settings.device).name,
        # through JSON, as a seed record stores it (tuples become lists)
        "base_recipe": json.loads(json.dumps(asdict(settings.base))),
        "device": settings.device,
        "n_test": settings.n_test,
        "stock_sentences": settings.stock_sentences,
        "stock_fixed": settings.stock_fixed,
        "spoken_values": settings.spoken_values,
        "corpus": corpus_shape(settings),
        "steps": settings.budget.steps,
        "shad_learning_rate": settings.shad_learning_rate,
    }


def recorded_setup(row: dict[str, Any]) -> dict[str, Any]:
    """`setup_of` as a seed record wrote it, for the keys the record has. The recipe, not the base's
    fingerprint, is compared: a fingerprint also changes with the text generators' code, and earlier
    records hold the same weights under an earlier one. A recipe field an older record lacks had its
    default; a record without a recipe is compared by its base's name; one without a device ran on
    the CPU, one without a corpus shape on its preset's (the demo's since 7d02819; before it the
    full demo offered up to 4 tools), one without stock sentences or spoken values had none, and
    one without a SHAD learning rate used its preset's."""
    from rft_trl.demo.base_model import BaseRecipe
    from rft_trl.demo.pipeline import settings_for

    settings = row.get("settings", {})
    preset = settings_for("unused", quick=bool(settings.get("quick", False)))
    recorded: dict[str, Any] = {
        "device": settings.get("device", "cpu"),
        "steps": settings.get("budget", {}).get("steps"),
        "corpus": settings.get("corpus", corpus_shape(preset)),
    }
    if "base_recipe" in row:
        defaults = json.loads(json.dumps(asdict(BaseRecipe())))
        recorded["base_recipe"] = {**defaults, **row["base_recipe"]}
    else:
        recorded["base"] = row.get("base")
    recorded["n_test"] = settings.get("n_test")
    for key, default in (
        ("stock_sentences", 0),
        ("stock_fixed", False),
        ("spoken_values", False),
        ("shad_learning_rate", preset.shad_learning_rate),
    ):
        recorded[key] = settings.get(key, default)  # added later: older records had the default
    return {k: v for k, v in recorded.items() if v is not None}


def check_resumable(path: Path, seeds: list[int], args: argparse.Namespace) -> str | None:
    """Why `run` must not resume into `path` with `args` (None when it may): a seed already recorded
    there with another base, corpus or budget would have its done chunks skipped and new ones mixed in."""
    records = [row for row in read_rows(path) if row.get("kind") == "seed" and row["seed"] in seeds]
    setups = {
        seed: setup_of(seed_settings(seed, args)) for seed in {row["seed"] for row in records}
    }
    for row in records:
        expected = setups[row["seed"]]
        recorded = recorded_setup(row)
        differ = {k: (v, expected[k]) for k, v in recorded.items() if expected[k] != v}
        if "base_recipe" in differ:
            old, new = differ.pop("base_recipe")
            for field in sorted(set(old) | set(new)):
                if old.get(field) != new.get(field):
                    differ[f"base {field}"] = (old.get(field), new.get(field))
        if differ:
            detail = ", ".join(f"{k} {old} there, {new} now" for k, (old, new) in differ.items())
            return (
                f"--results {path} already holds seed {row['seed']} from another setup ({detail}). "
                "Fix: pass a new --results file for these options, or the options that made it."
            )
    return None


def append(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (so a crash never loses a finished chunk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(row, default=float) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def seed_settings(seed: int, args: argparse.Namespace) -> DemoSettings:
    """The demo's settings for `seed`, with the base, budget and test-set options of `args` applied."""
    from rft_trl.demo.pipeline import settings_for

    settings = settings_for(
        "unused", seed=seed, quick=args.quick, cache_dir=args.cache_dir, progress=False
    )
    base: dict[str, Any] = {} if args.fixed_base else {"seed": seed}
    if args.base_seed is not None:
        base["seed"] = args.base_seed
    if args.base_steps is not None:
        base["pretrain_steps"] = args.base_steps
    if args.base_forms is not None:
        base["call_forms"] = tuple(args.base_forms)
    if args.base_hidden is not None:
        base["hidden_size"] = args.base_hidden
        base["num_attention_heads"] = args.base_hidden // HEAD_DIM
        base["intermediate_size"] = 3 * args.base_hidden
    if args.base_layers is not None:
        base["num_hidden_layers"] = args.base_layers
    if args.base_lr is not None:
        base["learning_rate"] = args.base_lr
    if args.base_spoken_rate is not None:
        base["spoken_rate"] = args.base_spoken_rate
    if args.base_batch is not None:
        base["batch_size"] = args.base_batch
    budget = settings.budget if args.steps is None else replace(settings.budget, steps=args.steps)
    corpus: dict[str, int] = {}
    if args.tools is not None:
        corpus["min_tools"], corpus["max_tools"] = args.tools
    if args.calls is not None:
        corpus["min_calls"], corpus["max_calls"] = args.calls
    return replace(
        settings,
        base=replace(settings.base, **base),
        budget=budget,
        n_test=args.n_test,
        stock_sentences=args.stock_sentences,
        stock_fixed=args.stock_fixed,
        spoken_values=args.spoken_values,
        shad_learning_rate=settings.shad_learning_rate if args.shad_lr is None else args.shad_lr,
        device=args.device,
        **corpus,
    )


def rows_at_the_cut(splits: Splits, max_length: int) -> int:
    """Training and held-out rows as long as the tokenizing cut: their response may be cut short."""
    return sum(
        len(ids) >= max_length for data in (splits.train, splits.test) for ids in data["input_ids"]
    )


class SeedContext:
    """Everything the variants of one seed share: base, data, SHAD labels and label quality."""

    def __init__(self, seed: int, args: argparse.Namespace) -> None:
        from rft_trl.demo.base_model import get_base
        from rft_trl.demo.metrics import pad_batches
        from rft_trl.demo.pipeline import demo_data, run_shad, shad_metrics

        settings = seed_settings(seed, args)
        self.settings = settings
        self.base = get_base(
            settings.base, settings.cache_dir, progress=False, device=settings.device
        )
        model, self.tokenizer = self.base.load()
        self.splits = demo_data(self.tokenizer, settings)
        cut = rows_at_the_cut(self.splits, settings.max_length)
        if cut:
            print(
                f"warning: seed {seed}: {cut} of {len(self.splits.train) + len(self.splits.test)} "
                f"rows reach the {settings.max_length}-token cut and lose the end of their "
                "response (long prompts: many tools offered, or stock sentences); pass a smaller "
                "--tools MAX or --stock-sentences",
                file=sys.stderr,
            )
        started = time.perf_counter()
        shad = run_shad(model, self.tokenizer, self.splits, settings)
        self.shad_seconds = time.perf_counter() - started
        self.labelled = shad.dataset
        self.label_figures, _ = shad_metrics(self.labelled, settings.shad_threshold)
        self.probe = shad.report.probe.share if shad.report.probe else None
        del model
        rows = self.splits.test.select(range(min(args.loss_samples, len(self.splits.test))))
        self.loss_batches = pad_batches(
            [
                {"input_ids": i, "labels": lab, "gt_class": g, "gt_category": c}
                for i, lab, g, c in zip(
                    rows["input_ids"],
                    rows["labels"],
                    rows["gt_class"],
                    rows["gt_category"],
                    strict=True,
                )
            ],
            self.tokenizer.pad_token_id,
        )
        self.curve_batches = self.loss_batches[: max(1, settings.curve_samples // 8)]
        self.max_new_tokens = (
            max(
                len(self.tokenizer(s.first_response)["input_ids"]) for s in self.splits.test_samples
            )
            + 16
        )

    def labels_for(self, kind: str, seed: int):
        """The training rows with `token_class` from SHAD (`shad`, or `shad@X`: re-thresholded at X),
        ground truth (`gt`, or `gt+C`: category C counted as reasoning), random or format rules;
        and their quality."""
        from rft_trl.demo import baselines
        from rft_trl.demo.metrics import flat, label_quality
        from rft_trl.shad.classify import reclassify
        from rft_trl.synthetic.alignment import token_texts

        data, classes = self.labelled, None
        if kind == "gt" or kind.startswith("gt+"):
            moved = kind.split("+")[1:]  # "gt+format": format tokens counted as reasoning
            classes = baselines.ground_truth_labels(data["gt_class"], data["gt_category"], moved)
        elif kind == "one_group":
            classes = baselines.one_group_labels(data["labels"])
        elif kind == "random":
            classes = baselines.random_labels(
                data["labels"], self.label_figures["boilerplate_fraction"], seed
            )
        elif kind == "regex":
            classes = baselines.regex_labels(
                data["input_ids"], data["labels"], token_texts(self.tokenizer)
            )
        elif kind.startswith("shad@"):
            data = reclassify(data, float(kind.removeprefix("shad@")))
        if classes is not None:
            data = data.remove_columns("token_class").add_column("token_class", classes)
        predicted, truth = flat(data["token_class"], np.int64), flat(data["gt_class"], np.int64)
        in_loss = truth != -100
        return data, label_quality(predicted[in_loss], truth[in_loss])


def run_chunk(ctx: SeedContext, seed: int, variant: str) -> dict[str, Any]:
    """Train and evaluate one variant of one seed."""
    from rft_trl.demo.data import training_columns
    from rft_trl.demo.generation import divergence_counts, failures, generate_responses
    from rft_trl.demo.metrics import group_losses
    from rft_trl.demo.training import train

    spec = VARIANTS[variant]
    data, quality = ctx.labels_for(spec.get("labels", "shad"), seed)
    started = time.perf_counter()
    budget = ctx.settings.budget
    budget = replace(budget, seed=budget.seed + spec.get("train_seed_offset", 0))
    run = train(
        variant,
        str(ctx.base.path),
        ctx.tokenizer,
        training_columns(data, with_classes=spec["rft"]),
        ctx.curve_batches,
        budget,
        rft=spec["rft"],
        loss_type=spec.get("loss_type", "nll"),
        rft_options=spec.get("options"),
        progress=False,
        device=ctx.settings.device,
    )
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    responses = generate_responses(
        run.model,
        ctx.tokenizer,
        ctx.splits.test_samples,
        max_new_tokens=ctx.max_new_tokens,
        progress=False,
    )
    evaluation = held_out_scores(ctx.settings, ctx.splits.test_samples, responses)
    losses = group_losses(run.model, ctx.loss_batches)
    return {
        "kind": "run",
        "seed": seed,
        "variant": variant,
        "exact_match": evaluation["exact_match"],
        "format_valid": evaluation["format_valid"],
        "evaluation": evaluation,
        "failures": failures(ctx.splits.test_samples, responses, FAILURES_KEPT),
        "miss_origin": divergence_counts(ctx.splits.test_samples, responses),
        "heldout_boilerplate_loss": losses["boilerplate_loss"],
        "heldout_reasoning_loss": losses["reasoning_loss"],
        "heldout_category_loss": losses["category_loss"],
        "label_quality": quality if spec["rft"] else None,
        "curve": run.curve,
        # RFT's logged w_r (mean over the samples of each logging window), [[step, w_r], ...]
        "reasoning_weight": [
            [h["step"], h["reasoning_weight"]] for h in run.log_history if "reasoning_weight" in h
        ],
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - started,
        "n_test": len(ctx.splits.test_samples),
    }


def held_out_scores(
    settings: DemoSettings, samples: list[Sample], responses: list[str]
) -> dict[str, float]:
    """The corpus evaluator's exact match and format validity, overall and per family; with
    `spoken_values` also apart on the prompts that must rewrite a value and on those that copy."""
    from rft_trl.demo.generation import score

    evaluation = score(samples, responses)
    if settings.spoken_values:
        evaluation.update(rewrite_scores(samples, responses))
    return evaluation


def rewrite_scores(samples: list[Sample], responses: list[str]) -> dict[str, float]:
    """Exact match and format validity on the held-out prompts whose calls must rewrite a value
    the request says in words (`rewrite/...`) and on those whose calls copy every value (`copy/...`)."""
    from rft_trl.synthetic import default_world
    from rft_trl.synthetic.corpus import rewrites_a_value
    from rft_trl.synthetic.evaluator import evaluate

    world = default_world()
    groups: dict[str, tuple[list[Sample], list[str]]] = {"rewrite": ([], []), "copy": ([], [])}
    for sample, text in zip(samples, responses, strict=True):
        group = groups["rewrite" if rewrites_a_value(sample, world) else "copy"]
        group[0].append(sample)
        group[1].append(text)
    scores: dict[str, float] = {}
    for name, (mine, texts) in groups.items():
        if mine:
            rates = evaluate(mine, texts)
            scores.update({f"{name}/{k}": rates[k] for k in ("exact_match", "format_valid", "n")})
    return scores


def _quiet(threads: int) -> None:
    """Set torch's threads and silence the progress bars and logs of every library below."""
    from datasets import disable_progress_bars
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    disable_progress_bars()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def run(args: argparse.Namespace) -> int:
    from rft_trl.demo.pipeline import versions

    _quiet(args.threads)
    path = Path(args.results)
    problem = check_resumable(path, args.seeds, args)
    if problem:
        print(f"evidence.py run: {problem}", file=sys.stderr)
        return 2
    done = done_chunks(path)
    for seed in args.seeds:
        todo = [v for v in args.variants if (seed, v) not in done]
        if not todo:
            continue
        started = time.perf_counter()
        ctx = SeedContext(seed, args)
        append(
            path,
            {
                "kind": "seed",
                "seed": seed,
                "shad": ctx.label_figures,
                "probe_share": ctx.probe,
                "shad_seconds": ctx.shad_seconds,
                "setup_seconds": time.perf_counter() - started,
                "base": ctx.base.path.name,
                "base_recipe": ctx.settings.base.__dict__,
                "settings": {
                    "n_train": ctx.settings.n_train,
                    "n_test": ctx.settings.n_test,
                    "stock_sentences": ctx.settings.stock_sentences,
                    "stock_fixed": ctx.settings.stock_fixed,
                    "spoken_values": ctx.settings.spoken_values,
                    "shad_learning_rate": ctx.settings.shad_learning_rate,
                    "corpus": corpus_shape(ctx.settings),
                    "budget": ctx.settings.budget.__dict__,
                    "quick": args.quick,
                    "device": ctx.settings.device,
                },
                "versions": versions(),
            },
        )
        for variant in todo:
            t0 = time.perf_counter()
            row = run_chunk(ctx, seed, variant)
            append(path, row)
            print(
                f"seed {seed} {variant:11s} exact {100 * row['exact_match']:5.1f}%  format {100 * row['format_valid']:5.1f}%  "
                f"loss b/r {row['heldout_boilerplate_loss']:.3f}/{row['heldout_reasoning_loss']:.3f}  "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return 0


# ------------------------------------------------------------------------------------------ thresholds


def _column_mean_std(rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std over seeds (the rows) of a figure table; std 0 for one seed."""
    return np.mean(rows, axis=0), np.std(rows, axis=0, ddof=1 if len(rows) > 1 else 0)


def thresholds(args: argparse.Namespace) -> int:
    """SHAD's labels re-thresholded from their stored losses, mean +- std over seeds, as Markdown.

    The drift share is the part of the response tokens the base already predicts (l_o below
    SATURATED_LOSS) that the threshold labels reasoning by an LD of at most DRIFT_NATS. The header
    gives LD's AUROC and the prompt-swap probe share; a second table gives SHAD's losses per
    ground-truth category at the first two thresholds.
    """
    from rft_trl.demo.metrics import label_quality, response_arrays
    from rft_trl.shad.health import DRIFT_NATS, SATURATED_LOSS

    _quiet(args.threads)
    per_cut: dict[float, list[list[float]]] = {cut: [] for cut in args.thresholds}
    true_boilerplate, auroc, probe, pooled = [], [], [], []
    for seed in args.seeds:
        ctx = SeedContext(seed, args)
        arrays = response_arrays(ctx.labelled)
        pooled.append(arrays)
        gold, ld, family = arrays["gt"], arrays["ld"], arrays["family"]
        saturated = arrays["l_o"] < SATURATED_LOSS
        true_boilerplate.append(1.0 - float(gold.mean()))
        probe.append(ctx.probe)
        for cut in args.thresholds:
            predicted = (ld > cut).astype(np.int64)
            quality = label_quality(predicted, gold, ld)
            right = predicted == gold
            per_cut[cut].append(
                [
                    quality["accuracy"],
                    float(right[family == "json"].mean()),
                    float(right[family == "react"].mean()),
                    quality["precision"],
                    quality["recall"],
                    quality["f1"],
                    quality["boilerplate_fraction"],
                    float(np.mean(saturated & (ld > cut) & (ld <= DRIFT_NATS))),
                ]
            )
        auroc.append(quality["auroc"])  # LD's AUROC: the same at every cut
        print(f"seed {seed}: labelled", file=sys.stderr, flush=True)
    lines = [
        f"SHAD labels re-thresholded, seeds {args.seeds} (mean +- std); true boilerplate fraction "
        f"{100 * np.mean(true_boilerplate):.1f}%; AUROC of LD {_mean_std(auroc, 3)}; prompt-swap "
        f"probe share {_mean_std([100 * p for p in probe if p is not None], 1)}%",
        "",
        "| threshold | accuracy | JSON | ReAct | precision | recall | F1 | labelled boilerplate | drift share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cut, rows in per_cut.items():
        m, sd = _column_mean_std(rows)
        lines.append(
            f"| {cut:g} | {100 * m[0]:.1f} +- {100 * sd[0]:.1f}% | {100 * m[1]:.1f}% | {100 * m[2]:.1f}% | "
            f"{m[3]:.3f} | {m[4]:.3f} | {m[5]:.3f} | {100 * m[6]:.1f}% | {100 * m[7]:.1f}% |"
        )
    lines += ["", *_category_ld_table(pooled, args.thresholds[:2])]
    print("\n".join(lines))
    return 0


def shuffle_seeds(seed: int, count: int) -> list[int]:
    """SHAD seeds of `count` shuffle-tunes for corpus seed `seed`: its own, then seed + 1000 k."""
    return [seed + 1000 * k for k in range(count)]


def mean_ld_figures(lds: np.ndarray, gold: np.ndarray) -> list[list[float]]:
    """For K = 1..len(lds): [accuracy at 0, at 0.005, AUROC] of the mean of the first K LDs."""
    from rft_trl.demo.metrics import label_quality

    out = []
    for k in range(1, len(lds) + 1):
        mean_ld = lds[:k].mean(axis=0)
        at_0 = label_quality((mean_ld > 0).astype(np.int64), gold, mean_ld)
        at_margin = label_quality((mean_ld > 0.005).astype(np.int64), gold)
        out.append([at_0["accuracy"], at_margin["accuracy"], at_0["auroc"]])
    return out


def shuffles(args: argparse.Namespace) -> int:
    """SHAD's labels from several shuffle-tunes per seed, and from the mean LD of the first K.

    Averaging helps only where LD's errors are noise of the one shuffle-tune (which subset, which
    derangement, the adapter's init); where they are systematic, the tunes agree and so does
    their mean. Prints LD's correlation between tunes and a table over K, as Markdown.
    """
    from rft_trl.demo.metrics import label_quality, response_arrays
    from rft_trl.demo.pipeline import run_shad

    _quiet(args.threads)
    by_k: dict[int, list[list[float]]] = {k: [] for k in range(1, args.shuffles + 1)}
    correlations: list[float] = []
    single: list[float] = []
    for seed in args.seeds:
        ctx = SeedContext(seed, args)
        first = response_arrays(ctx.labelled)
        gold, lds = first["gt"], [first["ld"]]
        model = ctx.base.load()[0] if args.shuffles > 1 else None
        for shuffle_seed in shuffle_seeds(seed, args.shuffles)[1:]:
            # SHAD's adapter leaves the model as it found it, so one copy serves every tune
            tuned = run_shad(
                model, ctx.tokenizer, ctx.splits, replace(ctx.settings, seed=shuffle_seed)
            )
            lds.append(response_arrays(tuned.dataset)["ld"])
            print(f"seed {seed}: shuffle-tune {shuffle_seed} done", file=sys.stderr, flush=True)
        stacked = np.stack(lds)
        correlations += [float(np.corrcoef(stacked[0], ld)[0, 1]) for ld in stacked[1:]]
        single += [label_quality((ld > 0).astype(np.int64), gold)["accuracy"] for ld in stacked]
        for k, figures in enumerate(mean_ld_figures(stacked, gold), start=1):
            by_k[k].append(figures)
    spread = (
        f"LD's correlation between the first shuffle-tune and the others "
        f"{min(correlations):.3f}-{max(correlations):.3f}; "
        if correlations
        else ""
    )
    lines = [
        f"SHAD with {args.shuffles} shuffle-tunes per seed, seeds {args.seeds} (mean +- std over "
        f"seeds); {spread}single-tune accuracy at 0 {100 * min(single):.1f}-"
        f"{100 * max(single):.1f}%",
        "",
        "| shuffle-tunes averaged (mean LD) | accuracy at 0 | accuracy at 0.005 | AUROC of LD |",
        "| --- | --- | --- | --- |",
    ]
    for k, rows in by_k.items():
        m, sd = _column_mean_std(rows)
        lines.append(
            f"| {k} | {100 * m[0]:.1f} +- {100 * sd[0]:.1f}% | {100 * m[1]:.1f} +- "
            f"{100 * sd[1]:.1f}% | {m[2]:.3f} +- {sd[2]:.3f} |"
        )
    print("\n".join(lines))
    return 0


def _category_ld_table(arrays: list[dict[str, np.ndarray]], cuts: list[float]) -> list[str]:
    """SHAD's losses per ground-truth category and family, pooled over seeds: mean l_o (base), mean
    LD and the share above each cut (labelled reasoning). Why a category is found or missed."""
    pooled = _pooled(arrays, ("category", "family", "gt", "l_o", "ld"))
    l_o, ld = pooled["l_o"], pooled["ld"]
    shares = " | ".join(f"share LD > {cut:g}" for cut in cuts)
    lines = [
        "SHAD's losses per ground-truth category (pooled over the seeds; l_o: base, LD = l_s - l_o)",
        "",
        f"| category | truth | family | tokens | mean l_o | mean LD | {shares} |",
        "| --- | --- | --- | --- | --- | --- |" + " --- |" * len(cuts),
    ]
    for name, family, truth, mask in _category_groups(pooled):
        above = " | ".join(f"{float(np.mean(ld[mask] > cut)):.2f}" for cut in cuts)
        lines.append(
            f"| {name} | {truth} | {family} | {int(mask.sum())} | {l_o[mask].mean():.2f} | "
            f"{ld[mask].mean():+.2f} | {above} |"
        )
    return lines


def _pooled(arrays: list[dict[str, np.ndarray]], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The seeds' per-token arrays of `keys`, concatenated."""
    return {key: np.concatenate([a[key] for a in arrays]) for key in keys}


def _category_groups(pooled: dict[str, np.ndarray]) -> Iterator[tuple[str, str, str, np.ndarray]]:
    """(category, family, truth, mask) for each ground-truth category and family present in
    `pooled`, in the report order; truth is the category's role, reasoning or boilerplate."""
    from rft_trl.demo.metrics import CATEGORY_ORDER
    from rft_trl.synthetic import CATEGORIES

    for name in CATEGORY_ORDER:
        for family in FAMILIES:
            mask = (pooled["category"] == CATEGORIES.index(name)) & (pooled["family"] == family)
            if mask.any():
                truth = "reasoning" if pooled["gt"][mask].mean() > 0.5 else "boilerplate"
                yield name, family, truth, mask


# ------------------------------------------------------------------------------------------ errors


def errors(args: argparse.Namespace) -> int:
    """SHAD's wrong labels at `--threshold`, pooled over seeds, per ground-truth category and family,
    as Markdown: how much of the response they are, how many follow a reasoning token directly (a
    closing quote or separator after a value, a piece inside a name), the base's median loss on
    them (near 0: tokens the base already predicts), and the tokens most often wrong."""
    from collections import Counter

    from rft_trl.demo.metrics import response_arrays

    _quiet(args.threads)
    keys = ("category", "family", "gt", "l_o", "ld", "input_ids", "after_reasoning")
    arrays, tokenizer = [], None
    for seed in args.seeds:
        ctx = SeedContext(seed, args)
        one = response_arrays(ctx.labelled)
        one["after_reasoning"] = _after_reasoning(ctx.labelled)
        arrays.append(one)
        tokenizer = ctx.tokenizer
        print(f"seed {seed}: labelled", file=sys.stderr, flush=True)
    pooled = _pooled(arrays, keys)
    wrong = (pooled["ld"] > args.threshold).astype(np.int64) != pooled["gt"]
    total = len(wrong)
    lines = [
        f"SHAD's wrong labels at LD > {args.threshold:g}, seeds {args.seeds}: "
        f"{100 * wrong.mean():.1f}% of {total} response tokens",
        "",
        "| category | truth | family | wrong / tokens | share of all response tokens | right after a "
        "reasoning token | median l_o | tokens most often wrong (wrong / all) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, family, truth, mask in _category_groups(pooled):
        bad = mask & wrong
        if not bad.any():
            continue
        counts = Counter(pooled["input_ids"][bad].tolist())
        every = Counter(pooled["input_ids"][mask].tolist())
        top = ", ".join(
            f"`{tokenizer.convert_ids_to_tokens(i)}` {n}/{every[i]}"
            for i, n in counts.most_common(args.top)
        )
        lines.append(
            f"| {name} | {truth} | {family} | {int(bad.sum())} / {int(mask.sum())} | "
            f"{100 * bad.sum() / total:.1f}% | {100 * pooled['after_reasoning'][bad].mean():.0f}% | "
            f"{np.median(pooled['l_o'][bad]):.3f} | {top} |"
        )
    print("\n".join(lines))
    return 0


def _after_reasoning(dataset: Any) -> np.ndarray:
    """Per response token (response_arrays' order): is the token right before it, in its row, a
    reasoning response token?"""
    from rft_trl.demo.metrics import flat
    from rft_trl.synthetic import IGNORE_INDEX, REASONING

    rows = dataset["labels"]  # read the column once
    in_loss = flat(rows, np.int64) != IGNORE_INDEX
    reasoning = in_loss & (flat(dataset["gt_class"], np.int64) == REASONING)
    before = np.concatenate([[False], reasoning[:-1]])
    row_starts = np.cumsum([0, *map(len, rows)])[:-1]
    before[row_starts] = False  # nothing comes before a row's first token
    return before[in_loss]


# ------------------------------------------------------------------------------------------ weights

# The variants whose loss weights differ: the tau variants share `rft`'s limit, `sft_reseed` is
# `sft`, and DFT's weights are the model's probabilities (not a function of the labels).
WEIGHT_VARIANTS = (
    "sft",
    "sft_per_sample",
    "rft",
    "rft_margin",
    "alpha_ft",
    "rft_gt",
    "rft_gt_format",
    "rft_regex",
    "rft_random",
)


def weights(args: argparse.Namespace) -> int:
    """Share of the training loss's weight per ground-truth category, per variant and family, mean
    over seeds, as Markdown. RFT at w_r = 0.5: after the first steps its logged w_r stays close to
    it (`summary`), so group sizes, not group losses, set a token's weight."""
    from rft_trl.demo.metrics import CATEGORY_ORDER, loss_weight_shares

    _quiet(args.threads)
    scopes = ("all", *FAMILIES)
    shares: dict[tuple[str, str], list[dict[str, float]]] = {}
    for seed in args.seeds:
        ctx = SeedContext(seed, args)
        families = ctx.labelled["family"]  # relabelling keeps the rows and their order
        rows_of = {
            scope: [i for i, f in enumerate(families) if scope in ("all", f)] for scope in scopes
        }
        categories = ctx.labelled["gt_category"]
        for variant in WEIGHT_VARIANTS:
            spec = VARIANTS[variant]
            if spec["rft"]:
                classes = ctx.labels_for(spec.get("labels", "shad"), seed)[0]["token_class"]
                w_r = spec.get("options", {}).get("rft_reasoning_weight", 0.5)
            else:  # SFT: every response token (the ground-truth classes mark which are in the loss)
                classes, w_r = ctx.labelled["gt_class"], None
            for scope, rows in rows_of.items():
                shares.setdefault((scope, variant), []).append(
                    loss_weight_shares(
                        [classes[i] for i in rows], [categories[i] for i in rows], w_r
                    )
                )
        print(f"seed {seed}: weighed", file=sys.stderr, flush=True)
    lines = [
        f"Share of the training loss's weight per ground-truth category (%, mean over seeds "
        f"{args.seeds}; RFT at w_r = 0.5, alpha_ft at its fixed 0.75; sft = token shares)",
    ]
    for scope in scopes:
        lines += [
            "",
            f"{scope}:",
            "",
            "| variant | " + " | ".join(CATEGORY_ORDER) + " |",
            "| --- |" + " --- |" * len(CATEGORY_ORDER),
        ]
        for variant in WEIGHT_VARIANTS:
            mine = shares[(scope, variant)]
            cells = [f"{100 * np.mean([m[c] for m in mine]):.1f}" for c in CATEGORY_ORDER]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------------------------------ summary


def _mean_std(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    mean = float(np.mean(values))
    std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not math.isnan(std) else f"{mean:.{digits}f}"


FAMILIES = ("json", "react")


def _paired_diffs(paired: list[tuple[dict, dict]], key: str, scale: float = 1.0) -> list[float]:
    """`scale * (a[key] - b[key])` for each (run, reference run) pair of the same seed."""
    return [scale * (a[key] - b[key]) for a, b in paired]


def _family_table(
    by: dict[tuple[int, str], dict[str, Any]],
    seeds: list[int],
    groups: tuple[str, ...] = FAMILIES,
    title: str = "By corpus family",
) -> list[str]:
    """Exact match and format validity per group of held-out prompts (by default the corpus
    families), with the paired exact-match difference."""
    lines = [
        "",
        f"{title} (held-out exact match and format valid %, mean ± std; Δ paired vs SFT):",
        "",
        "| variant | " + " | ".join(f"{f} exact | {f} Δ exact | {f} format" for f in groups) + " |",
        "| --- |" + " --- | --- | --- |" * len(groups),
    ]
    for variant in VARIANTS:
        mine = [(s, by[(s, variant)]) for s in seeds if (s, variant) in by]
        if not mine:
            continue
        cells = [variant]
        for family in groups:
            exact, fmt = f"{family}/exact_match", f"{family}/format_valid"
            rows = [r["evaluation"] for _, r in mine if exact in r.get("evaluation", {})]
            deltas = [
                100 * (r["evaluation"][exact] - by[(s, "sft")]["evaluation"][exact])
                for s, r in mine
                if (s, "sft") in by and exact in r.get("evaluation", {})
            ]
            cells += [
                _mean_std([100 * e[exact] for e in rows]),
                "-" if variant == "sft" else _mean_std(deltas),
                _mean_std([100 * e[fmt] for e in rows]),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _versus_rft_table(by: dict[tuple[int, str], dict[str, Any]], seeds: list[int]) -> list[str]:
    """Every other RFT variant paired against `rft` (SHAD labels, tau 3) on the same seed."""
    lines = [
        "",
        "RFT variants paired against `rft` (same seed; mean ± std of the difference):",
        "",
        "| variant | seeds | Δ exact match | seeds better | Δ format valid | Δ boilerplate loss "
        "| Δ reasoning loss |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, spec in VARIANTS.items():
        paired = [
            (by[(s, variant)], by[(s, "rft")])
            for s in seeds
            if (s, variant) in by and (s, "rft") in by
        ]
        if variant == "rft" or not spec["rft"] or not paired:
            continue
        d_em = _paired_diffs(paired, "exact_match", 100)
        lines.append(
            "| "
            + " | ".join(
                [
                    variant,
                    str(len(paired)),
                    _mean_std(d_em),
                    f"{sum(d > 0 for d in d_em)}/{len(d_em)}",
                    _mean_std(_paired_diffs(paired, "format_valid", 100)),
                    _mean_std(_paired_diffs(paired, "heldout_boilerplate_loss"), digits=3),
                    _mean_std(_paired_diffs(paired, "heldout_reasoning_loss"), digits=3),
                ]
            )
            + " |"
        )
    return lines


def _noise_table(by: dict[tuple[int, str], dict[str, Any]], seeds: list[int]) -> list[str]:
    """Each variant's exact match against SFT's own run-to-run noise, on seeds with both SFT runs
    (no table without such seeds).

    `sft_reseed - sft` is what re-running SFT with another training seed changes. The two SFT
    runs are independent replicates, so their mean has half the variance of one run; the
    standard error over seeds of a variant's difference from that mean is the yardstick.
    """
    both = [s for s in seeds if (s, "sft") in by and (s, "sft_reseed") in by]
    if not both:
        return []

    def em(seed: int, variant: str) -> float:
        return 100 * by[(seed, variant)]["exact_match"]

    noise = [em(s, "sft_reseed") - em(s, "sft") for s in both]
    lines = [
        "",
        f"Against SFT's run-to-run noise (exact match, points; seeds with both SFT runs: {both}). "
        f"`sft_reseed` - `sft`: {_mean_std(noise)}.",
        "",
        "| variant | seeds | Δ vs sft | Δ vs sft_reseed | Δ vs mean of both | standard error "
        "| mean / SE | seeds above both |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant in VARIANTS:
        mine = [s for s in both if (s, variant) in by]
        if variant in ("sft", "sft_reseed") or not mine:
            continue
        vs_sft = [em(s, variant) - em(s, "sft") for s in mine]
        vs_reseed = [em(s, variant) - em(s, "sft_reseed") for s in mine]
        vs_both = [(a + b) / 2 for a, b in zip(vs_sft, vs_reseed, strict=True)]
        se = float(np.std(vs_both, ddof=1)) / math.sqrt(len(mine)) if len(mine) > 1 else math.nan
        ratio = float(np.mean(vs_both)) / se if se > 0 else math.nan
        above = sum(em(s, variant) > max(em(s, "sft"), em(s, "sft_reseed")) for s in mine)
        cells = [variant, str(len(mine)), _mean_std(vs_sft), _mean_std(vs_reseed)]
        cells += [_mean_std(vs_both), "-" if math.isnan(se) else f"{se:.2f}"]
        cells += ["-" if math.isnan(ratio) else f"{ratio:.1f}", f"{above}/{len(mine)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _recorded(
    by: dict[tuple[int, str], dict[str, Any]], seeds: list[int], field: str
) -> Iterator[tuple[str, list[Any]]]:
    """(variant, its runs' `field` on `seeds`) for each variant with a run that recorded it."""
    for variant in VARIANTS:
        mine = [by[(s, variant)][field] for s in seeds if field in by.get((s, variant), {})]
        if mine:
            yield variant, mine


def _seeds_recording(
    by: dict[tuple[int, str], dict[str, Any]], seeds: list[int], field: str
) -> list[int]:
    """The seeds whose SFT run recorded `field` (older rows lack it), so that the variants compared
    in a table share their seeds; all seeds that have it when no SFT run does."""
    with_sft = [s for s in seeds if field in by.get((s, "sft"), {})]
    return with_sft or [s for s in seeds if any(field in r for k, r in by.items() if k[0] == s)]


def _miss_origin_table(by: dict[tuple[int, str], dict[str, Any]], seeds: list[int]) -> list[str]:
    """Where the misses begin: the ground-truth category of the first character that differs from
    the reference (ReAct: after the thought line), pooled over the runs that recorded it."""
    from rft_trl.synthetic.labels import REASONING_CATEGORIES

    seeds = _seeds_recording(by, seeds, "miss_origin")
    lines = [
        "",
        "Where the misses begin (ground-truth category of the first character that differs from "
        "the reference; ReAct from the line after the thought, whose wording is free; % of the "
        f"family's misses, pooled over seeds {seeds}; boilerplate includes stopping early or late):",
        "",
        "| variant | runs | json misses per run | json: boilerplate | json: reasoning "
        "| react misses per run | react: never ends the thought | react: boilerplate "
        "| react: reasoning |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, mine in _recorded(by, seeds, "miss_origin"):
        cells = [variant, str(len(mine))]
        for family in FAMILIES:
            pooled: dict[str, int] = {}
            for counts in mine:
                for key, by_category in counts.items():
                    if key.startswith(f"{family}/"):
                        for category, n in by_category.items():
                            pooled[category] = pooled.get(category, 0) + n
            total = sum(pooled.values())
            reasoning = sum(n for c, n in pooled.items() if c in REASONING_CATEGORIES)
            thought = pooled.get("thought", 0)
            shares = [total - reasoning - thought, reasoning]
            if family == "react":
                shares.insert(0, thought)
            cells.append(f"{total / len(mine):.0f}")
            cells += [f"{100 * n / total:.0f} %" if total else "-" for n in shares]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _category_loss_table(by: dict[tuple[int, str], dict[str, Any]], seeds: list[int]) -> list[str]:
    """Held-out loss per ground-truth category (mean over the seeds that recorded it)."""
    from rft_trl.demo.metrics import CATEGORY_ORDER

    seeds = _seeds_recording(by, seeds, "heldout_category_loss")
    lines = [
        "",
        f"Held-out loss per ground-truth category (nats per token, mean over seeds {seeds}; "
        "reasoning: tool_name, argument_value, purpose):",
        "",
        "| variant | runs | " + " | ".join(CATEGORY_ORDER) + " |",
        "| --- | --- |" + " --- |" * len(CATEGORY_ORDER),
    ]
    for variant, mine in _recorded(by, seeds, "heldout_category_loss"):
        cells = [variant, str(len(mine))]
        for category in CATEGORY_ORDER:
            values = [m[category] for m in mine if category in m]
            cells.append(f"{np.mean(values):.3f}" if values else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _reasoning_weight_table(
    by: dict[tuple[int, str], dict[str, Any]], seeds: list[int]
) -> list[str]:
    """RFT's logged reasoning weight w_r: in the first logging window, and its range after it."""
    lines = [
        "",
        "RFT's reasoning weight w_r as logged in training (mean over the samples of each logging "
        "window; a sample with one group counts its group's weight 1):",
        "",
        "| variant | runs | first window | later windows: mean | min | max |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant, spec in VARIANTS.items():
        options = spec.get("options", {})
        if spec.get("labels") == "one_group" or "rft_reasoning_weight" in options:
            continue  # w_r is 1 or fixed: nothing to read
        logs = [by[(s, variant)].get("reasoning_weight") for s in seeds if (s, variant) in by]
        logs = [log for log in logs if log]
        if not logs:
            continue
        first = [log[0][1] for log in logs]
        later = [w for log in logs for _, w in log[1:]] or [float("nan")]
        lines.append(
            f"| {variant} | {len(logs)} | {_mean_std(first, 3)} | {np.mean(later):.3f} | "
            f"{np.min(later):.3f} | {np.max(later):.3f} |"
        )
    return lines


def summary_markdown(rows: list[dict[str, Any]]) -> str:
    """Mean ± std over seeds and paired differences vs SFT (same seed), as Markdown tables."""
    from rft_trl.demo.pipeline import DemoSettings

    runs = [r for r in rows if r.get("kind") == "run"]
    # a resumed run appends its seed's row again: keep the latest per seed
    seeds_rows = list({r["seed"]: r for r in rows if r.get("kind") == "seed"}.values())
    by = {(r["seed"], r["variant"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    shapes: dict[str, list[int]] = {}
    shad_rates: dict[float, list[int]] = {}
    for row in seeds_rows:
        setup = recorded_setup(row)
        shape = setup["corpus"]  # older records: their preset's shape
        text = "tools {} to {}, calls {} to {}".format(*shape["tools"], *shape["calls"])
        if setup.get("spoken_values"):
            text += ", spoken values"
        shapes.setdefault(text, []).append(row["seed"])
        shad_rates.setdefault(setup["shad_learning_rate"], []).append(row["seed"])
    shape_line = "; ".join(f"{text} (seeds {sorted(s)})" for text, s in shapes.items())
    rate_line = "; ".join(f"{rate:g} (seeds {sorted(s)})" for rate, s in shad_rates.items())
    lines = [
        f"Seeds: {seeds}; held-out samples per seed: {sorted({r['n_test'] for r in runs})}.",
        *([f"Corpus shape per prompt: {shape_line}."] if shapes else []),
        *(
            [f"SHAD shuffle-tune learning rate (the RFT variants' labels): {rate_line}."]
            if set(shad_rates) - {DemoSettings.shad_learning_rate}
            else []
        ),
        "",
        "| variant | exact match % | Δ EM vs SFT (paired) | seeds better | format valid % | Δ format vs SFT | "
        "held-out loss, boilerplate | held-out loss, reasoning | Δ reasoning loss vs SFT | label accuracy | label F1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant in VARIANTS:
        mine = [by[(s, variant)] for s in seeds if (s, variant) in by]
        if not mine:
            continue
        paired = [
            (by[(r["seed"], variant)], by[(r["seed"], "sft")])
            for r in mine
            if (r["seed"], "sft") in by
        ]
        d_em = _paired_diffs(paired, "exact_match", 100)
        d_fv = _paired_diffs(paired, "format_valid", 100)
        d_rl = _paired_diffs(paired, "heldout_reasoning_loss")
        better = sum(d > 0 for d in d_em)
        quality = [r["label_quality"] for r in mine if r.get("label_quality")]
        lines.append(
            "| "
            + " | ".join(
                [
                    variant,
                    _mean_std([100 * r["exact_match"] for r in mine]),
                    "-" if variant == "sft" else _mean_std(d_em),
                    "-" if variant == "sft" else f"{better}/{len(d_em)}",
                    _mean_std([100 * r["format_valid"] for r in mine]),
                    "-" if variant == "sft" else _mean_std(d_fv),
                    _mean_std([r["heldout_boilerplate_loss"] for r in mine]),
                    _mean_std([r["heldout_reasoning_loss"] for r in mine]),
                    "-" if variant == "sft" else _mean_std(d_rl, digits=3),
                    _mean_std([100 * q["accuracy"] for q in quality]) if quality else "-",
                    _mean_std([q["f1"] for q in quality]) if quality else "-",
                ]
            )
            + " |"
        )
    lines += _family_table(by, seeds)
    if any("rewrite/exact_match" in r.get("evaluation", {}) for r in runs):
        lines += _family_table(
            by,
            seeds,
            ("rewrite", "copy"),
            "Spoken values: prompts whose calls rewrite a value the request says in words, and "
            "prompts whose calls copy every value",
        )
    lines += _noise_table(by, seeds)
    if any((s, "rft") in by for s in seeds):
        lines += _versus_rft_table(by, seeds)
    if any("heldout_category_loss" in r for r in runs):
        lines += _category_loss_table(by, seeds)
    if any("miss_origin" in r for r in runs):
        lines += _miss_origin_table(by, seeds)
    if any(r.get("reasoning_weight") for r in runs):
        lines += _reasoning_weight_table(by, seeds)
    if seeds_rows:
        lines += [
            "",
            "SHAD label quality per seed (training set, vs ground truth):",
            "",
            "| seed | token accuracy | JSON accuracy | ReAct accuracy | precision | recall | F1 | AUROC "
            "| labelled boilerplate | true boilerplate | probe share |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in sorted(seeds_rows, key=lambda r: r["seed"]):
            s = r["shad"]
            lines.append(
                f"| {r['seed']} | {100 * s['shad_token_accuracy']:.1f}% | {_family_accuracy(s, 'json')} | "
                f"{_family_accuracy(s, 'react')} | {s['shad_reasoning_precision']:.3f} | "
                f"{s['shad_reasoning_recall']:.3f} | {s['shad_reasoning_f1']:.3f} | {s['shad_auroc']:.3f} | "
                f"{100 * s['boilerplate_fraction']:.1f}% | {100 * s['true_boilerplate_fraction']:.1f}% | "
                f"{100 * (r['probe_share'] or 0):.1f}% |"
            )
    return "\n".join(lines)


def _family_accuracy(shad: dict[str, Any], family: str) -> str:
    figures = shad.get("shad_by_family", {}).get(family)
    return f"{100 * figures['accuracy']:.1f}%" if figures else "-"


def summary(args: argparse.Namespace) -> int:
    path = Path(args.results)
    if not path.exists():
        print(
            f"evidence: no results at {path}; run `python benchmarks/evidence.py run` first.",
            file=sys.stderr,
        )
        return 2
    print(summary_markdown(read_rows(path)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    commands = {
        "run": run,
        "thresholds": thresholds,
        "errors": errors,
        "weights": weights,
        "shuffles": shuffles,
        "summary": summary,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
