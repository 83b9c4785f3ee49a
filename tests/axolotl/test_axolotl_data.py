"""Data edge cases: Axolotl's truncation keeps labels aligned; data without a prompt mask is refused."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.axolotl


def test_excess_length_truncate_keeps_token_class_aligned(make_config, build):
    """Labels are computed after Axolotl truncates, so they align with the cut rows."""
    sequence_len = 512
    built = build(
        make_config("truncate", sequence_len=sequence_len, excess_length_strategy="truncate")
    )
    dataset = built.trainer.train_dataset
    lengths = [len(ids) for ids in dataset["input_ids"]]
    assert max(lengths) == sequence_len, "expected some rows to be cut to sequence_len"
    for ids, labels, classes in zip(
        dataset["input_ids"], dataset["labels"], dataset["token_class"], strict=True
    ):
        assert len(classes) == len(ids)
        assert [c == -100 for c in classes] == [label == -100 for label in labels]
    batch = next(iter(built.trainer.get_train_dataloader()))
    assert batch["token_class"].shape == batch["labels"].shape


def test_truncation_that_cuts_every_response_is_refused(make_config, build):
    """At 256 tokens every row ends inside its (long, tool-listing) prompt: nothing to train."""
    from rft_trl.shad import ShadDataError

    config = make_config("truncate-all", sequence_len=256, excess_length_strategy="truncate")
    with pytest.raises(ShadDataError, match="no response tokens"):
        build(config)


def test_data_without_a_prompt_mask_is_refused(make_config, build, assets, work_dir):
    """`type: completion` trains every token: nothing for SHAD/RFT to weigh, so fail clearly."""
    from rft_trl.dataset_ops import NoResponseTokensError

    text_file = work_dir / "completion.jsonl"
    with (assets / "train.jsonl").open() as source, text_file.open("w") as out:
        for line in source:
            messages = json.loads(line)["messages"]
            out.write(json.dumps({"text": "\n".join(m["content"] for m in messages)}) + "\n")
    config = make_config(
        "completion",
        datasets=[{"path": str(text_file), "ds_type": "json", "type": "completion"}],
        sequence_len=256,
        excess_length_strategy="truncate",
    )
    with pytest.raises(NoResponseTokensError, match="roles_to_train"):
        build(config)
