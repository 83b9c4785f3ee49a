"""Run a causal LM and get per-token log-probs without full logits.

The forward goes through the (possibly DDP/FSDP/PEFT-wrapped) model itself, so wrappers keep
their bookkeeping; a forward hook on the decoder catches the final hidden states inside that
forward and `token_logprobs` turns them into log-probs with the LM-head weight, looked up in
the hook: FSDP swaps sharded parameters for gathered ones during the forward. `logits_to_keep=1`
keeps the model's own LM head to one position.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch

from rft_trl.bnb_cpu import keep_4bit_weights_trainable
from rft_trl.loss import token_logprobs

# Batch keys that are ours or the loss's, never model inputs.
NON_MODEL_KEYS = (
    "labels",
    "token_class",
    "seq_lengths",
    "gt_class",
    "gt_category",
    "gt_span_first",
    "shad_l_o",
    "shad_l_s",
)


class UnsupportedModelError(ValueError):
    """The model has no decoder/LM head that per-token log-probs can be computed from."""


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model under DDP/FSDP/DeepSpeed (`.module`) and PEFT wrappers."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def lm_head_parts(
    model: torch.nn.Module,
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor | None]:
    """The decoder module and the LM head's weight and bias; clear error for unsupported heads."""
    base = unwrap(model)
    get_decoder = getattr(base, "get_decoder", None)
    get_head = getattr(base, "get_output_embeddings", None)
    decoder = get_decoder() if callable(get_decoder) else None
    head = get_head() if callable(get_head) else None
    if decoder is None or head is None or decoder is base:
        raise UnsupportedModelError(
            f"{type(base).__name__} has no language-model head: RFT and SHAD need a causal LM "
            "(e.g. loaded with AutoModelForCausalLM) whose `get_decoder()` and "
            "`get_output_embeddings()` return the decoder and the LM head."
        )
    # PEFT's modules_to_save wrapper exposes the active copy's weight; LoRA on the head does not.
    if hasattr(head, "base_layer") and hasattr(head, "lora_A"):
        raise UnsupportedModelError(
            "A LoRA adapter on `lm_head` is not supported: per-token log-probs use the LM-head weight "
            "directly, so the adapter would never train. Fix: remove 'lm_head' from `target_modules` "
            "(use `modules_to_save=['lm_head']` to train the head fully)."
        )
    weight = head.weight
    bias = getattr(head, "bias", None)
    return decoder, weight, bias


def _text_config(model: torch.nn.Module) -> Any:
    """The config that holds the language model's settings (a VLM's `text_config`)."""
    config = getattr(unwrap(model), "config", None)
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def logit_softcap(model: torch.nn.Module) -> float | None:
    """The model's final-logit softcapping (Gemma-2/3 style), if any."""
    text_config = _text_config(model)
    cap = getattr(text_config, "final_logit_softcapping", None)
    return float(cap) if cap else None


def logit_scale(model: torch.nn.Module) -> float:
    """The factor the model multiplies its logits by before any softcap (1.0 for most models).

    The same lookup as TRL's fused LM head: Cohere's `logit_scale`, `output_multiplier`,
    Falcon-H1's `lm_head_multiplier`, Granite's and MiniCPM3's `1 / logits_scaling`
    (HyperCLOVA X multiplies by it).
    """
    text_config = _text_config(model)
    for name in ("logit_scale", "output_multiplier", "lm_head_multiplier"):
        value = getattr(text_config, name, None)
        if value is not None:
            return float(value)
    scaling = getattr(text_config, "logits_scaling", None)
    if scaling is not None:
        hyperclova = getattr(text_config, "model_type", None) == "hyperclovax"
        return float(scaling) if hyperclova else 1.0 / float(scaling)
    return 1.0


def _full(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A DTensor (a parameter FSDP2 has not gathered) as the whole tensor; others unchanged."""
    full_tensor = getattr(tensor, "full_tensor", None)
    return full_tensor() if callable(full_tensor) else tensor


def model_inputs(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The batch without our per-token side columns and labels (the model must not see them)."""
    return {key: value for key, value in batch.items() if key not in NON_MODEL_KEYS}


def router_aux_loss_coef(model: torch.nn.Module) -> float:
    """The weight of a Mixture-of-Experts model's load-balancing loss; 0.0 when it computes none.

    The model config decides, as for the model's own loss: TRL's `SFTTrainer` writes its
    `router_aux_loss_coef` argument into the config (and switches `output_router_logits` on
    or off with it), Axolotl sets the config from its YAML.
    """
    text_config = _text_config(model)
    if not getattr(text_config, "output_router_logits", False):
        return 0.0
    return float(getattr(text_config, "router_aux_loss_coef", 0.0) or 0.0)


def forward_token_logprobs(
    model: torch.nn.Module,
    batch: Mapping[str, Any],
    targets: torch.Tensor,
    *,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Forward `model` on `batch` and return log p(target) per position (0 where ignored)."""
    return forward_token_logprobs_and_aux_loss(model, batch, targets, chunk_size=chunk_size)[0]


def forward_token_logprobs_and_aux_loss(
    model: torch.nn.Module,
    batch: Mapping[str, Any],
    targets: torch.Tensor,
    *,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`forward_token_logprobs`, plus the MoE load-balancing loss (unweighted) of the same forward.

    The auxiliary loss is None unless `router_aux_loss_coef(model)` is non-zero; then the router
    logits are asked for explicitly (wrappers such as VLMs honour only the forward argument).
    """
    decoder, weight, _ = lm_head_parts(model)
    softcap, scale = logit_softcap(model), logit_scale(model)
    captured: dict[str, torch.Tensor] = {}

    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state
        # The head as it is now, inside the forward: FSDP2 swaps a sharded DTensor for the
        # gathered parameter (FSDP1 for a view) only while the root module runs.
        _, head_weight, head_bias = lm_head_parts(model)
        captured["logp"] = token_logprobs(
            hidden,
            _full(head_weight),
            targets.to(hidden.device),
            bias=_full(head_bias),
            chunk_size=chunk_size,
            logit_softcap=softcap,
            logit_scale=scale,
        )

    handle = decoder.register_forward_hook(hook)
    guard = (
        keep_4bit_weights_trainable(model)
        if weight.device.type == "cpu"
        else contextlib.nullcontext()
    )
    extra = {"output_router_logits": True} if router_aux_loss_coef(model) else {}
    try:
        with guard:
            outputs = model(**model_inputs(batch), use_cache=False, logits_to_keep=1, **extra)
    finally:
        handle.remove()
    if "logp" not in captured:
        raise UnsupportedModelError(
            f"The decoder of {type(unwrap(model)).__name__} was not called during the forward pass, "
            "so per-token log-probs could not be computed."
        )
    aux_loss = getattr(outputs, "aux_loss", None) if extra else None
    return captured["logp"], aux_loss
