"""SFT and RFT (and their variants) from the same base with the same LoRA budget, with held-out group-loss curves."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import SFTConfig, SFTTrainer

from rft_trl.config import RFTConfig
from rft_trl.demo.metrics import group_losses
from rft_trl.trainer import RFTTrainer


@dataclass(frozen=True)
class TrainBudget:
    """What SFT and RFT share: steps, batch, learning rate, LoRA rank, curve resolution."""

    steps: int = 150
    batch_size: int = 8
    learning_rate: float = 2e-3
    lora_r: int = 16
    curve_points: int = 8
    seed: int = 0


@dataclass
class TrainRun:
    """A trained model and what happened on the way."""

    name: str
    model: Any
    seconds: float
    curve: list[
        dict[str, float]
    ]  # held-out group losses (ground truth) at intervals, step 0 included
    log_history: list[dict[str, float]] = field(default_factory=list)


class QuietProgress(ProgressCallback):
    """The Trainer's progress bar without a printed metrics dict at every logging step."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


class GroupLossCurve(TrainerCallback):
    """Held-out loss over ground-truth boilerplate and reasoning tokens, at `points` evenly spaced steps."""

    def __init__(
        self, batches: Sequence[dict[str, torch.Tensor]], max_steps: int, points: int
    ) -> None:
        self.batches = batches
        every = max(1, max_steps // max(1, points))
        self.steps = {s for s in range(0, max_steps + 1, every)} | {max_steps}
        self.curve: list[dict[str, float]] = []

    def _record(self, step: int, model) -> None:
        if step in self.steps and not any(p["step"] == step for p in self.curve):
            self.curve.append({"step": step, **group_losses(model, self.batches)})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._record(0, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self._record(state.global_step, model)


def lora_config(r: int) -> LoraConfig:
    """The LoRA adapter SFT, RFT and SHAD all use: rank r, alpha 2r, every linear layer."""
    return LoraConfig(
        r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )


def _no_checkpointing() -> dict[str, bool]:
    """Switch off TRL's default activation checkpointing: on a tiny CPU model it only adds recompute.

    transformers >= 5.2x names the field `activation_checkpointing`, older versions `gradient_checkpointing`.
    """
    names = {f.name for f in dataclasses.fields(SFTConfig)}
    key = (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )
    return {key: False}


def _common_args(
    budget: TrainBudget, output_dir: str, progress: bool, device: str
) -> dict[str, Any]:
    return {
        **_no_checkpointing(),
        "output_dir": output_dir,
        "max_steps": budget.steps,
        "per_device_train_batch_size": budget.batch_size,
        "learning_rate": budget.learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": max(1, budget.steps // 20),
        "logging_steps": max(1, budget.steps // 20),
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": device == "cpu",
        "bf16": False,
        "seed": budget.seed,
        "data_seed": budget.seed,
        "max_length": None,
        "disable_tqdm": not progress,
        "dataloader_num_workers": 0,
    }


def train(
    name: str,
    base_path: str,
    tokenizer: PreTrainedTokenizerBase,
    train_data: Dataset,
    curve_batches: Sequence[dict[str, torch.Tensor]],
    budget: TrainBudget,
    *,
    rft: bool = False,
    loss_type: str = "nll",
    rft_options: dict[str, Any] | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> TrainRun:
    """Train one LoRA run from the base at `base_path`.

    `rft=False`: TRL's own `SFTTrainer` (`loss_type` "nll" or "dft"); `rft=True`: `RFTTrainer` with the
    rows' `token_class` and `rft_options` (e.g. `rft_temperature`, `rft_reasoning_weight`).
    `device` "cpu" or "cuda" (the Trainer's own placement: fp32 on either).
    """
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    curve = GroupLossCurve(curve_batches, budget.steps, budget.curve_points)
    with tempfile.TemporaryDirectory(prefix=f"rft-demo-{name}-") as output_dir:
        common = _common_args(budget, output_dir, progress, device)
        if rft:
            args = RFTConfig(**common, rft=True, **(rft_options or {}))
            trainer_cls = RFTTrainer
        else:
            args = SFTConfig(**common, loss_type=loss_type)
            trainer_cls = SFTTrainer
        trainer = trainer_cls(
            model=model,
            args=args,
            train_dataset=train_data,
            processing_class=tokenizer,
            peft_config=lora_config(budget.lora_r),
            callbacks=[curve],
        )
        trainer.pop_callback(PrinterCallback)
        if trainer.pop_callback(ProgressCallback) is not None:
            trainer.add_callback(QuietProgress)
        trainer.train()
        history = list(trainer.state.log_history)
        trained = trainer.model
    trained.eval()
    return TrainRun(name, trained, time.perf_counter() - started, curve.curve, history)
