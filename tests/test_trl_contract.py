"""Pins the TRL behaviour RFTTrainer builds on, in both supported TRL versions (1.9 and latest).

RFTTrainer lets `SFTTrainer.__init__` tokenize and build labels with packing off and
`max_length=None`, then truncates and packs itself (with `token_class`). If a TRL release
changes what that preparation produces, these tests say so before a user's run does.
"""

from __future__ import annotations

import pytest
from trl import SFTConfig, SFTTrainer
from trl.data_utils import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

pytestmark = pytest.mark.trl_compat

ARGS = {"use_cpu": True, "bf16": False, "report_to": "none", "max_length": None, "packing": False}


def test_preparation_tokenizes_builds_labels_and_keeps_other_columns(
    tiny_model, tiny_tokenizer, messages_dataset, tmp_path
):
    trainer = SFTTrainer(
        tiny_model,
        SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, **ARGS),
        train_dataset=messages_dataset.select(range(4)),
        processing_class=tiny_tokenizer,
    )
    columns = trainer.train_dataset.column_names
    assert {"input_ids", "labels", "sample_id"} <= set(columns)
    row = trainer.train_dataset[0]
    assert len(row["labels"]) == len(row["input_ids"])
    assert -100 in row["labels"] and any(label != -100 for label in row["labels"])


def test_pretokenized_rows_with_extra_per_token_columns_pass_through(
    tiny_model, tiny_tokenizer, tmp_path
):
    from datasets import Dataset

    rows = Dataset.from_list(
        [{"input_ids": [5, 6, 7, 8], "labels": [-100, 6, 7, 8], "token_class": [-100, 0, 1, 1]}]
    )
    trainer = SFTTrainer(
        tiny_model,
        SFTConfig(output_dir=str(tmp_path), **ARGS),
        train_dataset=rows,
        processing_class=tiny_tokenizer,
    )
    assert trainer.train_dataset[0]["token_class"] == [-100, 0, 1, 1]


def test_pack_dataset_packs_every_list_column():
    from datasets import Dataset

    data = Dataset.from_list(
        [
            {"input_ids": [1, 2, 3], "labels": [1, 2, 3], "token_class": [0, 1, 0]},
            {"input_ids": [4, 5], "labels": [4, 5], "token_class": [1, 1]},
        ]
    )
    packed = pack_dataset(data, 8, "bfd")
    assert packed[0]["token_class"] == [0, 1, 0, 1, 1]
    assert packed[0]["seq_lengths"] == [3, 2]


def test_padding_free_collator_masks_sequence_starts():
    collator = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    batch = collator(
        [{"input_ids": [1, 2, 3], "labels": [1, 2, 3]}, {"input_ids": [4, 5], "labels": [4, 5]}]
    )
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[-100, 2, 3, -100, 5]]
    assert "attention_mask" not in batch
