"""The SHAD LoRA adapter on the run's own model instance, added for a `with` block and removed after.

- A `peft.PeftModel` (the run's LoRA/QLoRA): a separate adapter is added next to the run's, is
  the only one trained (every other parameter is frozen for the tune), and is deleted on exit;
  the run's adapter values, every `requires_grad` flag, the active adapter, each module's
  train/eval mode, gradient checkpointing and its input-gradient hooks, `config.use_cache`, the
  device and what accelerate set on the object (its forward wrapper, its "prepared" flag) are
  restored.
- A plain transformers model: `peft.get_peft_model` injects the adapter in place and `unload()`
  takes it out again, leaving the original modules and flags.

Scoring toggles the adapter on one model copy: `disabled()` is the base model with every adapter
off (the "original" model, l_o), `enabled()` the base plus the SHAD adapter (l_s).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch

from rft_trl.modeling import unwrap

ADAPTER_NAME = "shad"
DEFAULT_LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}
# Instance attributes that the training stack may patch onto a model object (accelerate's
# mixed-precision forward wrapper, and the flag with which `prepare` marks a model done: left
# set, the run's own `Trainer.train()` would skip preparing it and so lose autocast) and that
# must not outlive the shuffle-tune.
_PATCHED_ATTRIBUTES = ("forward", "_original_forward", "_is_accelerate_prepared")
# Where transformers keeps the input-embedding hooks that `enable_input_require_grads` adds
# (a list, and the first one under its older singular name).
_INPUT_GRAD_HOOKS = ("_require_grads_hooks", "_require_grads_hook")


def shad_lora_config(peft_config: Any | None):
    """The LoRA config of the SHAD adapter: the run's LoRA settings, else r=16, alpha=32, all-linear.

    `modules_to_save`/trainable tokens, trained biases and non-default initialisations (PiSSA,
    OLoRA, ...) are dropped: the SHAD adapter is a plain low-rank delta that starts at zero and
    leaves every base weight, bias included, as it was (PEFT trains biases on the base layer).
    """
    from peft import LoraConfig, PeftType

    if peft_config is None:
        return LoraConfig(task_type="CAUSAL_LM", **DEFAULT_LORA)
    if getattr(peft_config, "peft_type", None) != PeftType.LORA:
        raise ValueError(
            f"SHAD's shuffle-tune uses LoRA, but the run's PEFT config is {type(peft_config).__name__}. "
            "Fix: run SHAD ahead of time with `rft-trl shad` and a LoRA config, or pass `peft_config=None` "
            "to label_dataset so SHAD uses its default LoRA (r=16, alpha=32, all-linear)."
        )
    config = copy.deepcopy(peft_config)
    config.modules_to_save = None
    config.inference_mode = False
    config.init_lora_weights = True
    config.bias = "none"
    if hasattr(config, "trainable_token_indices"):
        config.trainable_token_indices = None
    return config


def active_peft_config(model: torch.nn.Module) -> Any | None:
    """The active adapter config of a PEFT model (under DDP/FSDP wrappers too), else None."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    configs = getattr(model, "peft_config", None)
    if not configs:
        return None
    active = getattr(model, "active_adapter", None)
    return configs.get(active) or next(iter(configs.values()))


def _checkpointing(model: torch.nn.Module) -> bool:
    """Whether activation (gradient) checkpointing is on, under either transformers name."""
    for attribute in ("is_activation_checkpointing", "is_gradient_checkpointing"):
        if hasattr(type(model), attribute):
            return bool(getattr(model, attribute))
    return False


