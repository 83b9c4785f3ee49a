"""Rows whose token ids carry their own class, for alignment property tests (SPEC §4 invariant 4)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st


def expected_class(token_id: int) -> int:
    """Each token id carries its own class, so any misalignment shows as a mismatch."""
    return (token_id * 7919 // 13) % 2


@st.composite
def tagged_rows(draw):
    """Rows with unique token ids, a masked prompt and classes derived from the ids."""
    n = draw(st.integers(1, 6))
    rows = []
    for r in range(n):
        length = draw(st.integers(1, 24))
        prompt = draw(st.integers(0, length))
        ids = [1000 * (r + 1) + i for i in range(length)]
        labels = [-100] * prompt + ids[prompt:]
        classes = [-100] * prompt + [expected_class(t) for t in ids[prompt:]]
        rows.append({"input_ids": ids, "labels": labels, "token_class": classes})
    return rows


def assert_aligned(
    input_ids: torch.Tensor, labels: torch.Tensor, token_class: torch.Tensor
) -> None:
    for token, label, cls in zip(
        input_ids.flatten().tolist(),
        labels.flatten().tolist(),
        token_class.flatten().tolist(),
        strict=True,
    ):
        if label == -100:
            assert cls == -100
        else:
            assert label == token and cls == expected_class(token)
