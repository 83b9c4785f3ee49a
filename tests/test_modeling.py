"""`forward_token_logprobs` on real transformers architectures: the log-probs the model's own
logits give, for heads that scale or softcap their logits."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, CohereConfig, GraniteConfig, LlamaConfig

from rft_trl.loss import IGNORE_INDEX, shift_targets
from rft_trl.modeling import forward_token_logprobs, logit_scale

pytestmark = pytest.mark.trl_compat

TINY = {
    "vocab_size": 64,
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 64,
}

CONFIGS = {
    "llama": (LlamaConfig(**TINY), 1.0),
    "granite": (GraniteConfig(**TINY, logits_scaling=4.0), 0.25),  # logits / logits_scaling
    "cohere": (CohereConfig(**TINY, logit_scale=0.5), 0.5),  # logits * logit_scale
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_logprobs_match_the_models_own_logits(name):
    config, scale = CONFIGS[name]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).double()
    assert logit_scale(model) == pytest.approx(scale)
    ids = torch.randint(0, 64, (2, 10))
    labels = ids.clone()
    labels[0, :3] = IGNORE_INDEX
    targets = shift_targets(labels)

    got = forward_token_logprobs(model, {"input_ids": ids}, targets, chunk_size=5)

    logits = model(input_ids=ids).logits
    want = torch.log_softmax(logits, -1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    want = want * (targets != IGNORE_INDEX)
    torch.testing.assert_close(got.double(), want, rtol=1e-9, atol=1e-10)
