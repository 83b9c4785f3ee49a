"""SPEC §4 invariant 4 through Axolotl's collators: `token_class` stays aligned with `input_ids`
for one-sample rows and multipack groups, right- and left-padded (Axolotl pads Mistral-type
models on the left under FlashAttention 2 without packing), with and without a pad multiple."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tagged_rows import assert_aligned, tagged_rows

pytestmark = pytest.mark.axolotl


def _features(rows: list[dict]) -> list[dict]:
    """Rows as Axolotl's tokenizers give them (attention mask and position ids included)."""
    return [
        {
            **row,
            "attention_mask": [1] * len(row["input_ids"]),
            "position_ids": list(range(len(row["input_ids"]))),
        }
        for row in rows
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=tagged_rows(),
    kind=st.sampled_from(["padded", "multipack", "multipack_flash"]),
    padding_side=st.sampled_from(["right", "left"]),
    pad_to_multiple_of=st.sampled_from([None, 64]),
    groups=st.integers(1, 3),
)
def test_axolotl_collators_keep_token_class_aligned(
    axolotl_available, rows, kind, padding_side, pad_to_multiple_of, groups
):
    from rft_trl.integrations.axolotl.collator import (
        RFTBatchSamplerDataCollator,
        RFTDataCollator,
        RFTV2BatchSamplerDataCollator,
    )

    import tiny_rows

    tokenizer = tiny_rows.tokenizer()
    tokenizer.padding_side = padding_side
    collator_cls = {
        "padded": RFTDataCollator,
        "multipack": RFTV2BatchSamplerDataCollator,
        "multipack_flash": RFTBatchSamplerDataCollator,
    }[kind]
    collator = collator_cls(
        tokenizer, padding=True, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"
    )
    features = _features(rows)
    if kind == "padded":
        batch = collator(features)
    else:  # the multipack sampler hands over groups of rows, each packed into one row
        batch = collator([features[i::groups] for i in range(min(groups, len(features)))])
    assert batch["token_class"].shape == batch["labels"].shape == batch["input_ids"].shape
    assert_aligned(batch["input_ids"], batch["labels"], batch["token_class"])
    # nothing lost: every response token of every row is in the batch, with its class
    in_loss = batch["labels"] != -100
    assert sorted(batch["labels"][in_loss].tolist()) == sorted(
        t for row in rows for t in row["labels"] if t != -100
    )
