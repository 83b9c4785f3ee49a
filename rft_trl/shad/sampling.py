"""Pick the shuffle-tune subset and shuffle its responses across samples (pure: lists in, lists out).

A response *segment* is a maximal run of positions whose label is not -100 (one per assistant
turn in chat data). The shuffle replaces every segment of every sampled row by a segment of a
*different* row, keeping the prompts and the context between segments in place.

How rows with several segments are handled (a turn-aligned global derangement):

- Segment k of a row (its k-th assistant turn) belongs to *stratum* k, so first turns are
  exchanged with first turns, second with second, and so on; a reply keeps its role in the
  dialogue as far as the data allow.
- Within a stratum the segments are permuted so that no segment lands in a row it came from
  (owners listed in random order, each owner's segments contiguous, every slot receives the
  segment `m` places further on, `m` = most segments of one owner). With one segment per row
  this is a uniformly random cyclic derangement (Sattolo).
- A stratum where that is impossible (one row holds more than half of its segments, e.g. a
  single row with a 5th turn) is merged into the stratum below it; if the whole set is
  infeasible (one row holds more than half of all segments) a `ShadDataError` says so.
- Every segment is used exactly once: the multiset of segments is preserved.

Rows are re-truncated to `max_length` (keeping the start, as TRL's default `keep_start`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from rft_trl.loss import IGNORE_INDEX
from rft_trl.shad.errors import ShadDataError


@dataclass(frozen=True)
class TokenRow:
    """One tokenized row: its index in the dataset, `input_ids` and `labels` (-100 outside the loss)."""

    index: int
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class ShuffledRow:
    """A row after the shuffle, with where each response token came from (-1 in the context)."""

    index: int
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    source_row: tuple[int, ...]
    source_pos: tuple[int, ...]


def segments(labels: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs `[start, end)` of positions whose label is not -100."""
    runs: list[tuple[int, int]] = []
    start = None
    for pos, label in enumerate(labels):
        if label != IGNORE_INDEX and start is None:
            start = pos
        elif label == IGNORE_INDEX and start is not None:
            runs.append((start, pos))
            start = None
    if start is not None:
        runs.append((start, len(labels)))
    return runs


def sample_count(num_rows: int, ratio: float, min_steps: int, effective_batch: int) -> int:
    """max(ceil(ratio x N), min_steps x B) rows, capped at N (on small models the steps matter, not the ratio),
    in whole optimizer steps of B = `effective_batch` rows wherever N >= B.

    Whole steps keep the labels independent of how the global batch B is split across
    processes: a last, partial step is filled differently by one process and by several
    (accelerate repeats rows to even the batches).
    """
    batch = max(1, effective_batch)
    wanted = max(math.ceil(ratio * num_rows), min_steps * batch)
    whole_steps = math.ceil(wanted / batch) * batch
    if whole_steps <= num_rows:
        return whole_steps
    return num_rows // batch * batch if num_rows >= batch else num_rows


def choose_samples(eligible: Sequence[int], count: int, seed: int) -> list[int]:
    """A seeded random subset of `count` row indices out of `eligible`, in ascending order."""
    if count > len(eligible):
        raise ValueError(f"count={count} exceeds the {len(eligible)} eligible rows")
    return sorted(random.Random(seed).sample(list(eligible), count))


def _feasible(owners: Sequence[int]) -> bool:
    """Whether a derangement that moves every item to another owner exists."""
    if len(owners) < 2:
        return False
    most = max(owners.count(owner) for owner in set(owners))
    return most <= len(owners) - most


def _derange_stratum(
    items: list[int], owner_of: Sequence[int], rng: random.Random
) -> dict[int, int]:
    """slot item -> source item, with `owner_of[source] != owner_of[slot]` for every slot."""
    by_owner: dict[int, list[int]] = {}
    for item in items:
        by_owner.setdefault(owner_of[item], []).append(item)
    owners = sorted(by_owner)
    rng.shuffle(owners)
    ordered: list[int] = []
    for owner in owners:
        group = by_owner[owner]
        rng.shuffle(group)
        ordered.extend(group)
    shift = max(len(group) for group in by_owner.values())
    total = len(ordered)
    return {ordered[i]: ordered[(i + shift) % total] for i in range(total)}


