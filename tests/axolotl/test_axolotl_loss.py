"""The Axolotl trainer's loss: same as TRL's, the same packed or padded, unchanged when inert."""

from __future__ import annotations

import copy

import pytest
import torch

pytestmark = pytest.mark.axolotl


def _loss(trainer, batch) -> torch.Tensor:
    """The trainer's loss on one batch in eval mode (no dropout; mean over the batch's samples)."""
    model = trainer.model
    model.eval()
    try:
        with torch.no_grad():
            return trainer.compute_loss(model, batch).float()
    finally:
        model.train()


def test_same_loss_as_the_trl_trainer(lora_built, rows, tmp_path):
    from datasets import Dataset

    from rft_trl.config import RFTConfig
    from rft_trl.trainer import RFTTrainer

    axolotl_trainer = lora_built.trainer
    columns = ("input_ids", "labels", "token_class")
    dataset = Dataset.from_list([{k: row[k] for k in columns} for row in rows])
    args = RFTConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        report_to=[],
        bf16=False,
        max_length=None,
        use_cpu=True,
    )
    trl_trainer = RFTTrainer(
        model=copy.deepcopy(axolotl_trainer.model),
        args=args,
        train_dataset=dataset,
        processing_class=axolotl_trainer.processing_class,
    )
    axolotl_batch = axolotl_trainer.data_collator(copy.deepcopy(rows))
    trl_batch = trl_trainer.data_collator([dict(r) for r in trl_trainer.train_dataset])
    # The layouts differ (Axolotl pads to a multiple of 64 and keeps its attention mask) ...
    assert axolotl_batch["input_ids"].shape != trl_batch["input_ids"].shape
    # ... the loss does not.
    torch.testing.assert_close(
        _loss(axolotl_trainer, axolotl_batch), _loss(trl_trainer, trl_batch), rtol=1e-5, atol=1e-6
    )


@pytest.fixture(scope="module")
def packed_built(make_config, build):
    """`sample_packing: true` (Axolotl's multipack sampler and collator) with an eval split."""
    return build(make_config("packed", sample_packing=True, val_set_size=0.25))


def _unpack(batch) -> list[dict[str, list[int]]]:
    """The samples of a packed batch (split where position_ids restart), padding dropped."""
    samples = []
    for row in range(batch["input_ids"].shape[0]):
        starts = (batch["position_ids"][row] == 0).nonzero().flatten().tolist()
        ends = [*starts[1:], batch["input_ids"].shape[1]]
        for start, end in zip(starts, ends, strict=True):
            labels = batch["labels"][row, start:end].tolist()
            if all(label == -100 for label in labels):
                continue  # the pad tail (its position_ids restart at 0 too)
            samples.append(
                {
                    "input_ids": batch["input_ids"][row, start:end].tolist(),
                    "labels": labels,
                    "token_class": batch["token_class"][row, start:end].tolist(),
                }
            )
    return samples


def test_packed_equals_padded_equals_padding_free(packed_built):
    from rft_trl.integrations.axolotl.collator import (
        RFTBatchSamplerDataCollator,
        RFTDataCollator,
        RFTV2BatchSamplerDataCollator,
    )

    trainer = packed_built.trainer
    assert isinstance(trainer.data_collator, RFTV2BatchSamplerDataCollator)
    packed = next(iter(trainer.get_train_dataloader()))
    assert "attention_mask" not in packed  # sample isolation comes from position_ids
    samples = _unpack(packed)
    assert len(samples) > packed["input_ids"].shape[0], "expected several samples per packed row"

    tokenizer = trainer.processing_class
    padded = RFTDataCollator(tokenizer, padding=True, pad_to_multiple_of=64, return_tensors="pt")(
        [{**s, "attention_mask": [1] * len(s["input_ids"])} for s in copy.deepcopy(samples)]
    )
    with_positions = [
        {**s, "position_ids": list(range(len(s["input_ids"])))} for s in copy.deepcopy(samples)
    ]
    flat = RFTBatchSamplerDataCollator(
        tokenizer, padding=True, pad_to_multiple_of=64, return_tensors="pt"
    )([with_positions])
    assert flat["input_ids"].shape[0] == 1

    packed_loss = _loss(trainer, packed)
    torch.testing.assert_close(_loss(trainer, padded), packed_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_loss(trainer, flat), packed_loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rft_setting", ["false", "absent"])
def test_inert_plugin_trains_exactly_like_no_plugin(make_config, build, rft_setting):
    from axolotl.core.trainers.base import AxolotlTrainer
    from axolotl.utils.collators.batching import DataCollatorForSeq2Seq

    # "absent": a config that never mentions RFT (the plugin loaded, as the Axolotl >= 0.20
    # entry point loads it for every run); RFT keys without the switch are refused instead.
    no_rft_keys = {"rft_temperature": None, "shad_min_steps": None, "shad_cache_dir": None}
    setting = {"rft": False} if rft_setting == "false" else {"rft": None, **no_rft_keys}
    with_plugin = build(make_config(f"inert-{rft_setting}", **setting)).trainer
    without = build(make_config("no-plugin-sft", plugins=None, **no_rft_keys, rft=None)).trainer
    for trainer in (with_plugin, without):
        assert type(trainer) is AxolotlTrainer
        assert type(trainer.data_collator) is DataCollatorForSeq2Seq
    assert with_plugin.train_dataset.column_names == without.train_dataset.column_names
    without.model.load_state_dict(with_plugin.model.state_dict())
    rows = [with_plugin.train_dataset[i] for i in range(4)]
    loss_with = _loss(with_plugin, with_plugin.data_collator(copy.deepcopy(rows)))
    loss_without = _loss(without, without.data_collator(copy.deepcopy(rows)))
    assert torch.equal(loss_with, loss_without)


def test_packed_evaluation_reports_rft_metrics(packed_built):
    """Eval rows get SHAD labels too, go through the multipack eval collator, and log the metrics."""
    trainer = packed_built.trainer
    assert "token_class" in trainer.eval_dataset.column_names
    metrics = trainer.evaluate()
    for name in ("eval_loss", "eval_reasoning_fraction", "eval_reasoning_weight"):
        assert name in metrics, metrics
    assert torch.isfinite(torch.tensor(metrics["eval_loss"]))
