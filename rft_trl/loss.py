"""The maths of RFT, as pure functions of tensors (no trainer, no TRL).

- `shift_targets` / `sample_index`: which token each position predicts, and which sample it
  belongs to, for padded, packed and padding-free batches alike.
- `token_logprobs`: log p(target) per position from hidden states and the LM-head weight, in
  chunks, without materialising (batch, seq, vocab) logits.
- `rft_loss`: the reasoning-highlighted loss (Ye et al. 2025: per sample, softmax weights over
  its boilerplate and reasoning mean losses) as a *sum* over samples, so a caller can divide
  by the global sample count of the optimizer step (exact under gradient accumulation and data
  parallelism).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE_INDEX = -100
BOILERPLATE = 0
REASONING = 1

# Chunk size target: about this many bytes of fp32 logits per chunk.
_CHUNK_BYTES = 256 * 1024 * 1024


def shift_targets(labels: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Targets aligned with the positions that predict them: `targets[:, t] = labels[:, t + 1]`.

    The last position of a row and the position before each sequence start (a `position_ids`
    reset, as in packed or padding-free batches) predict nothing and get `IGNORE_INDEX`.
    """
    targets = torch.full_like(labels, IGNORE_INDEX)
    targets[:, :-1] = labels[:, 1:]
    if position_ids is not None:
        starts_next = torch.zeros_like(labels, dtype=torch.bool)
        starts_next[:, :-1] = position_ids[:, 1:] == 0
        targets = targets.masked_fill(starts_next, IGNORE_INDEX)
    return targets


def shift_token_class(token_class: torch.Tensor) -> torch.Tensor:
    """`token_class` of the token each position predicts (same shift as `shift_targets`)."""
    shifted = torch.full_like(token_class, IGNORE_INDEX)
    shifted[:, :-1] = token_class[:, 1:]
    return shifted


def sample_index(shape: torch.Size, position_ids: torch.Tensor | None, device=None) -> torch.Tensor:
    """A sample id per position, counted over the flattened batch.

    A sample starts at each row start and at each `position_ids` reset to 0, so packed and
    padding-free rows give one id per packed sequence, and padded rows one id per row.
    """
    batch, length = shape[0], shape[1]
    starts = torch.zeros(batch, length, dtype=torch.bool, device=device)
    starts[:, 0] = True
    if position_ids is not None:
        starts |= position_ids.to(device) == 0
    return starts.flatten().cumsum(0).view(batch, length) - 1


