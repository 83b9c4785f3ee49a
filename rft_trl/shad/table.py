"""Read-only access to a tokenized dataset's `input_ids`/`labels`: lengths, response counts, content hash, rows.

Works in streamed Arrow batches so a large dataset is never copied into Python lists whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa

from rft_trl.loss import IGNORE_INDEX
from rft_trl.shad.errors import ShadDataError
from rft_trl.shad.sampling import TokenRow

_BATCH = 4096


def _flat(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, flat int64 values) of a list column, honouring slices."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = array.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = array.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    return lengths, values


class TokenTable:
    """The `input_ids`/`labels` of a tokenized `datasets.Dataset`, with one streamed pass for the statistics."""

    def __init__(self, dataset, name: str = "train") -> None:
        missing = [
            column for column in ("input_ids", "labels") if column not in dataset.column_names
        ]
        if missing:
            raise ShadDataError(
                f"The {name} dataset has no {' or '.join(f'`{m}`' for m in missing)} column: SHAD needs a "
                "tokenized dataset with `input_ids` and `labels` (-100 outside the loss), as TRL's SFTTrainer "
                "and Axolotl produce. Fix: tokenize the dataset first (or use `rft-trl shad --config`, which "
                "tokenizes it like the trainer)."
            )
        self.dataset = dataset
        self.name = name
        self.num_rows = len(dataset)
        digest = hashlib.sha256(b"rft-trl-tokens-v1")
        lengths: list[np.ndarray] = []
        responses: list[np.ndarray] = []
        for batch in self._batches():
            ids_len, ids = _flat(batch.column("input_ids"))
            lab_len, labels = _flat(batch.column("labels"))
            if not np.array_equal(ids_len, lab_len):
                raise ShadDataError(
                    f"In the {name} dataset some rows have `labels` of a different length than `input_ids`. "
                    "Fix: labels must be aligned with input_ids (same length, -100 outside the loss)."
                )
            digest.update(ids_len.tobytes())
            digest.update(ids.tobytes())
            digest.update(labels.tobytes())
            in_loss = np.concatenate([[0], np.cumsum(labels != IGNORE_INDEX)])
            offsets = np.concatenate([[0], np.cumsum(ids_len)])
            lengths.append(ids_len)
            responses.append(in_loss[offsets[1:]] - in_loss[offsets[:-1]])
        self.lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
        self.response_counts = (
            np.concatenate(responses) if responses else np.zeros(0, dtype=np.int64)
        )
        self.fingerprint = digest.hexdigest()

    def _batches(self) -> Iterator[pa.Table]:
        """The two token columns in Arrow batches (respecting any indices mapping of the dataset)."""
        view = self.dataset.select_columns(["input_ids", "labels"]).with_format("arrow")
        for start in range(0, self.num_rows, _BATCH):
            yield view[start : start + _BATCH]

    @property
    def response_tokens(self) -> int:
        """Total number of positions in the loss."""
        return int(self.response_counts.sum())

    def rows(self, indices: Sequence[int]) -> list[TokenRow]:
        """The rows at `indices` (in that order) as `TokenRow`s."""
        if len(indices) == 0:
            return []
        table = self.dataset.select_columns(["input_ids", "labels"]).with_format("arrow")[
            list(indices)
        ]
        ids = table.column("input_ids").to_pylist()
        labels = table.column("labels").to_pylist()
        return [
            TokenRow(index=int(i), input_ids=tuple(a), labels=tuple(b))
            for i, a, b in zip(indices, ids, labels, strict=True)
        ]
