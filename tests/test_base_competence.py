"""`benchmarks/base_competence.py`: scores a real (tiny) demo base and refuses bad input clearly."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from rft_trl.demo.base_model import BaseRecipe, get_base

TINY = BaseRecipe(
    vocab_size=300,
    tokenizer_samples=40,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=64,
    pretrain_steps=2,
    batch_size=2,
    block_size=32,
    warmup_steps=1,
)

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "base_competence.py"


def _module():
    spec = importlib.util.spec_from_file_location("base_competence", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_competence_of_an_untrained_base_is_zero_exact_and_counts_every_sample(
    tmp_path, single_thread_torch
):
    model, tokenizer = get_base(TINY, tmp_path, progress=False, log=lambda _: None).load()
    result = _module().competence(model, tokenizer, samples=4, seed=1)
    assert result["samples"] == 4
    # two pretraining steps cannot write a whole call; the tool-name share is a fraction of 4
    assert result["first_call_exact"] == 0.0
    assert result["tool_name"] in {0.0, 0.25, 0.5, 0.75, 1.0}


def test_a_missing_base_folder_is_refused_with_the_fix(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--base", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "is not a folder" in done.stderr and "rft-trl demo" in done.stderr
