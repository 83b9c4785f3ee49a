"""Padding rows into batches and ordering rows by length (used by the shuffle-tune and the scorer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rft_trl.loss import IGNORE_INDEX


def pad_rows(
    input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `attention_mask` and `labels` (-100 on padding) as long tensors."""
    width = max(len(ids) for ids in input_ids)
    batch = len(input_ids)
    ids_out = torch.full((batch, width), pad_id, dtype=torch.long)
    labels_out = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for i, (ids, labs) in enumerate(zip(input_ids, labels, strict=True)):
        ids_out[i, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
        labels_out[i, : len(labs)] = torch.as_tensor(list(labs), dtype=torch.long)
        mask[i, : len(ids)] = 1
    return {"input_ids": ids_out, "attention_mask": mask, "labels": labels_out}


class PadCollator:
    """Data collator for the shuffle-tune: pads `input_ids`/`labels` rows of a `datasets.Dataset`."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return pad_rows(
            [f["input_ids"] for f in features], [f["labels"] for f in features], self.pad_id
        )


def length_order(lengths: np.ndarray) -> np.ndarray:
    """Row indices longest first (ties by index), so batches hold rows of similar length."""
    lengths = np.asarray(lengths)
    return np.lexsort((np.arange(len(lengths)), -lengths))


def plan_shards(
    indices: Sequence[int], lengths: np.ndarray, batch_size: int, max_batches: int, min_shards: int
) -> list[list[list[int]]]:
    """Shards of batches of row indices: `indices` sorted by length, cut into batches, grouped into shards.

    A shard holds up to `max_batches` batches, fewer when that gives at least `min_shards`
    shards. The plan depends only on the rows and the batch size, never on the number of
    processes, so each batch is computed identically whichever process scores it.
    """
    indices = np.asarray(indices, dtype=np.int64)
    order = indices[length_order(np.asarray(lengths)[indices])]
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    per_shard = max(1, min(max_batches, -(-len(batches) // max(1, min_shards))))
    return [batches[i : i + per_shard] for i in range(0, len(batches), per_shard)]


def pad_id_of(tokenizer, model) -> int:
    """The pad id: the tokenizer's, else the model config's, else EOS, else 0 (padding is masked anyway)."""
    for source in (tokenizer, getattr(model, "config", None)):
        for attribute in ("pad_token_id", "eos_token_id"):
            value = getattr(source, attribute, None) if source is not None else None
            if isinstance(value, list):
                value = value[0] if value else None
            if isinstance(value, int):
                return value
    return 0
