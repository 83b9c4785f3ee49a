"""Peak memory of per-token log-probs (forward + backward) vs vocabulary size (RSS or CUDA).

The LM head is frozen and the hidden states need a gradient, as under LoRA/QLoRA. Compared:
`token_logprobs` (chunked, the RFT path) and `naive_token_logprobs` (full logits + log-softmax).
"""

from __future__ import annotations

import time
from typing import Any

import _perf_setup as setup
import torch

IMPLS = ("chunked", "naive")


def run(spec: dict[str, Any], baton) -> dict[str, Any]:
    """`measure` for each case of `spec['cases']`, in this process, one after the other."""
    return {"cases": [measure(case) for case in spec["cases"]]}


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS above the inputs for one (vocab, impl), and the chunk it used."""
    from rft_trl.loss import default_chunk_size, naive_token_logprobs, token_logprobs

    vocab, hidden_size = spec["vocab"], spec["hidden_size"]
    batch, seq = spec["batch"], spec["seq_len"]
    device = spec.get("device", "cpu")
    torch.manual_seed(0)
    hidden = torch.randn(batch, seq, hidden_size, device=device, requires_grad=True)
    weight = torch.randn(vocab, hidden_size, device=device) * hidden_size**-0.5
    targets = torch.randint(0, vocab, (batch, seq), device=device)
    chunk = spec.get("chunk_size") or default_chunk_size(vocab)
    meter = setup.MemoryMeter(device)
    baseline = meter.start()
    started = time.perf_counter()
    if spec["impl"] == "chunked":
        logp = token_logprobs(hidden, weight, targets, chunk_size=chunk)
    else:
        logp = naive_token_logprobs(hidden, weight, targets)
    logp.sum().backward()
    peak = meter.peak()
    seconds = time.perf_counter() - started
    positions = batch * seq
    del logp, hidden, weight, targets
    return {
        **spec,
        "peak_above_inputs": peak - baseline,
        "chunk_rows": min(chunk, positions) if spec["impl"] == "chunked" else positions,
        "chunk_bytes": 4 * vocab * (min(chunk, positions) if spec["impl"] == "chunked" else 0),
        "full_logits_bytes": 4 * vocab * positions,
        "seconds": seconds,
    }
