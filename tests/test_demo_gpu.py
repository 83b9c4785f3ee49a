"""`rft-trl demo --device cuda`: the quick path on one GPU, and the demo's evaluation helpers there (skipped without CUDA)."""

from __future__ import annotations

import json

import pytest
import torch

from rft_trl.cli import main

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_quick_demo_on_cuda_writes_its_metrics_and_report(tmp_path):
    out = tmp_path / "out"
    argv = ["demo", "--quick", "--device", "cuda", "--out", str(out), "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["device"] == "cuda" and metrics["versions"]["gpu"]
    assert metrics["base"]["fingerprint"].endswith("-cuda")  # cached apart from a CPU build
    for name in ("sft_exact_match", "rft_exact_match", "sft_format_valid", "shad_token_accuracy"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_group_losses_and_generation_on_cuda_match_the_cpu(tiny_model, tiny_tokenizer, tmp_path):
    from rft_trl.demo.generation import generate_responses
    from rft_trl.demo.metrics import group_losses, pad_batches
    from rft_trl.demo.pipeline import demo_data, settings_for

    splits = demo_data(tiny_tokenizer, settings_for(tmp_path, seed=1, quick=True, n_test=6))
    columns = ("input_ids", "labels", "gt_class", "gt_category")
    rows = [
        dict(zip(columns, r, strict=True))
        for r in zip(*(splits.test[c] for c in columns), strict=True)
    ]
    batches = pad_batches(rows, tiny_tokenizer.pad_token_id, 4)
    on_cpu = group_losses(tiny_model, batches)
    samples = splits.test_samples[:4]
    text_cpu = generate_responses(
        tiny_model, tiny_tokenizer, samples, max_new_tokens=8, progress=False
    )
    tiny_model.to("cuda")
    try:
        on_cuda = group_losses(tiny_model, batches)
        text_cuda = generate_responses(
            tiny_model, tiny_tokenizer, samples, max_new_tokens=8, progress=False
        )
    finally:
        tiny_model.to("cpu")
    for key in ("boilerplate_loss", "reasoning_loss", "loss"):
        assert on_cuda[key] == pytest.approx(on_cpu[key], rel=1e-4)
    assert on_cuda["category_loss"] == pytest.approx(on_cpu["category_loss"], rel=1e-4)
    assert len(text_cuda) == len(text_cpu) == 4 and all(isinstance(t, str) for t in text_cuda)
