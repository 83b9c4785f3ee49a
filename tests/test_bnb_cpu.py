"""A no-grad eval forward (SHAD scoring, evaluation) must not change later QLoRA gradients on CPU."""

from __future__ import annotations

import pytest
import torch

from rft_trl.loss import shift_targets
from rft_trl.modeling import forward_token_logprobs

import tiny_rows

pytestmark = pytest.mark.trl_compat


def _qlora_model(path):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32
        ),
        dtype=torch.float32,
    )
    return get_peft_model(model, tiny_rows.lora())


def _grad_norm(model, ids) -> float:
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    return (
        torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm().item()
    )


def test_scoring_forward_leaves_4bit_training_intact(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    # hidden 128: 4-bit blocks of 64 fit, so bitsandbytes' CPU repacking path is reachable
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    ids = torch.tensor([tiny_rows.rows(1)[0]["input_ids"]])
    clean = _grad_norm(_qlora_model(tmp_path), ids)

    model = _qlora_model(tmp_path)
    model.eval()
    with torch.no_grad():
        logp = forward_token_logprobs(model, {"input_ids": ids}, shift_targets(ids))
    assert torch.isfinite(logp).all()
    assert _grad_norm(model, ids) == pytest.approx(clean, rel=1e-6)