class ShadAdapter:
    """Context manager that adds the SHAD adapter to `model` and restores the model exactly on exit."""

    def __init__(self, model: torch.nn.Module, lora_config) -> None:
        self.model = model
        self.lora_config = lora_config
        self.peft_model = None
        self.name = ADAPTER_NAME
        self._wrapped = False

    # --- enter/exit ------------------------------------------------------------------------

    def __enter__(self) -> ShadAdapter:
        from peft import PeftModel, PeftType, get_peft_model

        base = unwrap(self.model)
        self._grad_flags = {name: p.requires_grad for name, p in self.model.named_parameters()}
        self._modes = [(module, module.training) for module in self.model.modules()]
        self._gc = _checkpointing(base)
        self._input_grad_hooks = {
            k: base.__dict__[k] for k in _INPUT_GRAD_HOOKS if k in base.__dict__
        }
        # The embedding's forward hooks: `enable_input_require_grads` replaces its hook list
        # each time it runs (PEFT's wrap, the tune's Trainer), so hooks are told apart here.
        embeddings = base.get_input_embeddings() if hasattr(base, "get_input_embeddings") else None
        self._embeddings = embeddings
        self._embedding_hooks = set(getattr(embeddings, "_forward_hooks", {}))
        self._device = next(self.model.parameters()).device
        self._use_cache = getattr(getattr(base, "config", None), "use_cache", None)
        self._patched = {
            k: self.model.__dict__[k] for k in _PATCHED_ATTRIBUTES if k in self.model.__dict__
        }
        if isinstance(self.model, PeftModel):
            if self.model.peft_type != PeftType.LORA:
                raise ValueError(
                    f"SHAD can add its adapter only next to a LoRA adapter; the model carries "
                    f"{self.model.peft_type}. Fix: label ahead of time with `rft-trl shad`."
                )
            while self.name in self.model.peft_config:
                self.name += "_"
            self._active = self.model.active_adapter
            self.model.add_adapter(self.name, self.lora_config)
            self.model.set_adapter(self.name)
            self.peft_model = self.model
        else:
            self.peft_model = get_peft_model(self.model, self.lora_config, adapter_name=self.name)
            self._wrapped = True
        # Only the SHAD adapter trains: PEFT's `set_adapter` leaves other flags as they were
        # (e.g. base biases a run LoRA with `bias="all"` trains), and those weights would keep
        # the shuffle-tune's updates.
        own = set(self.parameters().values())
        for param in self.peft_model.parameters():
            param.requires_grad_(param in own)
        return self

    def __exit__(self, *exc_info) -> None:
        peft_model = self.peft_model
        if self._wrapped:
            peft_model.unload()
        else:
            peft_model.set_adapter(self._active)
            peft_model.delete_adapter(self.name)
        base = unwrap(self.model)
        if not self._gc and _checkpointing(base):
            disable = (
                getattr(base, "activation_checkpointing_disable", None)
                or base.gradient_checkpointing_disable
            )
            disable()
        hooks = getattr(self._embeddings, "_forward_hooks", {})
        for key in [k for k in hooks if k not in self._embedding_hooks]:
            del hooks[key]  # added for the tune (input gradients for gradient checkpointing)
        for key in _INPUT_GRAD_HOOKS:
            if key in self._input_grad_hooks:
                base.__dict__[key] = self._input_grad_hooks[key]
            else:
                base.__dict__.pop(key, None)
        if self._use_cache is not None:
            base.config.use_cache = self._use_cache
        for key in _PATCHED_ATTRIBUTES:
            if key in self._patched:
                self.model.__dict__[key] = self._patched[key]
            else:
                self.model.__dict__.pop(key, None)
        for name, param in self.model.named_parameters():
            if name in self._grad_flags:
                param.requires_grad_(self._grad_flags[name])
        for module, training in self._modes:  # each module's own mode (they may differ)
            module.training = training
        if next(self.model.parameters()).device != self._device:  # the tune's Trainer placed it
            self.model.to(self._device)
        self.peft_model = None

    # --- toggling and weights ----------------------------------------------------------------

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Every adapter off: the original model (l_o, and the prompt-swap probe)."""
        with self.peft_model.disable_adapter():
            yield

    @contextlib.contextmanager
    def enabled(self) -> Iterator[None]:
        """Only the SHAD adapter on (l_s)."""
        yield

    def parameters(self) -> dict[str, torch.nn.Parameter]:
        """The SHAD adapter's parameters by name."""
        marker = f".{self.name}."
        return {name: p for name, p in self.peft_model.named_parameters() if marker in f".{name}."}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the SHAD adapter's weights, keyed by a name independent of the adapter name."""
        return {
            self._portable(name): p.detach().to("cpu").contiguous().clone()
            for name, p in self.parameters().items()
        }

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> bool:
        """Copy saved weights in; False (nothing changed) when names, shapes or dtypes do not match."""
        params = {self._portable(name): p for name, p in self.parameters().items()}
        if set(params) != set(tensors) or any(
            params[k].shape != tensors[k].shape or params[k].dtype != tensors[k].dtype
            for k in params
        ):
            return False
        with torch.no_grad():
            for key, param in params.items():
                param.copy_(tensors[key].to(param.device))
        return True

    def _portable(self, name: str) -> str:
        return name.replace(f".{self.name}.", f".{ADAPTER_NAME}.")
