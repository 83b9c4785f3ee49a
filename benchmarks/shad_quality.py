"""SHAD label quality on the synthetic agent corpus, against ground truth and beside baselines on the same tokens.

    python benchmarks/shad_quality.py --quick                   # CI smoke, < 1 minute on 2 CPU cores
    python benchmarks/shad_quality.py --base DIR --samples 800  # a real measurement with a competent base

The base is pluggable (`--base DIR`, any causal LM folder with its tokenizer; default: the tiny
random Llama of `rft_trl.synthetic`, which is NOT a competent base, see docs/demo.md).
`--pretrain-steps N` first pretrains the base on same-world text in other forms (the user request
followed by the call as `tool(arg=value)`, `params = {...}` or `Record -- arg: value`, never the
agent template), the regime the prototype study found best; `--save-base DIR` keeps the result.

Reported on the response tokens every method can score (the prompt-swap probe leaves out the few
tokens that re-truncation drops):
- SHAD at `--threshold`: precision/recall/F1 of the reasoning class, token accuracy, labelled-
  boilerplate fraction, AUROC of LD, per-category recall (each category's true role), span-first
  and inner reasoning tokens separately, and the time of each phase;
- baselines: all-reasoning; token rarity (-log frequency of the id among response tokens);
  base-loss-only (Rho-1-like: l_o); the prompt-swap probe (base loss rise under another sample's
  prompt; its rule is rise > ln 2). Rarity and base loss have no natural cut: they are thresholded
  at the true reasoning prevalence (an oracle-ish cut that flatters them), AUROC needs no cut.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset, disable_progress_bars  # noqa: E402

# The label-quality metrics are the demo's (one implementation for the demo, evidence and this).
from rft_trl.demo.metrics import (  # noqa: E402
    CATEGORY_ORDER,
    auroc,  # noqa: F401  (part of this module's interface, see tests)
    flat,
    per_category,
)
from rft_trl.demo.metrics import label_quality as classification  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="Small smoke run (< 1 minute on 2 CPU cores)."
    )
    parser.add_argument(
        "--base", help="Base model folder (with tokenizer). Default: the tiny random Llama."
    )
    parser.add_argument(
        "--pretrain-steps", type=int, default=0, help="Pretrain the base on same-world text first."
    )
    parser.add_argument("--save-base", help="Save the pretrained base here.")
    parser.add_argument(
        "--samples", type=int, default=400, help="Synthetic samples (both families, mixed)."
    )
    parser.add_argument("--max-length", type=int, default=768)
    parser.add_argument("--min-steps", type=int, default=50, help="shad_min_steps.")
    parser.add_argument("--sample-ratio", type=float, default=0.01, help="shad_sample_ratio.")
    parser.add_argument("--batch-size", type=int, default=8, help="Shuffle-tune per-device batch.")
    parser.add_argument("--lr", type=float, default=5e-4, help="Shuffle-tune learning rate.")
    parser.add_argument("--threshold", type=float, default=0.0, help="shad_threshold.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="Also write the figures as JSON here.")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.min_steps, args.batch_size, args.max_length = 48, 6, 4, 640
    return args


# --------------------------------------------------------------------------------------------- base


def load_base(args):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rft_trl.synthetic import build_tiny_checkpoint

    path = Path(args.base) if args.base else build_tiny_checkpoint()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    name = str(path) if args.base else f"tiny random Llama ({path.name})"
    return model, tokenizer, name


def other_form_text(sample, rng) -> str:
    """The sample's request, then its first call in a non-agent form (the prototype's best base regime)."""
    request = next(m["content"] for m in sample.messages if m["role"] == "user")
    call = sample.calls[0]
    form = rng.integers(3)
    if form == 0:
        rendered = (
            f"{call.name}(" + ", ".join(f"{k}={v!r}" for k, v in call.arguments.items()) + ")"
        )
    elif form == 1:
        rendered = f"{call.name}: params = {json.dumps(call.arguments)}"
    else:
        rendered = f"Record -- {call.name} -- " + "; ".join(
            f"{k}: {v}" for k, v in call.arguments.items()
        )
    return f"{request}\n{rendered}"


def pretrain(model, tokenizer, steps: int, seed: int) -> float:
    """Plain LM training on same-world text in other forms (full fine-tune of the base)."""
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from rft_trl.shad.batching import PadCollator
    from rft_trl.synthetic import generate_samples

    started = time.perf_counter()
    batch = 16
    rng = np.random.default_rng(seed)
    samples = generate_samples(steps * batch, "mixed", seed=seed + 1000, split="pretrain")
    texts = [other_form_text(s, rng) + (tokenizer.eos_token or "") for s in samples]
    ids = [tokenizer(t, add_special_tokens=True)["input_ids"] for t in texts]
    data = Dataset.from_dict({"input_ids": ids, "labels": ids})
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=batch,
            max_steps=steps,
            learning_rate=2e-3,
            lr_scheduler_type="cosine",
            warmup_steps=max(1, steps // 20),
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            use_cpu=not torch.cuda.is_available(),
            remove_unused_columns=False,
            disable_tqdm=True,
            seed=seed,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=data,
            data_collator=PadCollator(tokenizer.pad_token_id),
        )
        trainer.pop_callback(PrinterCallback)  # no metrics dict on stdout: the report is the output
        trainer.train()
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------- data


def build_corpus(tokenizer, n: int, seed: int, max_length: int) -> Dataset:
    """Tokenized multi-turn traces (assistant-only loss) with per-token ground truth."""
    from rft_trl.synthetic import (
        add_ground_truth_columns,
        generate_samples,
        to_messages_dataset,
        tokenize_example,
    )

    samples = generate_samples(n, "mixed", seed=seed, split="benchmark")
    data = to_messages_dataset(samples)
    tokenized = [
        tokenize_example(tokenizer, s, form="messages", max_length=max_length) for s in samples
    ]
    data = data.add_column("input_ids", [t["input_ids"] for t in tokenized])
    data = data.add_column("labels", [t["labels"] for t in tokenized])
    data = add_ground_truth_columns(data, tokenizer)
    keep = [i for i, labels in enumerate(data["labels"]) if any(x != -100 for x in labels)]
    return data.select(keep)


def probe_rise(
    model, data: Dataset, seed: int, max_length: int, pad_id: int, l_o: list[np.ndarray]
) -> list[np.ndarray]:
    """Per token: base loss after another sample's prompt minus after its own (NaN where not scored)."""
    from rft_trl.shad.sampling import TokenRow, shuffle_rows
    from rft_trl.shad.score import score_batch

    rows = [
        TokenRow(index=i, input_ids=tuple(ids), labels=tuple(labels))
        for i, (ids, labels) in enumerate(zip(data["input_ids"], data["labels"], strict=True))
    ]
    shuffled = shuffle_rows(rows, seed=seed, max_length=max_length)
    rise = [np.full(len(r.input_ids), np.nan) for r in rows]
    model.eval()
    for start in range(0, len(shuffled), 8):
        chunk = shuffled[start : start + 8]
        losses = score_batch(model, [(r.input_ids, r.labels) for r in chunk], pad_id)
        for row, loss in zip(chunk, losses, strict=True):
            for pos in range(1, len(row.input_ids)):
                src, src_pos = row.source_row[pos], row.source_pos[pos]
                if src >= 0 and src_pos >= 1 and row.labels[pos] != -100:
                    rise[src][src_pos] = loss[pos] - l_o[src][src_pos]
    return rise


