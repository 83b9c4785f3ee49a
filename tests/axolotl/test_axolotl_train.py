"""End to end: `axolotl train` with `rft: true` (LoRA through the real CLI, QLoRA in process)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.axolotl, pytest.mark.slow]

RFT_METRICS = ("reasoning_fraction", "reasoning_weight", "boilerplate_loss", "reasoning_loss")


def test_cli_lora_run_logs_rft_metrics_and_fills_the_shad_cache(
    lora_cli_run, parse_log_metrics, work_dir
):
    steps = parse_log_metrics(lora_cli_run)
    assert len(steps) == 2, lora_cli_run[-4000:]
    for step in steps:
        for name in RFT_METRICS:
            assert name in step, (name, step)
        assert math.isfinite(float(step["loss"]))
        assert 0.0 <= float(step["reasoning_weight"]) <= 1.0
    assert "SHAD token labels ready" in lora_cli_run
    assert re.search(r"cache:\s+miss", lora_cli_run)
    entries = [p for p in (work_dir / "shad-cache").rglob("*") if p.is_file()]
    assert entries, "SHAD wrote nothing to shad_cache_dir"


def test_second_run_hits_the_shad_cache(lora_built):
    trainer = lora_built.trainer
    assert trainer.rft_shad_report.cache == "hit"


def test_labels_are_aligned_and_kept_through_column_filtering(lora_built):
    trainer = lora_built.trainer
    dataset = trainer.train_dataset
    assert "token_class" in dataset.column_names
    assert not {"shad_l_o", "shad_l_s"} & set(dataset.column_names)
    # Pins transformers' private column filter that the trainer extends (5.16: Trainer.
    # _set_signature_columns_if_needed / _remove_unused_columns): an unused column goes, ours stays.
    probe = dataset.add_column("unused", [0] * len(dataset))
    kept = trainer._remove_unused_columns(probe, description="training")
    assert "token_class" in kept.column_names
    assert "unused" not in kept.column_names
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["token_class"].shape == batch["labels"].shape
    assert torch.equal(batch["token_class"] == -100, batch["labels"] == -100)


@pytest.fixture(params=["sample", "batch"])
def group_scope(request, lora_built):
    """Run a test under each `rft_group_scope` (batch scope adds the no-grad pre-pass)."""
    options = lora_built.trainer.rft_options
    saved = options["rft_group_scope"]
    options["rft_group_scope"] = request.param
    yield request.param
    options["rft_group_scope"] = saved


def test_gradient_accumulation_is_exact(lora_built, rows, group_scope):
    """2 micro-batches x GA 2 give the gradient of one batch of 4 (Axolotl's GA division undone)."""
    trainer = lora_built.trainer
    model = trainer.model
    collate = trainer.data_collator
    device = trainer.args.device

    def grads(micro_batches):
        model.zero_grad()
        batches, count = trainer.get_batch_samples(iter(micro_batches), len(micro_batches), device)
        losses = [trainer.training_step(model, batch, count) for batch in batches]
        found = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad()
        return sum(float(loss) for loss in losses), found, int(count)

    loss_ga, grads_ga, count_ga = grads([collate(rows[:2]), collate(rows[2:])])
    loss_one, grads_one, count_one = grads([collate(rows)])
    assert count_ga == count_one == 4
    assert loss_ga == pytest.approx(loss_one, rel=1e-5)
    assert grads_ga.keys() == grads_one.keys() and grads_ga
    for name, grad in grads_one.items():  # per-tensor relative error, as in SPEC §4.1
        error = (grads_ga[name] - grad).norm() / grad.norm().clamp(min=1e-12)
        assert error <= 1e-5, (name, float(error))


def test_qlora_run_trains_with_rft(make_config, build):
    config = make_config("qlora", adapter="qlora", load_in_4bit=True)
    built = build(config)
    trainer = built.trainer
    report = trainer.rft_shad_report
    assert report.cache == "miss"  # a 4-bit base is another model: its own cache entry
    assert Path(report.cache_entry).exists()
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logged) == 2
    for entry in logged:
        assert all(name in entry for name in RFT_METRICS), entry
        assert math.isfinite(entry["loss"])
    # Axolotl's throughput metrics (include_tkps) are counted under RFT's loss too
    assert trainer.args.include_tkps
    assert 0 < float(trainer.state.tokens["trainable"]) < float(trainer.state.tokens["total"])
    assert "tokens/trainable" in logged[-1], logged[-1]


def test_run_saves_labels_that_shad_labels_path_reuses(lora_built, make_config, work_dir, build):
    """The CLI run wrote <output_dir>/_shad_labels; a later run can train from them without SHAD."""
    from rft_trl.shad.labels_io import LabelsDir

    saved = work_dir / "lora" / "out" / "_shad_labels"
    assert LabelsDir(saved).tokenizer_path is not None  # `rft-trl inspect` can show tokens
    built = build(make_config("from-labels", shad_labels_path=str(saved)))
    trainer = built.trainer
    assert trainer.rft_shad_report.cache.startswith("labels from")
    assert trainer.train_dataset["token_class"] == lora_built.trainer.train_dataset["token_class"]


def test_shad_labels_path_replaces_labels_the_rows_carry(lora_built, work_dir):
    """As in RFTTrainer: stored labels, re-thresholded at `shad_threshold`, win over a
    `token_class` column the rows already carry (it was kept as it was, the path ignored)."""
    import copy

    from rft_trl.shad import ShadLabelsError

    trainer = copy.copy(lora_built.trainer)  # enable_rft replaces attributes, not the originals
    assert "token_class" in trainer.train_dataset.column_names
    saved = work_dir / "lora" / "out" / "_shad_labels"
    options = {**trainer.rft_options, "shad_labels_path": str(saved), "shad_threshold": 100.0}
    trainer.enable_rft(options, max_length=lora_built.cfg.sequence_len)
    assert {c for row in trainer.train_dataset["token_class"] for c in row} == {-100, 0}
    missing = {**options, "shad_labels_path": str(work_dir / "no-such-labels")}
    with pytest.raises(ShadLabelsError, match="no-such-labels"):
        copy.copy(lora_built.trainer).enable_rft(missing, max_length=lora_built.cfg.sequence_len)


def test_training_refuses_to_start_without_the_plugin_hook(axolotl_available):
    """A trainer built without `post_trainer_create` has no labels: it must not train plain SFT."""
    from rft_trl.integrations.axolotl.trainer import RFTAxolotlTrainer, RFTNotEnabledError

    trainer = RFTAxolotlTrainer.__new__(RFTAxolotlTrainer)
    trainer.rft_options = None
    with pytest.raises(RFTNotEnabledError, match="plugins:"):
        trainer.train()
