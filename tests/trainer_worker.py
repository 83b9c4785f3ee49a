"""One optimizer step of RFTTrainer on the tiny rows; run in-process or under torchrun.

Under torchrun, rank 0 writes the logged loss and the parameter update to `--out`
(safetensors + JSON), so the test can compare splittings of the same global batch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))

from rft_trl.config import RFTConfig
from rft_trl.dist import shut_down
from rft_trl.trainer import RFTTrainer

import tiny_rows


def build_trainer(per_device: int, grad_accum: int, **config) -> RFTTrainer:
    """An RFTTrainer for one SGD step (lr 1) on the tiny rows (8 unless `dataset` is given).

    CPU and fp32 unless `use_cpu=False` / `bf16=True` are passed (the CUDA tests do). An
    `eval_dataset` is evaluated in micro-batches of 2 rows.
    """
    dataset = config.pop("dataset", None) or tiny_rows.dataset(8)
    eval_dataset = config.pop("eval_dataset", None)
    attn_implementation = config.pop("attn_implementation", None)
    args = RFTConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=grad_accum,
        max_steps=1,
        learning_rate=1.0,
        optim="sgd",
        lr_scheduler_type="constant",
        use_cpu=config.pop("use_cpu", True),
        bf16=config.pop("bf16", False),
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        seed=0,
        max_length=config.pop("max_length", None),
        disable_tqdm=True,
        per_device_eval_batch_size=2,
        max_grad_norm=config.pop("max_grad_norm", 0.0),  # no clipping: compare whole gradients
        **config,
    )
    return RFTTrainer(
        tiny_rows.model(attn_implementation=attn_implementation),
        args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )


def one_step(
    per_device: int, grad_accum: int, **config
) -> tuple[float, dict[str, torch.Tensor], dict]:
    """Train one step; return the logged loss, the parameter update and the log entry (with
    `eval_loss` after the step, when an `eval_dataset` is given)."""
    trainer = build_trainer(per_device, grad_accum, **config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    after = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    if trainer.eval_dataset is not None:
        log = {**log, "eval_loss": trainer.evaluate()["eval_loss"]}
    return float(log["loss"]), {n: after[n] - before[n] for n in before}, log


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-device", type=int, required=True)
    parser.add_argument("--grad-accum", type=int, required=True)
    parser.add_argument("--scope", default="sample")
    parser.add_argument("--out", required=True)
    parser.add_argument("--eval-rows", type=int, default=0, help="evaluate these rows after")
    args = parser.parse_args()
    evals = tiny_rows.dataset(args.eval_rows, seed=1) if args.eval_rows else None
    loss, update, log = one_step(
        args.per_device, args.grad_accum, rft_group_scope=args.scope, eval_dataset=evals
    )
    if int(os.environ.get("RANK", "0")) == 0:
        save_file({k: v.contiguous() for k, v in update.items()}, args.out + ".safetensors")
        with open(args.out + ".json", "w") as handle:
            json.dump(
                {"loss": loss, "log": log, "world_size": int(os.environ.get("WORLD_SIZE", "1"))},
                handle,
            )
    shut_down()  # the trainer died with one_step; see rft_trl.dist.shut_down


if __name__ == "__main__":
    main()