# ------------------------------------------------------------------------------------------ metrics


def evaluate(data: Dataset, rise: list[np.ndarray], threshold: float) -> dict:
    """Every method on the common tokens, overall and per family."""
    gt = flat(data["gt_class"]).astype(int)
    category = flat(data["gt_category"]).astype(int)
    first = flat(data["gt_span_first"]).astype(int)
    l_o, l_s = flat(data["shad_l_o"]), flat(data["shad_l_s"])
    probe = np.concatenate(rise)
    ids = flat(data["input_ids"]).astype(int)
    family = np.concatenate(
        [[f] * len(ids_) for f, ids_ in zip(data["family"], data["input_ids"], strict=True)]
    )
    in_loss = flat(data["labels"]) != -100
    common = in_loss & (gt != -100) & ~np.isnan(probe)
    counts = np.bincount(ids[in_loss], minlength=ids.max() + 1)
    rarity = -np.log(np.maximum(counts[ids], 1) / in_loss.sum())
    results = {}
    for scope in ("all", "react", "json"):
        mask = common & ((family == scope) if scope != "all" else True)
        if not mask.any():
            continue
        gold = gt[mask] == 1
        prevalence = gold.mean()
        ld = (l_s - l_o)[mask]

        def at_prevalence(score, prevalence=prevalence):
            return score > np.quantile(score, 1 - prevalence)

        methods = {
            "SHAD": (ld > threshold, ld),
            "all-reasoning": (np.ones_like(gold), None),
            "token rarity": (at_prevalence(rarity[mask]), rarity[mask]),
            "base loss (l_o)": (at_prevalence(l_o[mask]), l_o[mask]),
            "prompt-swap probe": (probe[mask] > np.log(2), probe[mask]),
        }
        results[scope] = {
            "tokens": int(mask.sum()),
            "reasoning_prevalence": float(prevalence),
            "methods": {
                name: {
                    **classification(pred.astype(bool), gold, score),
                    "categories": per_category(
                        pred.astype(bool), gold, category[mask], first[mask]
                    ),
                }
                for name, (pred, score) in methods.items()
            },
        }
    return results


