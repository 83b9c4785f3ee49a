"""Where TRL's SFTTrainer spends its LM-head time on CPU: its fused head vs full logits vs ours.

At one model size's shapes (the padded batch of `rows`), forward + backward of the per-token
log-probs with a frozen head and hidden states that need a gradient (LoRA). Variants run in turn
in one process, several rounds, so they see the same load; peak RSS above the inputs per call.
"""

from __future__ import annotations

import time
from typing import Any

import _perf_setup as setup
import torch

VARIANTS = (
    "trl_fused_all_positions_with_metrics",  # what SFTTrainer 1.16 runs on CPU
    "trl_fused_all_positions_logprobs_only",  # the same without entropy / token accuracy
    "trl_fused_response_positions_with_metrics",  # what it runs on CUDA (Triton, compacted)
    "full_logits_cross_entropy",  # the plain SFT baseline
    "rft_token_logprobs",  # rft_trl.loss.token_logprobs (response positions only)
)


def _inputs(size: setup.ModelSize, seed: int = 0):
    """Hidden states, the frozen head and shifted targets of one padded batch of `size`."""
    torch.manual_seed(seed)
    batch = setup.rows(size.batch_size, size, seed)
    width = max(len(r["input_ids"]) for r in batch)
    labels = torch.full((len(batch), width), -100)
    for i, row in enumerate(batch):
        labels[i, : len(row["labels"])] = torch.tensor(row["labels"])
    targets = torch.full_like(labels, -100)
    targets[:, :-1] = labels[:, 1:]
    hidden = torch.randn(len(batch), width, size.hidden_size, requires_grad=True)
    weight = torch.randn(size.vocab_size, size.hidden_size) * size.hidden_size**-0.5
    return hidden, weight, targets


def _trl(hidden, weight, targets, *, compact: bool, outputs: tuple[str, ...]):
    """TRL's `_fused_forward` LM-head part: its kernel, masking and token-mean loss."""
    from trl.kernels import ChunkedLogProbFunction

    mask = targets != -100
    if compact:
        per_token = ChunkedLogProbFunction.apply(
            hidden[mask], weight, None, targets[mask], 1.0, 32768, None, 1.0, outputs
        )
        logp = hidden.new_zeros(mask.shape).masked_scatter(mask, per_token[0])
    else:
        flat = hidden.reshape(-1, hidden.shape[-1])
        per_token = ChunkedLogProbFunction.apply(
            flat, weight, None, targets.clamp(min=0).reshape(-1), 1.0, 32768, None, 1.0, outputs
        )
        logp = per_token[0].view(mask.shape).masked_fill(~mask, 0)
    if "entropy" in outputs:  # SFTTrainer's per-step metrics (read with .item() each step)
        float(per_token[1].detach().sum() / mask.sum())
        float(per_token[4].sum() / mask.sum())
    return -logp.sum() / mask.sum()


def _loss(variant: str, hidden, weight, targets) -> torch.Tensor:
    if variant == "trl_fused_all_positions_with_metrics":
        return _trl(
            hidden, weight, targets, compact=False, outputs=("log_probs", "entropy", "is_top1")
        )
    if variant == "trl_fused_all_positions_logprobs_only":
        return _trl(hidden, weight, targets, compact=False, outputs=("log_probs",))
    if variant == "trl_fused_response_positions_with_metrics":
        return _trl(
            hidden, weight, targets, compact=True, outputs=("log_probs", "entropy", "is_top1")
        )
    if variant == "full_logits_cross_entropy":
        logits = (hidden @ weight.t()).float()
        return torch.nn.functional.cross_entropy(
            logits.view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
        )
    from rft_trl.loss import token_logprobs

    mask = targets != -100
    return -token_logprobs(hidden, weight, targets).sum() / mask.sum()


def run(spec: dict[str, Any], baton) -> dict[str, Any]:
    """Median wall/CPU seconds and peak RSS above the inputs of each variant (fwd + bwd)."""
    size = setup.SIZES[spec["size"]]
    hidden, weight, targets = _inputs(size)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    peak: dict[str, int] = {}
    for round_ in range(spec["rounds"] + 1):
        for variant in VARIANTS:
            hidden.grad = None
            base = setup.rss_bytes()
            setup.reset_peak_rss()
            wall, proc = time.perf_counter(), time.process_time()
            _loss(variant, hidden, weight, targets).backward()
            wall, proc = time.perf_counter() - wall, time.process_time() - proc
            peak[variant] = max(peak.get(variant, 0), setup.peak_rss_bytes() - base)
            if round_:  # round 0 warms up
                times[variant].append(wall)
                cpu[variant].append(proc)
    positions = targets.numel()
    return {
        "positions": positions,
        "response_positions": int((targets != -100).sum()),
        "vocab": size.vocab_size,
        "hidden": size.hidden_size,
        "wall": {v: sorted(t)[len(t) // 2] for v, t in times.items()},
        "cpu": {v: sorted(t)[len(t) // 2] for v, t in cpu.items()},
        "peak_above_inputs": peak,
    }
