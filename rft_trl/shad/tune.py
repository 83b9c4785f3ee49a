"""The shuffle-tune: a short LoRA training on the shuffled subset through a real transformers `Trainer`.

The Trainer brings gradient accumulation, mixed precision, devices and data parallelism; the loss
is the token-mean SFT loss from `forward_token_logprobs`, so memory stays flat in the vocabulary.
Nothing is checkpointed; logging is off except the Trainer's progress bar on the main process.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from rft_trl.loss import IGNORE_INDEX, shift_targets
from rft_trl.modeling import forward_token_logprobs
from rft_trl.shad.adapter import ShadAdapter
from rft_trl.shad.batching import PadCollator
from rft_trl.shad.sampling import ShuffledRow
from rft_trl.shad.settings import ShadSettings

DEFAULT_LEARNING_RATE = 2e-4
DEFAULT_BATCH_SIZE = 8
# Run settings copied from the user's TrainingArguments: they shape the optimisation or the devices.
_COPIED_ARGUMENTS = (
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "bf16",
    "fp16",
    "tf32",
    "use_cpu",
    "optim",
    "optim_args",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "gradient_checkpointing",
    "gradient_checkpointing_kwargs",
    "ddp_backend",
    "ddp_find_unused_parameters",
    "ddp_timeout",
    "ddp_bucket_cap_mb",
    "dataloader_num_workers",
    "dataloader_pin_memory",
    "disable_tqdm",
    "average_tokens_across_devices",
)
# Deprecated names (transformers >= 5.2x) -> their replacements, used when installed.
_RENAMED = {
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
}
# Settings that change the tuned adapter's values (part of the cache key).
KEY_ARGUMENTS = (
    "bf16",
    "fp16",
    "tf32",
    "optim",
    "optim_args",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
)


def effective_batch(training_args: TrainingArguments | None) -> int:
    """Samples per optimizer step: per-device batch x gradient accumulation x processes."""
    if training_args is None:
        return DEFAULT_BATCH_SIZE
    return (
        training_args.per_device_train_batch_size
        * training_args.gradient_accumulation_steps
        * max(1, training_args.world_size)
    )


def learning_rate(settings: ShadSettings, training_args: TrainingArguments | None) -> float:
    """`shad_learning_rate`, else the run's learning rate, else 2e-4 (a usual LoRA rate)."""
    if settings.learning_rate is not None:
        return settings.learning_rate
    return training_args.learning_rate if training_args is not None else DEFAULT_LEARNING_RATE


def tune_key(settings: ShadSettings, training_args: TrainingArguments | None) -> dict[str, Any]:
    """The run settings that change the tuned adapter, for the cache key."""
    values = (
        {name: getattr(training_args, name, None) for name in KEY_ARGUMENTS}
        if training_args
        else {}
    )
    values["optim"] = str(values.get("optim"))
    values["effective_batch"] = effective_batch(training_args)
    values["learning_rate"] = learning_rate(settings, training_args)
    return values


def tune_arguments(
    settings: ShadSettings,
    training_args: TrainingArguments | None,
    output_dir: str,
    progress: bool = True,
) -> TrainingArguments:
    """TrainingArguments of the shuffle-tune: the run's optimiser/precision/devices with SHAD's budget."""
    copied = _copied_arguments(training_args)
    if not progress:
        copied["disable_tqdm"] = True
    checkpointing, kwargs_name = (
        _field("gradient_checkpointing"),
        _field("gradient_checkpointing_kwargs"),
    )
    if copied.get(checkpointing) and not copied.get(kwargs_name):
        # Non-reentrant checkpointing needs no input gradients, which frozen embeddings under LoRA lack.
        copied[kwargs_name] = {"use_reentrant": False}
    return TrainingArguments(
        output_dir=output_dir,
        learning_rate=learning_rate(settings, training_args),
        num_train_epochs=settings.num_epochs,
        max_steps=settings.max_steps if settings.max_steps is not None else -1,
        lr_scheduler_type="linear",
        warmup_steps=0,
        seed=settings.seed,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to="none",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_drop_last=False,
        **copied,
    )