def render(results: dict, header: list[str]) -> str:
    lines = [*header, ""]
    for scope, block in results.items():
        lines.append(
            f"### {scope} ({block['tokens']} response tokens, {100 * block['reasoning_prevalence']:.1f}% truly reasoning)"
        )
        lines.append("| method | P | R | F1 | acc | boilerplate | AUROC |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for name, m in block["methods"].items():
            lines.append(
                f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['accuracy']:.3f} "
                f"| {m['boilerplate_fraction']:.3f} | {m['auroc']:.3f} |"
            )
        cats = [
            c
            for c in (*CATEGORY_ORDER, "span_first", "span_inner")
            if c in block["methods"]["SHAD"]["categories"]
        ]
        lines.append("")
        lines.append("| per-category recall of the true role | " + " | ".join(cats) + " |")
        lines.append("| --- |" + " --- |" * len(cats))
        for name, m in block["methods"].items():
            lines.append(
                f"| {name} | " + " | ".join(f"{m['categories'][c]:.3f}" for c in cats) + " |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from transformers import TrainingArguments

    from rft_trl.shad import ShadSettings, label_dataset
    from rft_trl.shad.batching import pad_id_of

    args = parse_args(argv)
    disable_progress_bars()
    started = time.perf_counter()
    model, tokenizer, base_name = load_base(args)
    pretrain_seconds = 0.0
    if args.pretrain_steps:
        pretrain_seconds = pretrain(model, tokenizer, args.pretrain_steps, args.seed)
        if args.save_base:
            model.save_pretrained(args.save_base)
            tokenizer.save_pretrained(args.save_base)
    t0 = time.perf_counter()
    data = build_corpus(tokenizer, args.samples, args.seed, args.max_length)
    corpus_seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=8,
            learning_rate=args.lr,
            use_cpu=not torch.cuda.is_available(),
            report_to="none",
            seed=args.seed,
        )
        settings = ShadSettings(
            sample_ratio=args.sample_ratio,
            min_steps=args.min_steps,
            threshold=args.threshold,
            seed=args.seed,
            cache_dir=str(Path(tmp) / "cache"),
        )
        result = label_dataset(
            model, data, settings, training_args=training_args, tokenizer=tokenizer, max_length=args.max_length,
            progress=not args.quick,
        )  # fmt: skip
    labelled = result.dataset
    t0 = time.perf_counter()
    rise = probe_rise(
        model, labelled, args.seed + 1, args.max_length, pad_id_of(tokenizer, model),
        [np.asarray(x) for x in labelled["shad_l_o"]],
    )  # fmt: skip
    probe_seconds = time.perf_counter() - t0
    results = evaluate(labelled, rise, args.threshold)
    phases = {"pretrain": pretrain_seconds, "corpus": corpus_seconds, **result.report.seconds}
    phases["full probe (baseline)"] = probe_seconds
    phases["benchmark total"] = time.perf_counter() - started
    header = [
        f"## SHAD quality ({'quick' if args.quick else 'full'}): base = {base_name}"
        + (f", pretrained {args.pretrain_steps} steps" if args.pretrain_steps else ""),
        "",
        f"{len(labelled)} samples (react + json), max_length {args.max_length}; shuffle-tune: "
        f"{result.report.sampled} samples, {result.report.tune_steps} steps of batch {args.batch_size}, "
        f"lr {args.lr:g}; threshold LD <= {args.threshold:g}; seed {args.seed}",
        "Time: " + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()),
        f"SHAD's own probe verdict: {result.report.probe.verdict}",
    ]
    print(render(results, header))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"args": vars(args), "base": base_name, "seconds": phases, "results": results},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
