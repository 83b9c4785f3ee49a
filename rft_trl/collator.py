"""Carry `token_class` through collation: padding, padding-free flattening and packing.

`TokenClassCollator` wraps any collator that builds `input_ids`/`labels` (TRL's or Axolotl's),
lays out `token_class` the same way, and checks the result against `labels`, so a
misalignment fails loudly instead of training on the wrong tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rft_trl.loss import IGNORE_INDEX

TOKEN_CLASS = "token_class"
# Per-token side columns written by SHAD or the synthetic corpus; never fed to a base collator.
SIDE_COLUMNS = (TOKEN_CLASS, "shad_l_o", "shad_l_s", "gt_class", "gt_category", "gt_span_first")


class TokenClassAlignmentError(ValueError):
    """`token_class` does not line up with `input_ids`/`labels`."""


# The fix for labels made on another tokenization, for TRL and Axolotl users alike.
_RELABEL = (
    "Fix: drop the `token_class` column so SHAD labels the data as it is trained; or re-run "
    "`rft-trl shad` with the training config (TRL), or point `shad_labels_path` at the "
    "`<output_dir>/_shad_labels` of an Axolotl run on the same data and `sequence_len`."
)


def check_row_alignment(row: dict[str, Any], index: int | None = None) -> None:
    """Raise if a row's `token_class` length or values disagree with its `input_ids`/`labels`."""
    where = "" if index is None else f" (row {index})"
    token_class = row[TOKEN_CLASS]
    if len(token_class) != len(row["input_ids"]):
        raise TokenClassAlignmentError(
            f"`token_class` has {len(token_class)} entries but `input_ids` has {len(row['input_ids'])}"
            f"{where}. Labels must be computed on the same tokenization and truncation as training: "
            f"{_RELABEL}"
        )
    labels = row.get("labels")
    if labels is None:
        return
    for position, (label, cls) in enumerate(zip(labels, token_class, strict=True)):
        if (label == IGNORE_INDEX) != (cls == IGNORE_INDEX) or cls not in (IGNORE_INDEX, 0, 1):
            raise TokenClassAlignmentError(
                f"`token_class` disagrees with `labels` at position {position}{where}: label {label}, "
                f"class {cls}. `token_class` must be -100 exactly where labels are -100 and 0/1 "
                f"elsewhere. {_RELABEL}"
            )


def layout_like_labels(
    token_class: Sequence[Sequence[int]],
    labels: torch.Tensor,
    *,
    flattened: bool,
    padding_side: str = "right",
) -> torch.Tensor:
    """Lay `token_class` rows out as the collator laid out `labels`: padded rows or one flat row.

    Positions whose label the collator masked (padding, sequence starts in padding-free
    batches) get -100; a response position whose class is missing is an alignment error.
    """
    rows = [torch.as_tensor(list(row), dtype=torch.long) for row in token_class]
    if flattened:
        rows = [torch.cat(rows)] if rows else [torch.empty(0, dtype=torch.long)]
    if len(rows) != labels.shape[0]:
        raise TokenClassAlignmentError(
            f"The collator produced {labels.shape[0]} rows for {len(rows)} `token_class` rows; "
            "set `flattened` to match the collator (padding-free/packing flattens a batch into one row)."
        )
    out = torch.full(labels.shape, IGNORE_INDEX, dtype=torch.long)
    for i, row in enumerate(rows):
        if row.numel() > labels.shape[1]:
            raise TokenClassAlignmentError(
                f"`token_class` row {i} has {row.numel()} tokens but the batch has {labels.shape[1]} "
                "positions: it was not truncated like `input_ids`."
            )
        if padding_side == "left":
            out[i, labels.shape[1] - row.numel() :] = row
        else:
            out[i, : row.numel()] = row
    out = out.masked_fill(labels.cpu() == IGNORE_INDEX, IGNORE_INDEX)
    missing = (labels.cpu() != IGNORE_INDEX) & (out == IGNORE_INDEX)
    if bool(missing.any()):
        position = missing.nonzero()[0].tolist()
        raise TokenClassAlignmentError(
            f"Position {position} is in the loss but has no `token_class`: the labels and the token "
            f"classes were not aligned by the same tokenization. {_RELABEL}"
        )
    return out.to(labels.device)


@dataclass
class TokenClassCollator:
    """Wrap `base` (a collator building `input_ids`/`labels`) and add a matching `token_class`.

    `flattened` must say whether `base` concatenates a batch into one row (padding-free).
    """

    base: Callable[[list[dict[str, Any]]], dict[str, Any]]
    flattened: bool = False
    padding_side: str = "right"
    drop_columns: tuple[str, ...] = field(default=SIDE_COLUMNS)

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        missing = [i for i, example in enumerate(examples) if TOKEN_CLASS not in example]
        if missing:
            raise TokenClassAlignmentError(
                f"Examples {missing[:5]} have no `token_class` column; RFT needs SHAD labels for every "
                "training row (the trainer adds them before training)."
            )
        token_class = [example[TOKEN_CLASS] for example in examples]
        stripped = [
            {k: v for k, v in example.items() if k not in self.drop_columns} for example in examples
        ]
        batch = self.base(stripped)
        batch[TOKEN_CLASS] = layout_like_labels(
            token_class, batch["labels"], flattened=self.flattened, padding_side=self.padding_side
        )
        return batch
