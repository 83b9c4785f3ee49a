"""CUDA-only: the GPU paths of per-token log-probs against the reference (full-logits) path.

bf16 autocast, padding-free varlen batches (SDPA; FlashAttention 2 where installed), QLoRA 4-bit
and CUDA memory flat in the vocabulary. Every test skips cleanly without CUDA; all but the
FlashAttention 2 case passed on an H100 (`benchmarks/gpu_check.sh`, docs/benchmarks.md §1).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from rft_trl.loss import (
    IGNORE_INDEX,
    default_chunk_size,
    naive_token_logprobs,
    shift_targets,
    token_logprobs,
)
from rft_trl.modeling import forward_token_logprobs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

DEVICE = "cuda"


def assert_close(actual, expected, rtol, atol):
    """allclose with a message that says where and by how much the tensors differ."""
    diff = (actual.float() - expected.float()).abs()
    ok = diff <= atol + rtol * expected.float().abs()
    if not bool(ok.all()):
        where = (~ok).nonzero()[:5].tolist()
        raise AssertionError(f"max abs diff {diff.max().item():.3e} at {where}")


def tiny_llama(attn: str = "sdpa", vocab: int = 256) -> LlamaForCausalLM:
    """A 2-layer Llama on the GPU (fp32 weights; autocast decides the compute dtype)."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn).to(DEVICE)