def derange_segments(owners: Sequence[int], turns: Sequence[int], seed: int) -> list[int]:
    """`source[i]`: which segment fills slot i; never one of the same owner; a permutation.

    `owners[i]` is the row of segment i and `turns[i]` its turn number within that row. See the
    module docstring for the turn-aligned strata and how infeasible strata are merged.
    """
    if len(owners) != len(turns):
        raise ValueError("owners and turns must have the same length")
    if not _feasible(list(owners)):
        raise ShadDataError(
            "Cannot shuffle the sampled responses: one sample holds more than half of all response "
            f"segments ({len(owners)} segments over {len(set(owners))} samples), so some of its "
            "segments would have to stay in it. Fix: sample more rows (raise `shad_sample_ratio` or "
            "`shad_min_steps`) or use a dataset with more samples."
        )
    rng = random.Random(seed)
    strata: dict[int, list[int]] = {}
    for item, turn in enumerate(turns):
        strata.setdefault(turn, []).append(item)
    groups: list[list[int]] = []
    pending: list[int] = []
    for turn in sorted(strata, reverse=True):
        pending = pending + strata[turn]
        if _feasible([owners[i] for i in pending]):
            groups.append(pending)
            pending = []
    while pending:  # leftovers from the lowest turns: merge into the groups below until feasible
        pending = pending + groups.pop()
        if _feasible([owners[i] for i in pending]):
            groups.append(pending)
            pending = []
    source = list(range(len(owners)))
    for group in groups:
        for slot, src in _derange_stratum(sorted(group), owners, rng).items():
            source[slot] = src
    return source


def shuffle_rows(rows: Sequence[TokenRow], seed: int, max_length: int | None) -> list[ShuffledRow]:
    """Replace every response segment of each row by another row's segment (see the module docstring)."""
    if len(rows) < 2:
        raise ShadDataError(
            f"SHAD needs at least 2 samples with response tokens to shuffle; got {len(rows)}. "
            "Fix: use a dataset with more samples, or raise `shad_sample_ratio`/`shad_min_steps`."
        )
    owners: list[int] = []
    turns: list[int] = []
    spans: list[tuple[int, int]] = []
    for row_pos, row in enumerate(rows):
        row_segments = segments(row.labels)
        if not row_segments:
            raise ShadDataError(f"Row {row.index} has no response tokens and cannot be shuffled.")
        for turn, span in enumerate(row_segments):
            owners.append(row_pos)
            turns.append(turn)
            spans.append(span)
    source = derange_segments(owners, turns, seed)
    slots_of_row: dict[int, list[int]] = {}
    for slot, owner in enumerate(owners):
        slots_of_row.setdefault(owner, []).append(slot)
    shuffled: list[ShuffledRow] = []
    for row_pos, row in enumerate(rows):
        ids: list[int] = []
        labels: list[int] = []
        src_row: list[int] = []
        src_pos: list[int] = []
        cursor = 0
        for slot in slots_of_row[row_pos]:
            start, end = spans[slot]
            _extend_context(row, cursor, start, ids, labels, src_row, src_pos)
            donor = rows[owners[source[slot]]]
            d_start, d_end = spans[source[slot]]
            ids.extend(donor.input_ids[d_start:d_end])
            labels.extend(donor.labels[d_start:d_end])
            src_row.extend([donor.index] * (d_end - d_start))
            src_pos.extend(range(d_start, d_end))
            cursor = end
        _extend_context(row, cursor, len(row.input_ids), ids, labels, src_row, src_pos)
        cut = len(ids) if max_length is None else max_length
        shuffled.append(
            ShuffledRow(
                index=row.index,
                input_ids=tuple(ids[:cut]),
                labels=tuple(labels[:cut]),
                source_row=tuple(src_row[:cut]),
                source_pos=tuple(src_pos[:cut]),
            )
        )
    return shuffled


def _extend_context(
    row: TokenRow,
    start: int,
    end: int,
    ids: list[int],
    labels: list[int],
    src_row: list[int],
    src_pos: list[int],
) -> None:
    """Append the row's own context tokens [start, end) (not in the loss)."""
    ids.extend(row.input_ids[start:end])
    labels.extend([IGNORE_INDEX] * (end - start))
    src_row.extend([-1] * (end - start))
    src_pos.extend([-1] * (end - start))


def identical_responses(rows: Sequence[TokenRow]) -> bool:
    """Whether every response segment of every row is the same token sequence (SHAD can separate nothing)."""
    seen = {tuple(row.input_ids[s:e]) for row in rows for s, e in segments(row.labels)}
    return len(seen) <= 1
