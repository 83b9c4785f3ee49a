"""SHAD on CUDA: fp32 labels match the CPU run's, bf16 labels match where LD is clear (skipped without CUDA).

Written for one visible GPU: with several, the Trainer's DataParallel tune would differ from the
CPU run's for reasons of its own (run with CUDA_VISIBLE_DEVICES=0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, TrainingArguments

from rft_trl.shad import ShadResult, ShadSettings, label_dataset

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

MAX_LENGTH = 640  # the length of the conftest's `shad_traces`


def label(model, data, tmp_path: Path, name: str, tokenizer, **args) -> ShadResult:
    """`label_dataset` with a 2-step shuffle-tune and its own cache (no entry is shared)."""
    training_args = TrainingArguments(
        output_dir=str(tmp_path / name),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=5e-3,
        report_to=[],
        seed=0,
        **args,
    )
    settings = ShadSettings(min_steps=2, cache_dir=str(tmp_path / name / "cache"))
    return label_dataset(
        model,
        data,
        settings=settings,
        training_args=training_args,
        tokenizer=tokenizer,
        max_length=MAX_LENGTH,
        progress=False,
    )


def response_values(result: ShadResult, column: str) -> np.ndarray:
    """`column` over every response token (labels != -100), all rows concatenated."""
    data = result.dataset
    return np.concatenate(
        [
            np.asarray(values)[np.asarray(labels) != -100]
            for values, labels in zip(data[column], data["labels"], strict=True)
        ]
    )


def weights(model) -> dict[str, torch.Tensor]:
    """A copy of the model's state, to check that labelling gives it back unchanged."""
    return {k: v.clone() for k, v in model.state_dict().items()}


def ld(result: ShadResult) -> np.ndarray:
    """SHAD's loss difference l_s - l_o over every response token."""
    return response_values(result, "shad_l_s") - response_values(result, "shad_l_o")


@pytest.fixture(scope="module")
def cpu_result(tiny_checkpoint, shad_traces, tmp_path_factory, tiny_tokenizer) -> ShadResult:
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    tmp = tmp_path_factory.mktemp("cpu")
    return label(model, shad_traces, tmp, "cpu", tiny_tokenizer, use_cpu=True)


def test_fp32_on_cuda_matches_cpu_and_leaves_the_model_as_it_was(
    tiny_checkpoint, shad_traces, tmp_path, tiny_tokenizer, cpu_result
):
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).to("cuda")
    before = weights(model)
    gpu = label(model, shad_traces, tmp_path, "gpu", tiny_tokenizer)
    after = model.state_dict()
    assert all(v.device.type == "cuda" and torch.equal(before[k], v) for k, v in after.items())
    assert gpu.report.tune_steps == cpu_result.report.tune_steps == 2
    for column, atol in (("shad_l_o", 1e-3), ("shad_l_s", 1e-2)):
        np.testing.assert_allclose(
            response_values(gpu, column), response_values(cpu_result, column), atol=atol
        )
    ld_gpu, ld_cpu = ld(gpu), ld(cpu_result)
    assert np.abs(ld_gpu - ld_cpu).max() < 1e-2
    clear = np.abs(ld_cpu) > 1e-2  # ~90 % of the tokens; the rest sit at the threshold
    assert clear.mean() > 0.5
    # implied by the LD bound at the default threshold 0; checks `token_class` follows the GPU's LD
    gpu_cls, cpu_cls = (response_values(r, "token_class") for r in (gpu, cpu_result))
    np.testing.assert_array_equal(gpu_cls[clear], cpu_cls[clear])


def test_bf16_labels_agree_with_fp32_where_ld_is_clear(
    tiny_checkpoint, shad_traces, tmp_path, tiny_tokenizer, cpu_result
):
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).to("cuda")
    before = weights(model)
    bf16 = label(model, shad_traces, tmp_path, "bf16", tiny_tokenizer, bf16=True)
    after = model.state_dict()  # autocast only: the fp32 weights come back as they were
    assert all(v.dtype == torch.float32 and torch.equal(before[k], v) for k, v in after.items())
    l_o, ref = response_values(bf16, "shad_l_o"), response_values(cpu_result, "shad_l_o")
    assert np.isfinite(l_o).all() and np.abs(l_o - ref).mean() < 0.05
    clear = np.abs(ld(cpu_result)) > 0.2  # bf16 moves a token's loss by a few hundredths
    assert clear.mean() > 0.2
    bf16_cls, cpu_cls = (response_values(r, "token_class") for r in (bf16, cpu_result))
    assert (bf16_cls[clear] == cpu_cls[clear]).mean() > 0.97
