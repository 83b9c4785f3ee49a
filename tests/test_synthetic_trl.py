"""The tiny checkpoint trains with TRL's SFTTrainer + LoRA on both synthetic dataset forms."""

from __future__ import annotations

import math

import pytest
import torch
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer


def _lora_params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


@pytest.mark.usefixtures("single_thread_torch")
@pytest.mark.parametrize("form", ["messages", "prompt_completion"])
def test_lora_sft_trains_a_few_steps(
    tmp_path, tiny_model, tiny_tokenizer, messages_dataset, prompt_completion_dataset, form
):
    dataset = messages_dataset if form == "messages" else prompt_completion_dataset
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-2,
        assistant_only_loss=form == "messages",
        max_length=768,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
    )
    trainer = SFTTrainer(
        model=tiny_model,
        args=args,
        train_dataset=dataset,
        processing_class=tiny_tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0),
    )
    assert trainer.completion_only_loss == (form == "prompt_completion")
    row = trainer.train_dataset[0]
    trained = [lab != -100 for lab in row["labels"]]
    assert 0 < sum(trained) < len(trained)  # prompt masked out, response trained
    assert not trained[0]

    before = _lora_params(trainer.model)
    assert before
    result = trainer.train()
    after = _lora_params(trainer.model)

    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    assert math.isfinite(result.training_loss)
    changed = [n for n in before if not torch.equal(before[n], after[n])]
    assert any("lora_B" in n for n in changed)
