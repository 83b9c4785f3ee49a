"""Label quality against ground truth (precision/recall/F1, accuracy, AUROC, per category) and group losses.

Pure numpy/torch helpers shared by the demo, its report and `benchmarks/evidence.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rft_trl.shad.score import model_device
from rft_trl.synthetic import CATEGORIES, IGNORE_INDEX, REASONING

CATEGORY_ORDER: tuple[str, ...] = (
    "tool_name",
    "argument_value",
    "purpose",
    "stock_phrase",
    "format",
    "template",
)


def flat(column: Sequence[Sequence[float]], dtype=np.float64) -> np.ndarray:
    """A list column (one list per row) concatenated into one array."""
    parts = [np.asarray(x, dtype=dtype) for x in column]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of `score` for `positive` (Mann-Whitney U with average ranks for ties)."""
    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    pos = int(positive.sum())
    neg = len(positive) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    # average rank per tie group
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(score)]])
    ranks = np.empty(len(score))
    group_rank = (starts + ends - 1) / 2 + 1
    ranks[order] = np.repeat(group_rank, ends - starts)
    return float((ranks[positive].sum() - pos * (pos + 1) / 2) / (pos * neg))


def label_quality(
    predicted: np.ndarray, truth: np.ndarray, score: np.ndarray | None = None
) -> dict[str, float]:
    """Reasoning-class precision/recall/F1, token accuracy, labelled-boilerplate fraction and AUROC of `score`."""
    pred = np.asarray(predicted) == 1
    gold = np.asarray(truth) == 1
    tp = int((pred & gold).sum())
    fp = int((pred & ~gold).sum())
    fn = int((~pred & gold).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "tokens": len(gold),
        "accuracy": float((pred == gold).mean()) if len(gold) else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "boilerplate_fraction": float(1 - pred.mean()) if len(pred) else 0.0,
        "true_boilerplate_fraction": float(1 - gold.mean()) if len(gold) else 0.0,
        "auroc": auroc(score, gold) if score is not None else float("nan"),
    }


def per_category(
    predicted: np.ndarray, truth: np.ndarray, category: np.ndarray, span_first: np.ndarray
) -> dict[str, float]:
    """Share of each category's tokens labelled with their true role; reasoning span-first and inner tokens apart."""
    pred = np.asarray(predicted) == 1
    gold = np.asarray(truth) == 1
    out: dict[str, float] = {}
    for name in CATEGORY_ORDER:
        mask = category == CATEGORIES.index(name)
        if mask.any():
            out[name] = float((pred[mask] == gold[mask]).mean())
    for name, mask in (
        ("span_first", gold & (span_first == 1)),
        ("span_inner", gold & (span_first == 0)),
    ):
        if mask.any():
            out[name] = float(pred[mask].mean())
    return out


def loss_weight_shares(
    token_class: Sequence[Sequence[int]],
    category: Sequence[Sequence[int]],
    reasoning_weight: float | None,
) -> dict[str, float]:
    """Share of the training loss's weight on each ground-truth category's tokens, over a dataset.

    `reasoning_weight=None` is SFT: every response token weighs the same (a token mean over the
    dataset; TRL's per-step token mean differs only by how many tokens each step holds).
    Otherwise RFT with w_r = `reasoning_weight` in every sample: a token weighs its group's weight
    over its group's size in its sample, and a sample with one group gives it weight 1 (as
    `rft_trl.loss.group_weights`). RFT's softmax gives w_r = sigmoid((L_r - L_b) / tau), which is
    0.5 where the two group losses are equal and stays near it while they are close. Shares sum to 1.
    """
    totals = np.zeros(len(CATEGORIES))
    for classes, categories in zip(token_class, category, strict=True):
        cls, cat = np.asarray(classes), np.asarray(categories)
        in_loss = cls != IGNORE_INDEX
        cls, cat = cls[in_loss], cat[in_loss]
        if reasoning_weight is None:
            weight = np.ones(len(cls))
        else:
            n_r = int((cls == REASONING).sum())
            n_b = len(cls) - n_r
            w_r = reasoning_weight if n_b and n_r else float(n_r > 0)
            weight = np.where(cls == REASONING, w_r / max(n_r, 1), (1.0 - w_r) / max(n_b, 1))
        np.add.at(totals, cat, weight)
    total = totals.sum()
    return {
        name: float(totals[CATEGORIES.index(name)] / total) if total else 0.0
        for name in CATEGORY_ORDER
    }


