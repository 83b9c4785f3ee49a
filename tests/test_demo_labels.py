"""The evidence benchmark's alternative labels and where each puts the loss's weight: exact outputs on hand-made rows."""

import pytest

from rft_trl.demo.baselines import ground_truth_labels, one_group_labels
from rft_trl.synthetic import CATEGORY_ID, IGNORE_INDEX

FMT, STOCK, VALUE, TEMPLATE = (
    CATEGORY_ID[c] for c in ("format", "stock_phrase", "argument_value", "template")
)
GT_CLASS = [[IGNORE_INDEX, 0, 1, 0, 0], [0, 1, IGNORE_INDEX]]
GT_CATEGORY = [[IGNORE_INDEX, FMT, VALUE, STOCK, TEMPLATE], [FMT, VALUE, IGNORE_INDEX]]


def test_ground_truth_labels_copy_the_classes():
    assert ground_truth_labels(GT_CLASS) == GT_CLASS
    assert ground_truth_labels(GT_CLASS, GT_CATEGORY) == GT_CLASS


def test_as_reasoning_moves_only_the_named_categories_and_keeps_the_loss_mask():
    moved = ground_truth_labels(GT_CLASS, GT_CATEGORY, ["format"])
    assert moved == [[IGNORE_INDEX, 1, 1, 0, 0], [1, 1, IGNORE_INDEX]]
    both = ground_truth_labels(GT_CLASS, GT_CATEGORY, ["format", "template"])
    assert both == [[IGNORE_INDEX, 1, 1, 0, 1], [1, 1, IGNORE_INDEX]]
    assert GT_CLASS[0] == [IGNORE_INDEX, 0, 1, 0, 0]  # the input is not changed


def test_as_reasoning_refuses_unknown_categories_and_a_missing_category_column():
    with pytest.raises(ValueError, match=r"\['formats'\] are not categories"):
        ground_truth_labels(GT_CLASS, GT_CATEGORY, ["formats"])
    with pytest.raises(ValueError, match="needs gt_category"):
        ground_truth_labels(GT_CLASS, None, ["format"])


def test_one_group_labels_put_every_response_token_in_the_reasoning_group():
    labels = [[IGNORE_INDEX, 5, 7], [9, IGNORE_INDEX]]
    assert one_group_labels(labels) == [[IGNORE_INDEX, 1, 1], [1, IGNORE_INDEX]]


def test_loss_weight_shares_follow_group_sizes_not_token_counts():
    from rft_trl.demo.metrics import loss_weight_shares

    # sample 1: one reasoning value token, three format tokens; sample 2: reasoning only
    classes = [[IGNORE_INDEX, 1, 0, 0, 0], [1, 1]]
    categories = [[IGNORE_INDEX, VALUE, FMT, FMT, FMT], [VALUE, VALUE]]
    sft = loss_weight_shares(classes, categories, None)
    assert sft["argument_value"] == pytest.approx(3 / 6) and sft["format"] == pytest.approx(3 / 6)
    # RFT at w_r = 0.5: sample 1 gives the value token 0.5 and the format tokens 0.5 together;
    # sample 2 has one group, which gets weight 1
    rft = loss_weight_shares(classes, categories, 0.5)
    assert rft["argument_value"] == pytest.approx(1.5 / 2) and rft["format"] == pytest.approx(
        0.5 / 2
    )
    fixed = loss_weight_shares(classes, categories, 0.75)
    assert fixed["argument_value"] == pytest.approx(1.75 / 2) and fixed["format"] == pytest.approx(
        0.25 / 2
    )
    assert sum(rft.values()) == pytest.approx(1.0) and rft["stock_phrase"] == 0.0
