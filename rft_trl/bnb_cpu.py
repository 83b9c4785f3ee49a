"""Work around a bitsandbytes CPU quirk that silently breaks QLoRA training after inference.

On CPUs with AVX512-BF16, bitsandbytes (0.50) repacks a 4-bit weight into a CPU inference
layout the first time a `Linear4bit` runs in eval mode without grad, and keeps that layout:
later training steps then get wrong gradients (the loss stops falling). SHAD scores in no-grad
mode before training starts, so it runs 4-bit layers in training mode (they have no dropout;
the rest of the model stays in eval mode).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _linear4bit_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return []
    return [module for module in model.modules() if isinstance(module, Linear4bit)]


@contextlib.contextmanager
def keep_4bit_weights_trainable(model: torch.nn.Module) -> Iterator[None]:
    """Inside this context, 4-bit layers run as in training so their weights are never repacked."""
    modules = [m for m in _linear4bit_modules(model) if not m.training]
    for module in modules:
        module.training = True
    try:
        yield
    finally:
        for module in modules:
            module.training = False
