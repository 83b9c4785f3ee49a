"""Dataset steps that must keep per-token columns (`token_class`, SHAD scores) aligned.

TRL and Axolotl truncate and pack only `input_ids`/`labels`; these versions treat every list
column as long as `input_ids` as per-token and cut or pack it the same way.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from datasets import Dataset

from rft_trl.collator import TOKEN_CLASS, check_row_alignment
from rft_trl.loss import IGNORE_INDEX

logger = logging.getLogger(__name__)
# Above this share of trained tokens, the prompt is probably in the loss (agent data: ~20-60 %).
TRAINED_SHARE_WARNING = 0.95


class NoResponseTokensError(ValueError):
    """The dataset has no prompt/response split, so there is nothing for SHAD or RFT to weigh."""


def per_token_columns(example: dict[str, Any]) -> list[str]:
    """Columns of `example` holding one value per token (lists as long as `input_ids`)."""
    length = len(example["input_ids"])
    return [
        key
        for key, value in example.items()
        if isinstance(value, list | tuple) and len(value) == length
    ]


def truncate_row(
    example: dict[str, Any], max_length: int, mode: str = "keep_start"
) -> dict[str, Any]:
    """Cut every per-token column of one row to `max_length` tokens."""
    if mode not in ("keep_start", "keep_end"):
        raise ValueError(f"Unsupported truncation_mode {mode!r}: use 'keep_start' or 'keep_end'.")
    window = slice(None, max_length) if mode == "keep_start" else slice(-max_length, None)
    return {key: list(example[key])[window] for key in per_token_columns(example)}


def truncate(
    dataset: Dataset, max_length: int | None, mode: str = "keep_start", num_proc=None
) -> Dataset:
    """Truncate all per-token columns, then drop rows left without any response token."""
    if max_length is not None:
        dataset = dataset.map(
            truncate_row,
            fn_kwargs={"max_length": max_length, "mode": mode},
            num_proc=num_proc,
            desc="Truncating (with token classes)",
        )
    kept = dataset.filter(
        lambda example: any(label != IGNORE_INDEX for label in example["labels"]),
        num_proc=num_proc,
        desc="Dropping rows without response tokens",
    )
    dropped = len(dataset) - len(kept)
    if dropped:
        logger.warning(
            "Dropped %d of %d rows that have no response tokens%s: they carry no loss. "
            "Fix, if they should train: raise `max_length`, or shorten their prompts.",
            dropped,
            len(dataset),
            f" (left after truncation to max_length={max_length})" if max_length else "",
        )
    return kept


def require_response_mask(dataset: Dataset, *, sample_rows: int = 64) -> None:
    """Fail when no row masks any label: plain LM data has no response for SHAD/RFT to weigh."""
    if "labels" not in dataset.column_names:
        raise NoResponseTokensError(
            f"The rows have no `labels` column (columns: {dataset.column_names}): RFT needs "
            "tokenized rows whose `labels` mask the prompt with -100. Fix: let the trainer "
            "tokenize the data (drop TRL's `skip_prepare_dataset` or Axolotl's "
            "`skip_prepare_dataset`), or add a `labels` column to pre-tokenized rows."
        )
    rows = dataset.select(range(min(sample_rows, len(dataset))))["labels"]
    in_loss = sum(sum(label != IGNORE_INDEX for label in labels) for labels in rows)
    total = sum(len(labels) for labels in rows)
    if total and TRAINED_SHARE_WARNING < in_loss / total < 1:
        logger.warning(
            "%.0f%% of the first %d rows' tokens are in the loss: is the prompt masked? SHAD "
            "treats every run of trained tokens as a response (user or system turns included). "
            "Fix, if not intended: TRL `assistant_only_loss: true` or prompt/completion data; "
            "Axolotl `roles_to_train: [assistant]`, `train_on_inputs: false`.",
            100 * in_loss / total,
            len(rows),
        )
    if len(rows) and all(IGNORE_INDEX not in labels for labels in rows):
        raise NoResponseTokensError(
            "RFT needs a prompt/response split, but every token of the training data is in the loss "
            "(plain `text` data, or chat data without an assistant mask). Fix: use a conversational "
            "`messages` dataset with `assistant_only_loss: true`, or a `prompt`/`completion` dataset "
            "(completion-only loss is the default there: do not set `completion_only_loss: false` "
            "or a `formatting_func`, which turn it into plain text), or set `rft: false` for plain "
            "SFT."
        )


def check_alignment(dataset: Dataset, *, batch_size: int = 1024) -> None:
    """Check `token_class` against `input_ids`/`labels` on every row (vectorised per row)."""
    columns = ["input_ids", "labels", TOKEN_CLASS]
    start = 0
    for batch in dataset.select_columns(columns).iter(batch_size=batch_size):
        for offset, (ids, labels, classes) in enumerate(
            zip(*(batch[c] for c in columns), strict=True)
        ):
            labels_arr, classes_arr = np.asarray(labels), np.asarray(classes)
            masked = labels_arr == IGNORE_INDEX
            bad = (
                len(classes_arr) != len(ids)
                or bool(np.any(masked != (classes_arr == IGNORE_INDEX)))
                or bool(np.any(~masked & (classes_arr != 0) & (classes_arr != 1)))
            )
            if bad:  # the row-level check names the position and the fix
                check_row_alignment(
                    {"input_ids": ids, "labels": labels, TOKEN_CLASS: classes}, start + offset
                )
        start += len(batch["input_ids"])


def pack(
    dataset: Dataset, max_length: int, strategy: str, *, seed: int | None, num_proc=None
) -> Dataset:
    """Pack `input_ids`, `labels` and `token_class` with TRL's packer (it packs every list column)."""
    from trl.data_utils import pack_dataset

    columns = ["input_ids", "labels", TOKEN_CLASS]
    dataset = dataset.select_columns(columns)
    if seed is not None:
        dataset = dataset.shuffle(seed=seed)
    return pack_dataset(dataset, max_length, strategy, {"num_proc": num_proc})
