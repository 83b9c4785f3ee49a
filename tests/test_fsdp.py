"""`forward_token_logprobs` under FSDP2 (`fully_shard`, gloo, 2 ranks under torchrun): the same
log-probs and gradients as the unsharded model. FSDP2 holds the LM head as a sharded DTensor
outside the forward and swaps in the gathered parameter only while the root module runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

RANK_SCRIPT = """
import json, sys
import torch, torch.distributed as td
from torch.distributed.fsdp import fully_shard
from transformers import LlamaConfig, LlamaForCausalLM
from rft_trl import dist
from rft_trl.loss import IGNORE_INDEX, shift_targets
from rft_trl.modeling import forward_token_logprobs

td.init_process_group("gloo")
torch.manual_seed(0)  # the same model and batch on both ranks
config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                     num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                     tie_word_embeddings=sys.argv[2] == "tied")
model = LlamaForCausalLM(config)
ids = torch.randint(0, 64, (2, 10))
labels = ids.clone()
labels[0, :3] = IGNORE_INDEX
targets = shift_targets(labels)

want = forward_token_logprobs(model, {"input_ids": ids}, targets)
(-want.sum()).backward()
want_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
model.zero_grad(set_to_none=True)

for layer in model.model.layers:
    fully_shard(layer)
fully_shard(model)  # the root unit holds the embeddings, the final norm and the LM head
record = {"head_sharded": type(model.lm_head.weight).__name__}
got = forward_token_logprobs(model, {"input_ids": ids}, targets)
(-got.sum()).backward()  # identical batches: FSDP's averaged gradient is each rank's own
record["logp_diff"] = (got - want).abs().max().item()
record["grad_diff"] = {
    name: (p.grad.full_tensor() - want_grads[name]).abs().max().item()
    for name, p in model.named_parameters()
}
with open(f"{sys.argv[1]}/rank{td.get_rank()}.json", "w") as handle:
    json.dump(record, handle)
del model, got, want
dist.shut_down()
"""


@pytest.mark.slow
@pytest.mark.parametrize("embeddings", ["untied", "tied"])
def test_logprobs_and_gradients_under_fully_shard(tmp_path, embeddings):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(script), str(tmp_path), embeddings,
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        record = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert record["head_sharded"] == "DTensor"  # what the hook must not use as it is
        assert record["logp_diff"] <= 1e-6
        assert len(record["grad_diff"]) >= 20  # every parameter received its gradient
        assert max(record["grad_diff"].values()) <= 1e-6, record["grad_diff"]
