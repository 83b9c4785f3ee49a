"""SPEC §4 invariants 1-3 for RFTTrainer: GA/DDP splitting, packing/padding-free, all-reasoning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import tiny_rows
from trainer_worker import build_trainer, one_step

pytestmark = pytest.mark.trl_compat

HERE = Path(__file__).parent
RTOL = 1e-5


def assert_same_update(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    """Every parameter update agrees to RTOL relative to its norm (fp32 summation order differs)."""
    assert got.keys() == want.keys()
    for name in want:
        err = (got[name] - want[name]).norm() / want[name].norm().clamp(min=1e-12)
        assert err.item() <= RTOL, f"{name}: relative error {err.item():.2e}"
        assert want[name].abs().max() > 0, f"{name} got no update"


@pytest.fixture(scope="module")
def reference():
    """8 x GA 1 per scope: the whole global batch in one micro-batch (then an evaluation)."""
    return {
        scope: one_step(8, 1, rft_group_scope=scope, eval_dataset=tiny_rows.dataset(8, seed=1))
        for scope in ("sample", "batch")
    }


@pytest.mark.parametrize("scope", ["sample", "batch"])
def test_gradient_accumulation_gives_same_loss_and_update(reference, scope):
    loss, update, _ = one_step(2, 4, rft_group_scope=scope)
    ref_loss, ref_update, _ = reference[scope]
    assert loss == pytest.approx(ref_loss, rel=RTOL)
    assert_same_update(update, ref_update)


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["sample", "batch"])
def test_two_processes_give_same_loss_and_update(reference, scope, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(HERE / "trainer_worker.py"),
        "--per-device",
        "2",
        "--grad-accum",
        "2",
        "--scope",
        scope,
        "--out",
        str(out),
        "--eval-rows",
        "8",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "still referenced" not in proc.stderr  # the worker's trainer died before shut_down
    result = json.loads(Path(str(out) + ".json").read_text())
    assert result["world_size"] == 2
    ref_loss, ref_update, ref_log = reference[scope]
    assert result["loss"] == pytest.approx(ref_loss, rel=RTOL)
    assert_same_update(load_file(str(out) + ".safetensors"), ref_update)
    # Evaluation in micro-batches of 2 rows: each rank's loss is its own micro-batch's, and
    # Trainer averages them, as one process does over the same micro-batches (of the same
    # model, up to the update's RTOL).
    assert result["log"]["eval_loss"] == pytest.approx(ref_log["eval_loss"], rel=10 * RTOL)


def test_packing_and_padding_free_match_padded(reference):
    ref_loss, ref_update, _ = reference["sample"]
    packed_loss, packed_update, _ = one_step(
        8, 1, packing=True, packing_strategy="bfd", max_length=128
    )
    assert packed_loss == pytest.approx(ref_loss, rel=RTOL)
    assert_same_update(packed_update, ref_update)
    free_loss, free_update, _ = one_step(8, 1, padding_free=True)
    assert free_loss == pytest.approx(ref_loss, rel=RTOL)
    assert_same_update(free_update, ref_update)


def test_all_reasoning_equals_per_sample_mean_sft():
    data = tiny_rows.dataset(8, all_reasoning=True)
    trainer = build_trainer(8, 1, dataset=data)
    per_sample = []
    with torch.no_grad():
        for row in data:
            logits = trainer.model(input_ids=torch.tensor([row["input_ids"]])).logits[0, :-1]
            target = torch.tensor(row["labels"][1:])
            per_sample.append(torch.nn.functional.cross_entropy(logits, target, ignore_index=-100))
    trainer.train()
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert log["loss"] == pytest.approx(torch.stack(per_sample).mean().item(), rel=RTOL)
    assert log["reasoning_fraction"] == 1.0
    assert log["reasoning_weight"] == 1.0