def rows(lengths=(11, 7, 15), vocab: int = 256) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input_ids, labels) rows with a 3-token prompt outside the loss."""
    generator = torch.Generator().manual_seed(1)
    out = []
    for length in lengths:
        ids = torch.randint(3, vocab, (length,), generator=generator)
        labels = ids.clone()
        labels[:3] = IGNORE_INDEX
        out.append((ids, labels))
    return out


def padded(batch_rows) -> dict[str, torch.Tensor]:
    """Right-padded batch with an attention mask."""
    width = max(len(ids) for ids, _ in batch_rows)
    ids = torch.zeros(len(batch_rows), width, dtype=torch.long)
    labels = torch.full((len(batch_rows), width), IGNORE_INDEX)
    mask = torch.zeros(len(batch_rows), width, dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(batch_rows):
        ids[i, : len(row_ids)], labels[i, : len(row_ids)], mask[i, : len(row_ids)] = (
            row_ids,
            row_labels,
            1,
        )
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def padding_free(batch_rows) -> dict[str, torch.Tensor]:
    """All rows in one sequence with `position_ids` restarting at 0 (TRL's padding-free layout)."""
    ids = torch.cat([row_ids for row_ids, _ in batch_rows])[None]
    labels = torch.cat([row_labels for _, row_labels in batch_rows])[None]
    position_ids = torch.cat([torch.arange(len(row_ids)) for row_ids, _ in batch_rows])[None]
    return {"input_ids": ids, "labels": labels, "position_ids": position_ids}


def logprobs_per_row(model, batch, flat: bool, lengths) -> list[torch.Tensor]:
    """forward_token_logprobs split back into one tensor per row."""
    batch = {k: v.to(DEVICE) for k, v in batch.items()}
    targets = shift_targets(batch["labels"], batch.get("position_ids"))
    logp = forward_token_logprobs(model, batch, targets).float()
    if flat:
        return list(logp[0].split(list(lengths)))
    return [logp[i, :n] for i, n in enumerate(lengths)]


@pytest.mark.parametrize("chunk_size", [5, 64])
def test_chunked_matches_full_logits_fp32(chunk_size):
    torch.manual_seed(0)
    hidden = torch.randn(3, 40, 32, device=DEVICE, requires_grad=True)
    weight = torch.randn(1000, 32, device=DEVICE) * 0.2
    targets = torch.randint(0, 1000, (3, 40), device=DEVICE)
    targets[:, :7] = IGNORE_INDEX
    upstream = torch.randn(3, 40, device=DEVICE)
    got = token_logprobs(hidden, weight, targets, chunk_size=chunk_size)
    (got * upstream).sum().backward()
    grad = hidden.grad.clone()
    hidden.grad = None
    want = naive_token_logprobs(hidden, weight, targets)
    (want * upstream).sum().backward()
    assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert_close(grad, hidden.grad, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_matches_fp32_reference():
    torch.manual_seed(0)
    hidden = torch.randn(2, 64, 64, device=DEVICE, requires_grad=True)
    weight = torch.randn(4096, 64, device=DEVICE) * 0.1
    targets = torch.randint(0, 4096, (2, 64), device=DEVICE)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got = token_logprobs(hidden, weight, targets, chunk_size=48)
    assert got.dtype == torch.float32
    got.sum().backward()
    grad = hidden.grad.clone()
    hidden.grad = None
    want = naive_token_logprobs(hidden, weight, targets)
    want.sum().backward()
    assert_close(got, want, rtol=2e-2, atol=5e-2)
    assert_close(grad, hidden.grad, rtol=5e-2, atol=5e-3)


def test_cuda_memory_beyond_one_chunk_is_flat_in_vocab():
    rows_, hidden_size = 2048, 256
    beyond = []
    for vocab in (8192, 32768, 131072):
        hidden = torch.randn(rows_, hidden_size, device=DEVICE, requires_grad=True)
        weight = torch.randn(vocab, hidden_size, device=DEVICE) * 0.05
        targets = torch.randint(0, vocab, (rows_,), device=DEVICE)
        chunk = default_chunk_size(vocab)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        token_logprobs(hidden, weight, targets, chunk_size=chunk).sum().backward()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        one_chunk = 4 * vocab * min(chunk, rows_)
        full_logits = 4 * vocab * rows_
        assert peak < full_logits or chunk >= rows_
        beyond.append(peak - one_chunk)
        del hidden, weight, targets
    # what is left beyond the chunk is O(rows x hidden), the same for every vocabulary
    assert max(beyond) - min(beyond) < 16 * 2**20, [b / 2**20 for b in beyond]


@pytest.mark.parametrize(
    "attn",
    [
        "sdpa",
        pytest.param(
            "flash_attention_2",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("flash_attn") is None, reason="flash-attn not installed"
            ),
        ),
    ],
)
def test_padding_free_varlen_matches_padded_under_bf16(attn):
    model = tiny_llama(attn)
    batch_rows = rows()
    lengths = [len(ids) for ids, _ in batch_rows]
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        reference = logprobs_per_row(tiny_llama("sdpa"), padded(batch_rows), False, lengths)
        flat = logprobs_per_row(model, padding_free(batch_rows), True, lengths)
    for got, want in zip(flat, reference, strict=True):
        assert_close(got, want, rtol=3e-2, atol=3e-2)


def test_qlora_4bit_logprobs_match_the_models_own_logits(tmp_path):
    pytest.importorskip("bitsandbytes")
    from peft import LoraConfig, get_peft_model
    from transformers import BitsAndBytesConfig

    tiny_llama().save_pretrained(tmp_path)
    quant = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )
    base = LlamaForCausalLM.from_pretrained(
        tmp_path, quantization_config=quant, device_map={"": 0}, attn_implementation="sdpa"
    )
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    )
    batch = {k: v.to(DEVICE) for k, v in padded(rows()).items()}
    targets = shift_targets(batch["labels"])
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logp = forward_token_logprobs(model, batch, targets)
        logp.sum().backward()
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            logits = model(**inputs).logits.float()
    want = torch.log_softmax(logits, -1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    want = want * (targets != IGNORE_INDEX)
    assert_close(logp, want, rtol=3e-2, atol=5e-2)
    grads = [p.grad for n, p in model.named_parameters() if "lora_" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_rft_trainer_bf16_step_padding_free_matches_padded(tmp_path):
    from rft_trl.config import RFTConfig
    from rft_trl.trainer import RFTTrainer

    import tiny_rows

    def first_loss(**config) -> float:
        args = RFTConfig(
            output_dir=str(tmp_path / str(len(config))),
            per_device_train_batch_size=4,
            max_steps=1,
            learning_rate=1e-3,
            bf16=True,
            report_to="none",
            logging_steps=1,
            save_strategy="no",
            seed=0,
            disable_tqdm=True,
            **config,
        )
        trainer = RFTTrainer(
            tiny_rows.model(),
            args,
            train_dataset=tiny_rows.dataset(4),
            processing_class=tiny_rows.tokenizer(),
            peft_config=tiny_rows.lora(),
        )
        trainer.train()
        return next(e["loss"] for e in trainer.state.log_history if "loss" in e)

    padded_loss = first_loss(max_length=None)
    flat_loss = first_loss(packing=True, max_length=64, model_init_kwargs=None)
    assert flat_loss == pytest.approx(padded_loss, rel=2e-2)