def count_samples(targets: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """Number of samples with at least one target token (those that enter the loss).

    A scatter-add instead of boolean indexing, so it never waits for the device (no host sync).
    """
    valid = (targets.reshape(-1) != IGNORE_INDEX).to(torch.int32)
    per_sample = torch.zeros(samples.numel(), dtype=torch.int32, device=targets.device)
    per_sample.index_add_(0, samples.reshape(-1).to(targets.device), valid)
    return (per_sample > 0).sum()


def default_chunk_size(vocab_size: int) -> int:
    """Positions per chunk so one chunk of fp32 logits stays near 256 MiB."""
    return max(16, _CHUNK_BYTES // (4 * max(1, vocab_size)))


class _ChunkedTokenLogProbs(torch.autograd.Function):
    """log p(target) per row of `hidden`, chunk by chunk.

    When the hidden states need a gradient, d logp / d hidden is computed in the forward pass
    from the same chunk of logits (it is linear in the upstream gradient per token), so the
    backward pass is one multiply and no logits are recomputed. A trainable LM-head weight (full
    fine-tuning) is handled by recomputing each chunk in backward. Each chunk's logits live in
    one buffer that is turned into probabilities and then into d logp / d logits in place, so a
    chunk costs one (chunk, vocab) fp32 buffer (two with softcapping) and no temporaries.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_size, softcap, scale, compute_grad):
        rows = (targets != IGNORE_INDEX).nonzero().squeeze(1)
        logp = torch.zeros(targets.shape[0], dtype=_logit_dtype(hidden.dtype), device=hidden.device)
        want_hidden_grad = compute_grad and ctx.needs_input_grad[0]
        grad_rows = None
        if want_hidden_grad:
            grad_rows = torch.empty(
                rows.numel(), hidden.shape[1], dtype=hidden.dtype, device=hidden.device
            )
        for start in range(0, rows.numel(), chunk_size):
            idx = rows[start : start + chunk_size]
            tgt = targets.index_select(0, idx)
            chunk = _LogitChunk(hidden.index_select(0, idx), weight, bias, softcap, scale, tgt)
            logp[idx] = chunk.logp
            if want_hidden_grad:
                grad_rows[start : start + chunk_size] = chunk.dlogits_().to(weight.dtype) @ weight
            del chunk
        ctx.chunk_size = chunk_size
        ctx.softcap = softcap
        ctx.scale = scale
        ctx.hidden_shape = hidden.shape
        ctx.hidden_dtype = hidden.dtype
        want_weight_grad = compute_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
        ctx.want_weight_grad = want_weight_grad
        ctx.save_for_backward(
            rows,
            grad_rows if want_hidden_grad else None,
            hidden if want_weight_grad else None,
            weight if want_weight_grad else None,
            bias if want_weight_grad else None,
            targets if want_weight_grad else None,
        )
        return logp

    @staticmethod
    def backward(ctx, grad_logp):
        rows, grad_rows, hidden, weight, bias, targets = ctx.saved_tensors
        g = grad_logp.index_select(0, rows).to(_logit_dtype(grad_logp.dtype))
        grad_hidden = grad_weight = grad_bias = None
        if grad_rows is not None:
            grad_hidden = torch.zeros(
                ctx.hidden_shape, dtype=ctx.hidden_dtype, device=grad_logp.device
            )
            grad_hidden.index_copy_(
                0, rows, (grad_rows.to(g.dtype) * g[:, None]).to(ctx.hidden_dtype)
            )
        if ctx.want_weight_grad:
            grad_weight, grad_bias = _head_grads(ctx, rows, g, hidden, weight, bias, targets)
        return grad_hidden, grad_weight, grad_bias, None, None, None, None, None


def _head_grads(ctx, rows, g, hidden, weight, bias, targets):
    """d loss / d (weight, bias) of a trainable LM head, recomputing each chunk's logits."""
    acc = _logit_dtype(weight.dtype)
    grad_weight = torch.zeros_like(weight, dtype=acc)
    grad_bias = None if bias is None else torch.zeros_like(bias, dtype=acc)
    for start in range(0, rows.numel(), ctx.chunk_size):
        idx = rows[start : start + ctx.chunk_size]
        h = hidden.index_select(0, idx)
        chunk = _LogitChunk(h, weight, bias, ctx.softcap, ctx.scale, targets.index_select(0, idx))
        dlogits = chunk.dlogits_().mul_(g[start : start + ctx.chunk_size, None])
        grad_weight.addmm_(dlogits.t(), h.to(acc))
        if grad_bias is not None:
            grad_bias += dlogits.sum(0)
        del chunk, dlogits
    grad_weight = grad_weight.to(weight.dtype)
    if grad_bias is not None:
        grad_bias = grad_bias.to(bias.dtype)
    return grad_weight, grad_bias


def _logit_dtype(dtype: torch.dtype) -> torch.dtype:
    """Logits are handled in at least fp32 (bf16/fp16 matmul outputs are upcast)."""
    return torch.promote_types(dtype, torch.float32)


class _LogitChunk:
    """One chunk of logits, reduced in place: log p(target), then d log p(target) / d logits.

    The (rows, vocab) buffer holds the logits, then exp(logits - max), then the gradient; no
    other buffer of that size exists except the softcap chain factor. Logits are
    `scale * (h @ weight.T + bias)`, softcapped when `softcap` is set, as the model computes them.
    """

    def __init__(self, h, weight, bias, softcap, scale, targets) -> None:
        # `h` in the weight's dtype: backward recomputes chunks outside autocast, where a bf16
        # hidden state and an fp32 head (or the reverse) cannot be multiplied as they are.
        buf = h.to(weight.dtype) @ weight.t()
        buf = buf.to(_logit_dtype(buf.dtype))
        if bias is not None:
            buf.add_(bias)
        self.scale = scale
        if scale != 1.0:
            buf.mul_(scale)
        self.dcap = None
        if softcap is not None:
            buf.div_(softcap).tanh_()
            self.dcap = 1.0 - buf.square()
            buf.mul_(softcap)
        self.targets = targets[:, None]
        target_logit = buf.gather(1, self.targets).squeeze(1)
        top = buf.amax(1, keepdim=True)
        self.sum_exp = buf.sub_(top).exp_().sum(1)
        self.logp = target_logit - top.squeeze(1) - self.sum_exp.log()
        self.buf = buf

    def dlogits_(self) -> torch.Tensor:
        """One-hot(target) minus softmax (times the softcap and scale factors), over the buffer."""
        grad = self.buf.mul_(self.sum_exp.reciprocal().neg_()[:, None])
        grad.scatter_add_(1, self.targets, torch.ones_like(self.targets, dtype=grad.dtype))
        if self.dcap is not None:
            grad.mul_(self.dcap)
        return grad if self.scale == 1.0 else grad.mul_(self.scale)


def token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    chunk_size: int | None = None,
    logit_softcap: float | None = None,
    logit_scale: float = 1.0,
) -> torch.Tensor:
    """log p(target) for every position, 0 where `targets == IGNORE_INDEX`; fp32, shape of `targets`.

    `hidden` is (..., H) and `targets` (...). Only positions with a target are multiplied by the
    LM head, in chunks of `chunk_size` positions, so peak memory beyond one chunk does not grow
    with the vocabulary and prompt positions cost nothing. `logit_scale` multiplies the logits
    before softcapping (Cohere's `logit_scale`, Granite's `1 / logits_scaling`).
    """
    shape = targets.shape
    flat_hidden = hidden.reshape(-1, hidden.shape[-1])
    flat_targets = targets.reshape(-1).to(flat_hidden.device)
    size = chunk_size or default_chunk_size(weight.shape[0])
    compute_grad = torch.is_grad_enabled() and (
        flat_hidden.requires_grad
        or weight.requires_grad
        or (bias is not None and bias.requires_grad)
    )
    logp = _ChunkedTokenLogProbs.apply(
        flat_hidden,
        weight,
        bias,
        flat_targets,
        size,
        logit_softcap,
        float(logit_scale),
        compute_grad,
    )
    return logp.view(shape)


def naive_token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    logit_softcap: float | None = None,
    logit_scale: float = 1.0,
) -> torch.Tensor:
    """Reference implementation with full logits; used by tests and benchmarks only."""
    logits = hidden @ weight.t()
    if bias is not None:
        logits = logits + bias
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)) * logit_scale
    if logit_softcap is not None:
        logits = torch.tanh(logits / logit_softcap) * logit_softcap
    valid = targets != IGNORE_INDEX
    safe = targets.masked_fill(~valid, 0)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return logp * valid


