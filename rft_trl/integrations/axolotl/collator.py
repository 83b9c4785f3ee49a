"""Axolotl's collators, carrying `token_class` through padding and multipack packing.

Axolotl's collators pad only the standard fields (`tokenizer.pad` fails on any other column), and
its multipack collators concatenate every column of a packed group. These subclasses take
`token_class` (and SHAD's other per-token columns) out, let Axolotl collate the rest, then lay
`token_class` out like the collated `labels` with the shared `layout_like_labels`, which also
fails loudly on any misalignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from axolotl.utils.collators.batching import (
    BatchSamplerDataCollatorForSeq2Seq,
    DataCollatorForSeq2Seq,
    V2BatchSamplerDataCollatorForSeq2Seq,
)

from rft_trl.collator import SIDE_COLUMNS, TOKEN_CLASS, TokenClassAlignmentError, layout_like_labels


def _strip(feature: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in feature.items() if key not in SIDE_COLUMNS}


def _token_class(feature: dict[str, Any]) -> Any:
    if TOKEN_CLASS not in feature:
        raise TokenClassAlignmentError(
            "A training or eval row has no `token_class`: the RFT plugin labels every row in "
            "`post_trainer_create`, so another plugin or hook replaced the dataset afterwards."
        )
    return feature[TOKEN_CLASS]


class _TokenClassLayout:
    """Shared by the collators below: add `token_class` laid out like the collated labels."""

    tokenizer: Any

    def _with_token_class(self, batch: dict[str, Any], rows: list[Any]) -> dict[str, Any]:
        batch[TOKEN_CLASS] = layout_like_labels(
            rows, batch["labels"], flattened=False, padding_side=self.tokenizer.padding_side
        )
        return batch


@dataclass
class RFTDataCollator(_TokenClassLayout, DataCollatorForSeq2Seq):
    """Axolotl's padding collator (one sample per row) plus `token_class`."""

    def __call__(self, features, return_tensors=None):
        rows = [_token_class(f) for f in features]
        batch = super().__call__([_strip(f) for f in features], return_tensors=return_tensors)
        return self._with_token_class(batch, rows)


def _packed(features) -> tuple[list[list[dict[str, Any]]], list[np.ndarray]]:
    """Packed groups without side columns, and each group's concatenated `token_class`."""
    groups = features if isinstance(features[0], list) else [features]
    rows = [np.concatenate([np.asarray(_token_class(f)) for f in group]) for group in groups]
    return [[_strip(f) for f in group] for group in groups], rows


@dataclass
class RFTV2BatchSamplerDataCollator(_TokenClassLayout, V2BatchSamplerDataCollatorForSeq2Seq):
    """Axolotl's multipack collator (sdpa/eager/flex attention) plus `token_class`."""

    def __call__(self, features, return_tensors=None):
        groups, rows = _packed(features)
        return self._with_token_class(super().__call__(groups, return_tensors=return_tensors), rows)


@dataclass
class RFTBatchSamplerDataCollator(_TokenClassLayout, BatchSamplerDataCollatorForSeq2Seq):
    """Axolotl's multipack collator for FlashAttention varlen batches plus `token_class`."""

    def __call__(self, features, return_tensors=None):
        groups, rows = _packed(features)
        return self._with_token_class(super().__call__(groups, return_tensors=return_tensors), rows)