def response_arrays(dataset: Any) -> dict[str, np.ndarray]:
    """Flat per-response-token arrays of a labelled dataset: gt, category, span_first, family, and SHAD's columns."""
    labels = flat(dataset["labels"], np.int64)
    in_loss = labels != IGNORE_INDEX
    out = {
        "gt": flat(dataset["gt_class"], np.int64)[in_loss],
        "category": flat(dataset["gt_category"], np.int64)[in_loss],
        "span_first": flat(dataset["gt_span_first"], np.int64)[in_loss],
        "input_ids": flat(dataset["input_ids"], np.int64)[in_loss],
    }
    families = [
        np.full(len(ids), family, dtype=object)
        for family, ids in zip(dataset["family"], dataset["labels"], strict=True)
    ]
    out["family"] = np.concatenate(families)[in_loss] if families else np.zeros(0, dtype=object)
    if "shad_l_o" in dataset.column_names:
        out["l_o"] = flat(dataset["shad_l_o"])[in_loss]
        out["l_s"] = flat(dataset["shad_l_s"])[in_loss]
        out["ld"] = out["l_s"] - out["l_o"]
    if "token_class" in dataset.column_names:
        out["token_class"] = flat(dataset["token_class"], np.int64)[in_loss]
    return out


def shad_quality(arrays: dict[str, np.ndarray], threshold: float = 0.0) -> dict[str, Any]:
    """SHAD's labels at `threshold` vs ground truth, overall and per family, with per-category recall."""
    out: dict[str, Any] = {}
    predicted = (arrays["ld"] > threshold).astype(np.int64)
    for scope in ("all", *sorted(set(arrays["family"].tolist()))):
        mask = np.ones(len(predicted), dtype=bool) if scope == "all" else arrays["family"] == scope
        block = label_quality(predicted[mask], arrays["gt"][mask], arrays["ld"][mask])
        block["categories"] = per_category(
            predicted[mask],
            arrays["gt"][mask],
            arrays["category"][mask],
            arrays["span_first"][mask],
        )
        out[scope] = block
    return out


@torch.no_grad()
def group_losses(
    model: torch.nn.Module,
    batches: Sequence[dict[str, torch.Tensor]],
) -> dict[str, Any]:
    """Mean token loss over boilerplate and over reasoning tokens (batches carry `labels` and `gt_class`),
    and per ground-truth category under "category_loss" when the batches carry `gt_category`."""
    was_training = model.training
    model.eval()
    sums = {0: 0.0, 1: 0.0}
    counts = {0: 0, 1: 0}
    category_sums = np.zeros(len(CATEGORIES))
    category_counts = np.zeros(len(CATEGORIES), dtype=np.int64)
    device = model_device(model)
    for batch in batches:
        batch = {key: value.to(device) for key, value in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:]
        classes = batch["gt_class"][:, 1:]
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        safe = targets.clamp(min=0)
        loss = -logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        for cls in (0, 1):
            mask = (classes == cls) & (targets != IGNORE_INDEX)
            sums[cls] += float(loss[mask].sum())
            counts[cls] += int(mask.sum())
        if "gt_category" in batch:
            categories = batch["gt_category"][:, 1:]
            in_loss = (targets != IGNORE_INDEX) & (categories >= 0)
            ids = categories[in_loss].cpu().numpy()
            category_sums += np.bincount(
                ids, loss[in_loss].cpu().numpy(), minlength=len(CATEGORIES)
            )
            category_counts += np.bincount(ids, minlength=len(CATEGORIES))
    if was_training:
        model.train()
    out: dict[str, Any] = {
        "boilerplate_loss": sums[0] / counts[0] if counts[0] else float("nan"),
        "reasoning_loss": sums[1] / counts[1] if counts[1] else float("nan"),
        "loss": (sums[0] + sums[1]) / max(1, counts[0] + counts[1]),
    }
    if category_counts.any():
        out["category_loss"] = {
            name: float(category_sums[i] / category_counts[i])
            for i, name in enumerate(CATEGORIES)
            if category_counts[i]
        }
    return out


def pad_batches(
    rows: Sequence[dict[str, Sequence[int]]], pad_id: int, batch_size: int = 8
) -> list[dict[str, torch.Tensor]]:
    """Right-padded tensors of `input_ids`, `attention_mask`, `labels` and `gt_class` (and
    `gt_category` when the rows have it), in batches."""
    batches = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(r["input_ids"]) for r in chunk)
        batch = {
            "input_ids": torch.full((len(chunk), width), pad_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(chunk), width), dtype=torch.long),
            "labels": torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long),
            "gt_class": torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long),
        }
        if "gt_category" in chunk[0]:
            batch["gt_category"] = torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long)
        for i, row in enumerate(chunk):
            n = len(row["input_ids"])
            batch["input_ids"][i, :n] = torch.as_tensor(row["input_ids"])
            batch["attention_mask"][i, :n] = 1
            batch["labels"][i, :n] = torch.as_tensor(row["labels"])
            batch["gt_class"][i, :n] = torch.as_tensor(row["gt_class"])
            if "gt_category" in batch:
                batch["gt_category"][i, :n] = torch.as_tensor(row["gt_category"])
        batches.append(batch)
    return batches
