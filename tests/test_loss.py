"""The pure loss functions: chunked log-probs vs full logits, and RFT closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from rft_trl.loss import (
    IGNORE_INDEX,
    GroupTotals,
    batch_scope_coefficients,
    count_samples,
    naive_token_logprobs,
    rft_loss,
    sample_index,
    shift_targets,
    token_logprobs,
)

pytestmark = pytest.mark.trl_compat


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    """allclose with a message that says where and by how much the tensors differ."""
    diff = (actual - expected).abs()
    ok = diff <= atol + rtol * expected.abs()
    if not bool(ok.all()):
        where = (~ok).nonzero()[:5].tolist()
        raise AssertionError(f"max abs diff {diff.max().item():.3e} at {where}")


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64])
@pytest.mark.parametrize("softcap", [None, 5.0])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_chunked_logprobs_match_full_logits_values_and_grads(chunk_size, softcap, with_bias, scale):
    torch.manual_seed(0)
    batch, length, hidden_size, vocab = 3, 11, 8, 37
    hidden = torch.randn(batch, length, hidden_size, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, hidden_size, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(vocab, dtype=torch.float64, requires_grad=True) if with_bias else None
    targets = torch.randint(0, vocab, (batch, length))
    targets[0, :4] = IGNORE_INDEX
    targets[2, -1] = IGNORE_INDEX
    upstream = torch.randn(batch, length, dtype=torch.float64)

    got = token_logprobs(
        hidden,
        weight,
        targets,
        bias=bias,
        chunk_size=chunk_size,
        logit_softcap=softcap,
        logit_scale=scale,
    )
    (got * upstream).sum().backward()
    grads = [hidden.grad.clone(), weight.grad.clone()] + ([bias.grad.clone()] if with_bias else [])
    for tensor in [hidden, weight] + ([bias] if with_bias else []):
        tensor.grad = None
    want = naive_token_logprobs(
        hidden, weight, targets, bias=bias, logit_softcap=softcap, logit_scale=scale
    )
    (want * upstream).sum().backward()
    want_grads = [hidden.grad, weight.grad] + ([bias.grad] if with_bias else [])

    assert_close(got.double(), want.double(), rtol=1e-5)
    assert (got[targets == IGNORE_INDEX] == 0).all()
    for g, w in zip(grads, want_grads, strict=True):
        assert_close(g, w, rtol=1e-5, atol=1e-8)


def test_frozen_head_skips_weight_grad_and_no_grad_mode():
    torch.manual_seed(1)
    hidden = torch.randn(2, 5, 4, requires_grad=True)
    weight = torch.randn(10, 4)
    targets = torch.randint(0, 10, (2, 5))
    token_logprobs(hidden, weight, targets, chunk_size=2).sum().backward()
    assert hidden.grad is not None and weight.grad is None
    with torch.no_grad():
        out = token_logprobs(hidden, weight, targets)
    assert not out.requires_grad


def test_shift_targets_and_sample_index_for_padding_free_rows():
    labels = torch.tensor([[-100, 5, 6, -100, 8, 9, 0]])
    position_ids = torch.tensor([[0, 1, 2, 0, 1, 2, 0]])
    targets = shift_targets(labels, position_ids)
    # position 2 would predict the first token of the next sequence: ignored
    assert targets.tolist() == [[5, 6, -100, 8, 9, -100, -100]]
    samples = sample_index(labels.shape, position_ids)
    assert samples.tolist() == [[0, 0, 0, 1, 1, 1, 2]]
    assert count_samples(targets, samples).item() == 2


def test_sample_index_padded_rows():
    samples = sample_index(torch.Size([2, 3]), None)
    assert samples.tolist() == [[0, 0, 0], [1, 1, 1]]


def _loss(token_loss, token_class, **kw):
    token_loss = torch.tensor(token_loss, dtype=torch.float32)
    token_class = torch.tensor(token_class)
    samples = torch.zeros_like(token_class)
    return rft_loss(token_loss, token_class, samples, **kw)


def test_equal_group_losses_give_half_weights():
    out = _loss([2.0, 2.0, 2.0], [0, 1, 1])
    assert out.reasoning_weight_sum.item() == pytest.approx(0.5)
    assert out.loss_sum.item() == pytest.approx(2.0)


def test_softmax_weights_closed_form():
    # L_b = 1, L_r = 4, tau = 3: w_r = e^(4/3) / (e^(1/3) + e^(4/3))
    out = _loss([1.0, 1.0, 3.0, 5.0], [0, 0, 1, 1], temperature=3.0)
    w_r = math.exp(4 / 3) / (math.exp(1 / 3) + math.exp(4 / 3))
    assert out.reasoning_weight_sum.item() == pytest.approx(w_r, rel=1e-6)
    assert out.loss_sum.item() == pytest.approx((1 - w_r) * 1.0 + w_r * 4.0, rel=1e-6)


def test_small_temperature_picks_the_larger_group():
    out = _loss([1.0, 9.0], [0, 1], temperature=1e-4)
    assert out.loss_sum.item() == pytest.approx(9.0)
    out = _loss([9.0, 1.0], [0, 1], temperature=1e-4)
    assert out.loss_sum.item() == pytest.approx(9.0)


def test_fixed_alpha():
    out = _loss([1.0, 3.0], [0, 1], reasoning_weight=0.8)
    assert out.loss_sum.item() == pytest.approx(0.2 * 1.0 + 0.8 * 3.0)


def test_single_group_sample_uses_its_mean():
    out = _loss([1.0, 3.0, 0.0], [1, 1, IGNORE_INDEX])
    assert out.loss_sum.item() == pytest.approx(2.0)
    assert out.reasoning_weight_sum.item() == pytest.approx(1.0)
    out = _loss([1.0, 3.0], [0, 0], reasoning_weight=0.9)
    assert out.loss_sum.item() == pytest.approx(2.0)


def test_all_reasoning_equals_per_sample_mean_sft():
    torch.manual_seed(0)
    token_loss = torch.rand(4, 6)
    labels_mask = torch.rand(4, 6) > 0.3
    token_class = torch.where(labels_mask, 1, IGNORE_INDEX)
    samples = sample_index(token_loss.shape, None)
    out = rft_loss(token_loss, token_class, samples)
    per_sample = [(token_loss[i][labels_mask[i]]).mean() for i in range(4) if labels_mask[i].any()]
    assert out.loss_sum.item() == pytest.approx(torch.stack(per_sample).sum().item(), rel=1e-6)
    assert out.num_samples.item() == len(per_sample)


def test_degenerate_samples_are_finite_and_uncounted():
    token_loss = torch.tensor([[float("inf"), 1.0], [float("nan"), 2.0]])
    token_class = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX], [IGNORE_INDEX, 0]])
    out = rft_loss(token_loss, token_class, sample_index(token_loss.shape, None))
    assert torch.isfinite(out.loss_sum)
    assert out.num_samples.item() == 1
    assert out.loss_sum.item() == pytest.approx(2.0)
    empty = rft_loss(
        token_loss, torch.full_like(token_class, IGNORE_INDEX), sample_index(token_loss.shape, None)
    )
    assert empty.loss_sum.item() == 0.0 and empty.num_samples.item() == 0


def test_non_detached_weights_carry_gradient():
    token_loss = torch.tensor([1.0, 4.0], requires_grad=True)
    out = rft_loss(
        token_loss, torch.tensor([0, 1]), torch.zeros(2, dtype=torch.long), detach_weights=False
    )
    out.loss_sum.backward()
    w_r = torch.sigmoid(torch.tensor(3.0 / 3.0))
    # d/dL_r [w_b L_b + w_r L_r] = w_r + (L_r - L_b) w_r w_b / tau
    expected = w_r + (4.0 - 1.0) * w_r * (1 - w_r) / 3.0
    assert token_loss.grad[1].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(("detach", "alpha"), [(True, None), (False, None), (True, 0.7)])
def test_batch_scope_coefficients_give_exact_gradient(detach, alpha):
    torch.manual_seed(0)
    token_loss = torch.rand(10, dtype=torch.float64, requires_grad=True)
    token_class = torch.tensor([0, 1, 1, 0, 0, 1, IGNORE_INDEX, 1, 0, 1])

    # reference: pooled group means, loss = w_b L_b + w_r L_r, autograd through everything
    lb = token_loss[token_class == 0].mean()
    lr = token_loss[token_class == 1].mean()
    if alpha is None:
        w = torch.softmax(torch.stack([lb, lr]) / 3.0, 0)
        if detach:
            w = w.detach()
    else:
        w = torch.tensor([1 - alpha, alpha], dtype=torch.float64)
    ref = w[0] * lb + w[1] * lr
    (ref_grad,) = torch.autograd.grad(ref, token_loss)

    totals = GroupTotals(
        token_loss.detach()[token_class == 0].sum(),
        (token_class == 0).sum().double(),
        token_loss.detach()[token_class == 1].sum(),
        (token_class == 1).sum().double(),
    )
    c_b, c_r, value = batch_scope_coefficients(
        totals, temperature=3.0, reasoning_weight=alpha, detach_weights=detach
    )
    # two "micro-batches"
    grad = torch.zeros_like(token_loss)
    for part in (slice(0, 4), slice(4, 10)):
        tl, tc = token_loss[part], token_class[part]
        contrib = c_b * tl[tc == 0].sum() + c_r * tl[tc == 1].sum()
        (g,) = torch.autograd.grad(contrib, token_loss)
        grad += g
    assert value.item() == pytest.approx(ref.item(), rel=1e-12)
    assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [4, 64])
def test_bf16_inputs_on_cpu_match_full_logits(chunk_size):
    # bf16 hidden states and head (mixed-precision training): log-probs come back in fp32, the
    # hidden-state gradient in bf16, both within bf16 rounding of the full-logits computation.
    torch.manual_seed(3)
    hidden = torch.randn(2, 9, 16).bfloat16().requires_grad_(True)
    weight = (torch.randn(50, 16) * 0.25).bfloat16()
    targets = torch.randint(0, 50, (2, 9))
    targets[1, :3] = IGNORE_INDEX
    upstream = torch.randn(2, 9)

    got = token_logprobs(hidden, weight, targets, chunk_size=chunk_size)
    assert got.dtype == torch.float32
    (got * upstream).sum().backward()
    grad = hidden.grad.clone()
    assert grad.dtype == torch.bfloat16
    hidden.grad = None
    want = naive_token_logprobs(hidden, weight, targets)
    (want * upstream).sum().backward()

    assert_close(got, want.float(), rtol=2e-2, atol=2e-2)
    assert_close(grad.float(), hidden.grad.float(), rtol=5e-2, atol=3e-2)


def test_trainable_fp32_head_under_bf16_autocast_has_a_backward():
    # A bf16 hidden state and an fp32 trainable head (e.g. `modules_to_save` upcast): backward
    # recomputes the chunks outside autocast, where the two dtypes cannot be multiplied as-is.
    torch.manual_seed(5)
    hidden = torch.randn(2, 6, 8).bfloat16().requires_grad_(True)
    weight = (torch.randn(30, 8) * 0.3).requires_grad_(True)
    targets = torch.randint(0, 30, (2, 6))
    targets[0, :2] = IGNORE_INDEX
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = token_logprobs(hidden, weight, targets, chunk_size=4)
    got.sum().backward()
    grads = (hidden.grad.clone(), weight.grad.clone())
    hidden.grad = weight.grad = None
    naive_token_logprobs(hidden.float(), weight, targets).sum().backward()
    assert grads[0].dtype == torch.bfloat16 and grads[1].dtype == torch.float32
    assert_close(grads[0].float(), hidden.grad.float(), rtol=5e-2, atol=3e-2)
    assert_close(grads[1], weight.grad, rtol=5e-2, atol=3e-2)


def test_all_ignored_targets_give_zeros_and_a_zero_gradient():
    hidden = torch.randn(2, 4, 8, requires_grad=True)
    weight = torch.randn(12, 8)
    targets = torch.full((2, 4), IGNORE_INDEX)
    out = token_logprobs(hidden, weight, targets, chunk_size=3)
    assert (out == 0).all()
    out.sum().backward()
    assert (hidden.grad == 0).all()


def test_trainable_head_with_chunks_and_ignored_rows_matches_full_logits():
    # Full fine-tuning: the head's gradient is accumulated chunk by chunk in backward.
    torch.manual_seed(4)
    hidden = torch.randn(3, 7, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(23, 6, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 23, (3, 7))
    targets[:, ::2] = IGNORE_INDEX
    token_logprobs(hidden, weight, targets, chunk_size=2).sum().backward()
    got = (hidden.grad.clone(), weight.grad.clone())
    hidden.grad = weight.grad = None
    naive_token_logprobs(hidden, weight, targets).sum().backward()
    assert_close(got[0], hidden.grad, rtol=1e-9, atol=1e-12)
    assert_close(got[1], weight.grad, rtol=1e-9, atol=1e-12)


def test_no_full_logits_are_materialised(monkeypatch):
    # Every (rows, vocab) matmul in the function covers at most one chunk of positions.
    seen = []
    original = torch.Tensor.__matmul__

    def spy(a, b):
        out = original(a, b)
        seen.append(tuple(out.shape))
        return out

    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    hidden = torch.randn(4, 10, 8, requires_grad=True)
    weight = torch.randn(100, 8)
    token_logprobs(hidden, weight, torch.randint(0, 100, (4, 10)), chunk_size=6).sum().backward()
    logit_shapes = [shape for shape in seen if shape[-1] == 100]
    assert logit_shapes and all(shape[0] <= 6 for shape in logit_shapes)