@dataclass
class RFTLossOutput:
    """The summed RFT loss of a micro-batch plus detached sums for logging.

    `loss_sum` is the sum of per-sample losses; divide it by the number of samples of the whole
    optimizer step (all micro-batches, all processes) to get the batch loss.
    """

    loss_sum: torch.Tensor
    num_samples: torch.Tensor
    boilerplate_loss_sum: torch.Tensor
    boilerplate_tokens: torch.Tensor
    reasoning_loss_sum: torch.Tensor
    reasoning_tokens: torch.Tensor
    reasoning_weight_sum: torch.Tensor

    def stats(self) -> torch.Tensor:
        """Detached logging sums as one vector (cheap to accumulate and all-reduce)."""
        return (
            torch.stack(
                [
                    self.boilerplate_loss_sum,
                    self.boilerplate_tokens,
                    self.reasoning_loss_sum,
                    self.reasoning_tokens,
                    self.reasoning_weight_sum,
                    self.num_samples,
                ]
            )
            .detach()
            .float()
        )


STAT_NAMES = (
    "boilerplate_loss_sum",
    "boilerplate_tokens",
    "reasoning_loss_sum",
    "reasoning_tokens",
    "reasoning_weight_sum",
    "num_samples",
)


def group_weights(
    boilerplate_loss: torch.Tensor,
    reasoning_loss: torch.Tensor,
    has_boilerplate: torch.Tensor,
    has_reasoning: torch.Tensor,
    *,
    temperature: float,
    reasoning_weight: float | None,
    detach_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (w_b, w_r) per sample: softmax([L_b, L_r] / tau), or a fixed alpha.

    A sample with a single group gives that group weight 1; absent groups get weight 0.
    """
    if reasoning_weight is not None:
        w_r = torch.full_like(reasoning_loss, reasoning_weight)
        w_b = 1.0 - w_r
    else:
        lb, lr = boilerplate_loss, reasoning_loss
        if detach_weights:
            lb, lr = lb.detach(), lr.detach()
        w_r = torch.sigmoid((lr - lb) / temperature)  # = softmax([lb, lr] / tau)[1]
        w_b = 1.0 - w_r
    only_b = has_boilerplate & ~has_reasoning
    only_r = has_reasoning & ~has_boilerplate
    w_b = torch.where(only_b, torch.ones_like(w_b), torch.where(only_r, torch.zeros_like(w_b), w_b))
    w_r = torch.where(only_r, torch.ones_like(w_r), torch.where(only_b, torch.zeros_like(w_r), w_r))
    return w_b, w_r


def rft_loss(
    token_loss: torch.Tensor,
    token_class: torch.Tensor,
    samples: torch.Tensor,
    *,
    temperature: float = 3.0,
    reasoning_weight: float | None = None,
    detach_weights: bool = True,
) -> RFTLossOutput:
    """Per-sample reasoning-highlighted loss, summed over the samples of a micro-batch.

    `token_loss` (any shape) is the per-position loss (e.g. -log p), `token_class` the class of
    each position's target (-100 not in the loss, 0 boilerplate, 1 reasoning) and `samples` a
    sample id per position (`sample_index`). Per sample: L_b, L_r are the group means, the
    weights come from `group_weights`, and L = w_b L_b + w_r L_r. Samples without response
    tokens contribute nothing and are not counted.
    """
    loss = token_loss.reshape(-1).float()
    cls = token_class.reshape(-1).to(loss.device)
    idx = samples.reshape(-1).to(loss.device)
    n = idx.numel()
    is_b = (cls == BOILERPLATE).float()
    is_r = (cls == REASONING).float()
    zeros = loss.new_zeros(n)
    # masked_fill, not multiplication, so an inf/nan loss on an ignored position cannot leak in
    sum_b = zeros.index_add(0, idx, loss.masked_fill(cls != BOILERPLATE, 0.0))
    sum_r = zeros.index_add(0, idx, loss.masked_fill(cls != REASONING, 0.0))
    cnt_b = zeros.index_add(0, idx, is_b)
    cnt_r = zeros.index_add(0, idx, is_r)
    has_b, has_r = cnt_b > 0, cnt_r > 0
    mean_b = sum_b / cnt_b.clamp(min=1)
    mean_r = sum_r / cnt_r.clamp(min=1)
    w_b, w_r = group_weights(
        mean_b,
        mean_r,
        has_b,
        has_r,
        temperature=temperature,
        reasoning_weight=reasoning_weight,
        detach_weights=detach_weights,
    )
    present = has_b | has_r
    per_sample = (w_b * mean_b + w_r * mean_r).masked_fill(~present, 0.0)
    return RFTLossOutput(
        loss_sum=per_sample.sum(),
        num_samples=present.sum().float(),
        boilerplate_loss_sum=sum_b.sum().detach(),
        boilerplate_tokens=cnt_b.sum(),
        reasoning_loss_sum=sum_r.sum().detach(),
        reasoning_tokens=cnt_r.sum(),
        reasoning_weight_sum=w_r.detach().masked_fill(~present, 0.0).sum(),
    )


@dataclass
class GroupTotals:
    """Global (whole optimizer step) boilerplate/reasoning loss sums and token counts."""

    boilerplate_loss_sum: torch.Tensor
    boilerplate_tokens: torch.Tensor
    reasoning_loss_sum: torch.Tensor
    reasoning_tokens: torch.Tensor


def group_totals(token_loss: torch.Tensor, token_class: torch.Tensor) -> GroupTotals:
    """Loss sums and token counts per group of one micro-batch (for `rft_group_scope: batch`)."""
    loss = token_loss.reshape(-1).float()
    cls = token_class.reshape(-1).to(loss.device)
    return GroupTotals(
        boilerplate_loss_sum=loss.masked_fill(cls != BOILERPLATE, 0.0).sum(),
        boilerplate_tokens=(cls == BOILERPLATE).sum().float(),
        reasoning_loss_sum=loss.masked_fill(cls != REASONING, 0.0).sum(),
        reasoning_tokens=(cls == REASONING).sum().float(),
    )


def batch_scope_coefficients(
    totals: GroupTotals,
    *,
    temperature: float,
    reasoning_weight: float | None,
    detach_weights: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token coefficients (c_b, c_r) and the loss value for groups pooled over a global batch.

    With L_g = S_g / N_g over the whole step and L = w_b L_b + w_r L_r, the gradient is
    sum_g c_g dS_g / N_g with c_g = w_g (detached or fixed weights) or
    c_g = w_g (1 + (L_g - Lbar) / tau), Lbar = sum_h w_h L_h (softmax weights with gradient).
    Each micro-batch then contributes sum_g c_g S_g^mb / N_g, which sums to the exact gradient.
    Returns (c_b / N_b, c_r / N_r, L) with zero coefficients for an empty group.
    """
    nb, nr = totals.boilerplate_tokens, totals.reasoning_tokens
    lb = totals.boilerplate_loss_sum / nb.clamp(min=1)
    lr = totals.reasoning_loss_sum / nr.clamp(min=1)
    w_b, w_r = group_weights(
        lb,
        lr,
        nb > 0,
        nr > 0,
        temperature=temperature,
        reasoning_weight=reasoning_weight,
        detach_weights=True,
    )
    value = w_b * lb + w_r * lr
    c_b, c_r = w_b, w_r
    if reasoning_weight is None and not detach_weights:
        both = (nb > 0) & (nr > 0)
        c_b = torch.where(both, w_b * (1 + (lb - value) / temperature), w_b)
        c_r = torch.where(both, w_r * (1 + (lr - value) / temperature), w_r)
    return c_b / nb.clamp(min=1), c_r / nr.clamp(min=1), value
