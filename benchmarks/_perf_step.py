"""One training run per child process: time per optimizer step and peak RSS of one trainer.

Trainers compared on the same model, rows, batch, LoRA and collation:
- `rft`: `RFTTrainer` on rows that already carry `token_class` (SHAD is skipped);
- `trl_sft`: TRL's `SFTTrainer` as installed (its fused LM head and per-step metrics included);
- `plain_sft`: a `transformers.Trainer` whose loss is full logits + cross-entropy, the way
  `transformers`' own causal-LM loss computes it.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import _perf_setup as setup
import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback, TrainingArguments

KINDS = ("rft", "trl_sft", "plain_sft")


class StepClock(TrainerCallback):
    """Wall and CPU time of each optimizer step, taking turns with the other trainers of a group.

    Each step runs only while this process holds the baton (see `_perf_lockstep`), so the
    trainers of a group never compete for the cores and alternate step by step under the same
    background load. A step's time is everything the training loop does between two step ends
    (data, forward, backward, optimizer, logging), excluding the wait for the baton.
    """

    def __init__(self, baton, total_steps: int, device: str = "cpu") -> None:
        self.baton = baton
        self.total_steps = total_steps
        self.meter = setup.MemoryMeter(device)
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.memory_at_start = 0
        self._started = (0.0, 0.0)

    def on_train_begin(self, args, state, control, **kwargs):
        self.memory_at_start = self.meter.start()
        self.baton.ready()
        self.baton.take()
        self._started = (time.perf_counter(), time.process_time())

    def on_step_end(self, args, state, control, **kwargs):
        self.meter.sync()
        self.wall.append(time.perf_counter() - self._started[0])
        self.cpu.append(time.process_time() - self._started[1])
        self.baton.give()
        self.baton.take()  # after the last step: wait until every trainer of the group is done
        if state.global_step >= self.total_steps:
            self.baton.give()
            return
        self._started = (time.perf_counter(), time.process_time())


class PlainSFTTrainer(Trainer):
    """SFT with full logits and token-mean cross-entropy (transformers' causal-LM loss, spelled out)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Shift labels (not logits, so nothing is copied) and average CE over response tokens."""
        labels = inputs.pop("labels")
        outputs = model(**inputs, use_cache=False)
        logits = outputs.logits.float()
        shifted = F.pad(labels, (0, 1), value=-100)[:, 1:]
        loss = F.cross_entropy(
            logits.view(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=-100
        )
        return (loss, outputs) if return_outputs else loss


def _common_args(
    size: setup.ModelSize, steps: int, output_dir: str, device: str = "cpu"
) -> dict[str, Any]:
    """Settings shared by the three trainers: fp32 on CPU, bf16 autocast on CUDA."""
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": size.batch_size,
        "gradient_accumulation_steps": 1,
        "max_steps": steps,
        "learning_rate": 1e-4,
        "lr_scheduler_type": "constant",
        "use_cpu": device != "cuda",
        "bf16": device == "cuda",
        "gradient_checkpointing": False,
        "report_to": "none",
        "logging_steps": 10,
        "save_strategy": "no",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "seed": 0,
    }


def _model(size: setup.ModelSize, quant: str, ckpt_root: str | None, device: str):
    if quant == "qlora":
        return setup.load_4bit(size, ckpt_root, device)
    return setup.build_model(size)


def build_trainer(
    kind: str,
    size: setup.ModelSize,
    collation: str,
    quant: str,
    steps: int,
    ckpt_root: str | None = None,
    device: str = "cpu",
    response_fraction: float | None = None,
) -> Trainer:
    """The trainer `kind` on `size`, `collation` ('padded'/'packed') and `quant` ('lora'/'qlora')."""
    packed = collation == "packed"
    rows = (steps + 2) * size.batch_size * (2 if packed else 1)
    output_dir = tempfile.mkdtemp(prefix="rft-perf-")
    common = _common_args(size, steps, output_dir, device)
    model = _model(size, quant, ckpt_root, device)
    tok = setup.tokenizer(size.vocab_size)
    if kind == "rft":
        from rft_trl.config import RFTConfig
        from rft_trl.trainer import RFTTrainer

        args = RFTConfig(**common, packing=packed, max_length=size.seq_len)
        return RFTTrainer(
            model,
            args,
            train_dataset=setup.dataset(rows, size, response_fraction=response_fraction),
            processing_class=tok,
            peft_config=setup.lora_config(size),
        )
    if kind == "trl_sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(**common, packing=packed, max_length=size.seq_len)
        return SFTTrainer(
            model,
            args,
            train_dataset=setup.dataset(
                rows, size, with_classes=False, response_fraction=response_fraction
            ),
            processing_class=tok,
            peft_config=setup.lora_config(size),
        )
    if kind == "plain_sft":
        data = setup.dataset(rows, size, with_classes=False, response_fraction=response_fraction)
        return _plain_trainer(model, size, packed, data, common)
    raise ValueError(f"unknown trainer kind {kind!r}; one of {KINDS}")


def _plain_trainer(model, size: setup.ModelSize, packed: bool, data, common: dict[str, Any]):
    """`PlainSFTTrainer` with the PEFT wrapping and collation `SFTTrainer` would apply."""
    from peft import get_peft_model
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    quantized = getattr(model, "is_loaded_in_4bit", False)
    model = get_peft_model(model, setup.lora_config(size))
    if quantized:  # SFTTrainer keeps QLoRA adapters in bf16 (QLoRA paper §3); do the same
        for param in model.parameters():
            if param.requires_grad:
                param.data = param.data.to(torch.bfloat16)
    if packed:
        data = pack_dataset(data, size.seq_len, strategy="bfd")
    collator = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=packed)
    args = TrainingArguments(**common, remove_unused_columns=False)
    return PlainSFTTrainer(model=model, args=args, train_dataset=data, data_collator=collator)


def quiet(trainer: Trainer) -> None:
    """No metrics printed to stdout (the parent prints the tables)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def run(spec: dict[str, Any], baton) -> dict[str, Any]:
    """Train `warmup + steps` steps in turn with the group; step times after warm-up, peak RSS."""
    size = setup.SIZES[spec["size"]]
    warmup, steps = spec["warmup"], spec["steps"]
    device = spec.get("device", "cpu")
    trainer = build_trainer(
        spec["kind"],
        size,
        spec["collation"],
        spec["quant"],
        warmup + steps,
        spec.get("ckpt_root"),
        device,
        spec.get("response_fraction"),
    )
    clock = StepClock(baton, warmup + steps, device)
    quiet(trainer)
    trainer.add_callback(clock)
    trainer.train()
    return {
        "step_seconds": clock.wall[warmup:],
        "step_cpu_seconds": clock.cpu[warmup:],
        "peak_memory": clock.meter.peak(),
        "memory_at_start": clock.memory_at_start,
        "memory_kind": "cuda_max_allocated" if device == "cuda" else "rss",
        "lifetime_peak_rss": setup.lifetime_peak_rss_bytes(),
    }
