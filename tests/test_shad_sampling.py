"""SHAD's pure core: segments, subset size, the turn-aligned derangement and the shuffle of tokenized rows."""

from __future__ import annotations

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rft_trl.shad.errors import ShadDataError
from rft_trl.shad.sampling import (
    TokenRow,
    choose_samples,
    derange_segments,
    identical_responses,
    sample_count,
    segments,
    shuffle_rows,
)

X = -100


def row(index: int, parts: list[tuple[str, list[int]]]) -> TokenRow:
    """A row from ('p', ids) context parts and ('r', ids) response parts."""
    ids, labels = [], []
    for kind, tokens in parts:
        ids.extend(tokens)
        labels.extend(tokens if kind == "r" else [X] * len(tokens))
    return TokenRow(index=index, input_ids=tuple(ids), labels=tuple(labels))


def response_segments(r) -> list[tuple[int, ...]]:
    return [tuple(r.input_ids[s:e]) for s, e in segments(r.labels)]


def test_segments_are_maximal_runs_of_loss_positions():
    assert segments([X, X, 5, 6, X, 7, X]) == [(2, 4), (5, 6)]
    assert segments([1, 2, X]) == [(0, 2)]
    assert segments([X, 3]) == [(1, 2)]
    assert segments([X, X]) == []
    assert segments([]) == []


@pytest.mark.parametrize(
    ("n", "ratio", "steps", "batch", "want"),
    [
        (4000, 0.01, 50, 8, 400),  # the floor on steps wins over 1 %
        (4000, 0.5, 50, 8, 2000),  # the ratio wins
        (100, 0.01, 50, 8, 96),  # capped at N, in whole steps of 8
        (1000, 0.001, 1, 1, 1),
        (1001, 0.01, 1, 1, 11),  # ceil
        (1001, 0.01, 1, 4, 12),  # ceil, then up to whole steps
        (6, 0.01, 50, 8, 6),  # fewer rows than one step: all of them
    ],
)
def test_sample_count(n, ratio, steps, batch, want):
    assert sample_count(n, ratio, steps, batch) == want


def test_choose_samples_is_seeded_sorted_and_a_subset():
    eligible = list(range(0, 200, 2))
    a = choose_samples(eligible, 30, seed=1)
    assert a == choose_samples(eligible, 30, seed=1)
    assert a != choose_samples(eligible, 30, seed=2)
    assert a == sorted(a) and len(set(a)) == 30 and set(a) <= set(eligible)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=4), min_size=2, max_size=12),
    seed=st.integers(0, 10_000),
)
def test_derangement_is_a_permutation_that_moves_every_segment_to_another_row(counts, seed):
    owners = [row for row, count in enumerate(counts) for _ in range(count)]
    turns = [turn for count in counts for turn in range(count)]
    most = max(counts)
    if most > len(owners) - most:
        with pytest.raises(ShadDataError, match="more than half"):
            derange_segments(owners, turns, seed)
        return
    source = derange_segments(owners, turns, seed)
    assert sorted(source) == list(range(len(owners)))  # multiset of segments preserved
    assert all(owners[source[slot]] != owners[slot] for slot in range(len(owners)))
    assert source == derange_segments(owners, turns, seed)  # seeded


def test_derangement_keeps_turns_aligned_when_possible():
    # 4 rows with 2 turns each: first turns swap with first turns, second with second.
    owners = [0, 0, 1, 1, 2, 2, 3, 3]
    turns = [0, 1] * 4
    for seed in range(20):
        source = derange_segments(owners, turns, seed)
        assert all(turns[source[slot]] == turns[slot] for slot in range(8))


def test_derangement_merges_a_lonely_last_turn_into_lower_turns():
    owners = [0, 1, 2, 3, 2, 2]  # row 2 alone has turns 1 and 2
    turns = [0, 0, 0, 0, 1, 2]
    for seed in range(10):
        source = derange_segments(owners, turns, seed=seed)
        assert sorted(source) == list(range(6))
        assert all(owners[source[s]] != owners[s] for s in range(6))