def _field(name: str) -> str:
    """The installed TrainingArguments' name for a setting (transformers 5.2x renamed gradient->activation)."""
    known = {field.name for field in dataclasses.fields(TrainingArguments)}
    new = _RENAMED.get(name)
    return new if new in known else name


def _copied_arguments(training_args: TrainingArguments | None) -> dict[str, Any]:
    """The run's settings listed in `_COPIED_ARGUMENTS` that are set, under the installed field names."""
    if training_args is None:
        return {
            "per_device_train_batch_size": DEFAULT_BATCH_SIZE,
            "dataloader_pin_memory": torch.cuda.is_available(),
        }
    known = {field.name for field in dataclasses.fields(TrainingArguments)}
    copied: dict[str, Any] = {}
    for name in _COPIED_ARGUMENTS:
        target = _field(name)
        if target not in known:
            continue
        value = getattr(training_args, target, None)
        if value is None:
            value = getattr(training_args, name, None)
        if value is not None:
            copied[target] = value
    if "optim" in copied:
        copied["optim"] = str(getattr(copied["optim"], "value", copied["optim"]))
    return copied


class _QuietProgress(ProgressCallback):
    """The Trainer's progress bar without printing the metrics dict at the end."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


class ShadTuneTrainer(Trainer):
    """`Trainer` whose loss is the token-mean SFT loss over the global batch, from chunked log-probs."""

    loss_is_scaled_for_ga = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Always pass `num_items_in_batch` to `compute_loss` (counted in `get_batch_samples`).
        self.model_accepts_loss_kwargs = True
        self.pop_callback(PrinterCallback)
        if self.pop_callback(ProgressCallback) is not None:
            self.add_callback(_QuietProgress)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """The step's micro-batches and its response-token count, over shifted labels as the loss
        counts them (all processes' when `average_tokens_across_devices`)."""
        batch_samples, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        if not batch_samples:
            return batch_samples, num_items
        count = sum(
            (shift_targets(batch["labels"]) != IGNORE_INDEX).sum().to(device)
            for batch in batch_samples
        )
        if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            count = self.accelerator.reduce(count, reduction="sum")
        return batch_samples, count

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Sum of -log p over response tokens / the optimizer step's response-token count."""
        targets = shift_targets(inputs["labels"])
        logp = forward_token_logprobs(model, inputs, targets)
        total = -logp.sum()
        if num_items_in_batch is None:
            count = (targets != IGNORE_INDEX).sum().clamp(min=1)
            loss = total / count / self.current_gradient_accumulation_steps
        else:
            loss = total / num_items_in_batch
            if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
                # num_items_in_batch is the global count, and DDP averages gradients over processes.
                loss = loss * self.accelerator.num_processes
        return (loss, None) if return_outputs else loss


@dataclass
class TuneOutcome:
    """What the shuffle-tune did."""

    steps: int
    seconds: float
    final_loss: float | None


def tune(
    adapter: ShadAdapter,
    rows: Sequence[ShuffledRow],
    settings: ShadSettings,
    training_args: TrainingArguments | None,
    pad_id: int,
    progress: bool = True,
) -> TuneOutcome:
    """Train the SHAD adapter on the shuffled rows; the adapter is left holding the tuned weights."""
    started = time.perf_counter()
    dataset = Dataset.from_dict(
        {"input_ids": [list(r.input_ids) for r in rows], "labels": [list(r.labels) for r in rows]}
    )
    output_dir = tempfile.mkdtemp(prefix="rft-trl-shad-tune-")
    try:
        trainer = ShadTuneTrainer(
            model=adapter.peft_model,
            args=tune_arguments(settings, training_args, output_dir, progress),
            train_dataset=dataset,
            data_collator=PadCollator(pad_id),
        )
        with torch.enable_grad():  # also when the caller labels inside `torch.no_grad()`
            result = trainer.train()
        steps = trainer.state.global_step
        trainer.accelerator.free_memory()
        del trainer
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)
    return TuneOutcome(
        steps=steps, seconds=time.perf_counter() - started, final_loss=result.training_loss
    )