def test_single_turn_derangement_is_a_single_cycle():
    owners = list(range(9))
    source = derange_segments(owners, [0] * 9, seed=3)
    seen, slot = set(), 0
    while slot not in seen:
        seen.add(slot)
        slot = source[slot]
    assert len(seen) == 9


def test_shuffle_one_segment_per_row_keeps_prompts_and_moves_every_response():
    rows = [row(i, [("p", [10 + i] * (i + 1)), ("r", [50 + i, 60 + i])]) for i in range(5)]
    shuffled = shuffle_rows(rows, seed=0, max_length=None)
    originals = collections.Counter(seg for r in rows for seg in response_segments(r))
    got = collections.Counter(seg for r in shuffled for seg in response_segments(r))
    assert got == originals
    for before, after in zip(rows, shuffled, strict=True):
        assert after.index == before.index
        prompt_len = segments(before.labels)[0][0]
        assert after.input_ids[:prompt_len] == before.input_ids[:prompt_len]  # prompt kept
        assert response_segments(after) != response_segments(before)
        for pos in range(len(after.input_ids)):  # provenance points at the donor's tokens
            if after.source_row[pos] >= 0:
                donor = rows[after.source_row[pos]]
                assert donor.input_ids[after.source_pos[pos]] == after.input_ids[pos]
                assert after.source_row[pos] != after.index


def test_shuffle_many_segments_per_row_replaces_each_turn_in_place():
    rows = [
        row(i, [("p", [1, 2]), ("r", [10 + i]), ("p", [3]), ("r", [20 + i, 21 + i]), ("p", [4, 5])])
        for i in range(4)
    ]
    shuffled = shuffle_rows(rows, seed=5, max_length=None)
    for before, after in zip(rows, shuffled, strict=True):
        own = set(response_segments(before))
        new = response_segments(after)
        assert len(new) == 2 and not own & set(new)
        # turn 0 got a turn-0 segment, turn 1 a turn-1 segment; the context between them stays.
        assert len(new[0]) == 1 and len(new[1]) == 2
        context = [t for t, lab in zip(after.input_ids, after.labels, strict=True) if lab == X]
        assert context == [1, 2, 3, 4, 5]
    assert collections.Counter(
        s for r in shuffled for s in response_segments(r)
    ) == collections.Counter(s for r in rows for s in response_segments(r))


def test_shuffle_retruncates_to_max_length():
    rows = [
        row(0, [("p", [1] * 6), ("r", [7, 7])]),
        row(1, [("p", [2]), ("r", [8] * 9)]),
        row(2, [("p", [3] * 3), ("r", [9] * 4)]),
    ]
    shuffled = shuffle_rows(rows, seed=0, max_length=8)
    assert all(len(r.input_ids) <= 8 for r in shuffled)
    assert all(len(r.input_ids) == len(r.labels) == len(r.source_pos) for r in shuffled)
    assert all(segments(r.labels) for r in shuffled)  # the first segment always starts inside


def test_shuffle_needs_two_rows():
    with pytest.raises(ShadDataError, match="at least 2 samples"):
        shuffle_rows([row(0, [("p", [1]), ("r", [2])])], seed=0, max_length=None)


def test_shuffle_rejects_a_row_holding_most_segments():
    rows = [
        row(0, [("r", [1]), ("p", [0]), ("r", [2]), ("p", [0]), ("r", [3])]),
        row(1, [("r", [4])]),
    ]
    with pytest.raises(ShadDataError, match=r"more than half.*shad_sample_ratio"):
        shuffle_rows(rows, seed=0, max_length=None)


def test_identical_responses_is_detected_and_still_shuffles():
    rows = [row(i, [("p", [i]), ("r", [5, 6])]) for i in range(3)]
    assert identical_responses(rows)
    assert not identical_responses([*rows, row(3, [("p", [1]), ("r", [5, 7])])])
    shuffled = shuffle_rows(rows, seed=0, max_length=None)
    assert all(r.source_row[1] != r.index for r in shuffled)
