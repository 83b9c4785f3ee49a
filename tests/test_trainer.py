"""RFTTrainer behaviour: SFT parity with `rft: false`, metrics, QLoRA, degenerate data, bad input."""

from __future__ import annotations

import logging
import math
import re

import pytest
import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from rft_trl.collator import TokenClassAlignmentError
from rft_trl.config import RFTConfig
from rft_trl.dataset_ops import NoResponseTokensError
from rft_trl.options import RFTConfigError
from rft_trl.trainer import RFTTrainer, parallelism_conflicts

import tiny_rows

pytestmark = pytest.mark.trl_compat

COMMON = {
    "per_device_train_batch_size": 4,
    "max_steps": 2,
    "learning_rate": 1e-2,
    "use_cpu": True,
    "bf16": False,
    "report_to": "none",
    "logging_steps": 1,
    "save_strategy": "no",
    "seed": 0,
    "disable_tqdm": True,
    "max_length": None,
}


def losses(trainer) -> list[float]:
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_rft_false_is_exactly_sft_trainer(tmp_path):
    data = tiny_rows.dataset(8).remove_columns("token_class")
    sft = SFTTrainer(
        tiny_rows.model(),
        SFTConfig(output_dir=str(tmp_path / "sft"), **COMMON),
        train_dataset=data,
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    sft.train()
    rft = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path / "rft"), rft=False, **COMMON),
        train_dataset=data,
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    rft.train()
    assert losses(rft) == losses(sft)
    assert "reasoning_weight" not in rft.state.log_history[0]


def test_metrics_are_logged_for_train_and_eval(tmp_path):
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), eval_strategy="steps", eval_steps=2, **COMMON),
        train_dataset=tiny_rows.dataset(8),
        eval_dataset=tiny_rows.dataset(4, seed=1),
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    trainer.train()
    train_logs = [e for e in trainer.state.log_history if "loss" in e]
    eval_logs = [e for e in trainer.state.log_history if "eval_loss" in e]
    for entry in train_logs:
        for key in ("boilerplate_loss", "reasoning_loss", "reasoning_weight", "reasoning_fraction"):
            assert math.isfinite(entry[key])
        assert 0 < entry["reasoning_weight"] < 1 and 0 < entry["reasoning_fraction"] < 1
    assert eval_logs and all(
        math.isfinite(e["eval_reasoning_loss"]) and 0 < e["eval_reasoning_fraction"] < 1
        for e in eval_logs
    )


def test_unlabelled_eval_set_beside_labelled_training_rows_warns(tmp_path, caplog):
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(
            output_dir=str(tmp_path),
            shad_min_steps=1,
            shad_cache_dir=str(tmp_path / "cache"),
            **COMMON,
        ),
        train_dataset=tiny_rows.dataset(8),
        eval_dataset=tiny_rows.dataset(4, seed=1).remove_columns("token_class"),
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    with caplog.at_level("WARNING", logger="rft_trl.trainer"):
        trainer.ensure_labels()
    assert "eval set(s) ['eval'] do not" in caplog.text
    assert "token_class" in trainer.eval_dataset.column_names


def test_each_eval_set_logs_rft_metrics_under_its_own_prefix(tmp_path):
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), **COMMON),
        train_dataset=tiny_rows.dataset(8),
        eval_dataset={"a": tiny_rows.dataset(4, seed=1), "b": tiny_rows.dataset(4, seed=2)},
        processing_class=tiny_rows.tokenizer(),
    )
    metrics = trainer.evaluate()
    logged = {k: v for e in trainer.state.log_history for k, v in e.items()}
    for name in ("a", "b"):
        assert math.isfinite(logged[f"eval_{name}_reasoning_loss"])
        assert math.isfinite(metrics[f"eval_{name}_loss"])
    assert "eval_reasoning_loss" not in logged  # not merged under one name


def test_degenerate_samples_stay_finite(tmp_path, caplog):
    rows = tiny_rows.rows(4)
    rows[0]["token_class"] = [
        c if c == -100 else 0 for c in rows[0]["token_class"]
    ]  # boilerplate only
    rows[1]["token_class"] = [
        c if c == -100 else 1 for c in rows[1]["token_class"]
    ]  # reasoning only
    rows.append(
        {"input_ids": [5, 6, 7, 8], "labels": [-100] * 4, "token_class": [-100] * 4}
    )  # no response
    long_prompt = {
        "input_ids": list(range(2, 40)),
        "labels": [-100] * 36 + [38, 39],
        "token_class": [-100] * 36 + [1, 0],
    }
    rows.append(long_prompt)  # fully truncated at max_length 30: its response is cut off
    config = {**COMMON, "max_length": 30}
    caplog.set_level(logging.WARNING, logger="rft_trl.dataset_ops")
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), **config),
        train_dataset=Dataset.from_list(rows),
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    assert len(trainer.train_dataset) == 4  # the two rows without response tokens are dropped
    assert "Dropped 2 of 6 rows that have no response tokens" in caplog.text  # and said so
    assert "max_length=30" in caplog.text
    trainer.train()
    assert all(math.isfinite(loss) for loss in losses(trainer))


def test_plain_text_data_is_refused_with_the_fix(tmp_path):
    data = Dataset.from_list([{"text": "t3 t4 t5 t6"}, {"text": "t7 t8 t9"}])
    with pytest.raises(NoResponseTokensError, match="assistant_only_loss"):
        RFTTrainer(
            tiny_rows.model(),
            RFTConfig(output_dir=str(tmp_path), **COMMON),
            train_dataset=data,
            processing_class=tiny_rows.tokenizer(),
        )


def test_token_class_length_mismatch_is_refused(tmp_path):
    rows = tiny_rows.rows(4)
    rows[2]["token_class"] = rows[2]["token_class"][:-1]
    with pytest.raises(TokenClassAlignmentError, match="row 2"):
        RFTTrainer(
            tiny_rows.model(),
            RFTConfig(output_dir=str(tmp_path), **COMMON),
            train_dataset=Dataset.from_list(rows),
            processing_class=tiny_rows.tokenizer(),
        )


def test_model_without_lm_head_is_refused(tmp_path):
    from rft_trl.modeling import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="language-model head"):
        RFTTrainer(
            tiny_rows.model().model,
            RFTConfig(output_dir=str(tmp_path), **COMMON),
            train_dataset=tiny_rows.dataset(4),
            processing_class=tiny_rows.tokenizer(),
        )


@pytest.mark.parametrize(
    ("setting", "names"),
    [
        ({"loss_type": "dft"}, "loss_type='dft'"),
        ({"label_smoothing_factor": 0.1}, "label_smoothing_factor=0.1"),
        ({"packing": True, "packing_strategy": "wrapped", "max_length": 32}, "packing_strategy="),
        ({"compute_loss_func": lambda *a, **k: 0}, "compute_loss_func"),
        ({"packing": True, "packing_strategy": "bfd_split", "max_length": 32}, "'bfd_split'"),
        ({"torch_compile": True}, "torch_compile=True"),  # it crashed in the first step
    ],
)
def test_trl_settings_rft_would_override_are_refused(tmp_path, setting, names):
    # Each would be silently replaced by RFT's loss (or, for wrapped packing, would merge and cut
    # samples so RFT's per-sample groups are wrong): refused before any work, naming the key.
    setting = dict(setting)
    loss_func = setting.pop("compute_loss_func", None)
    config = {**COMMON, **setting}
    with pytest.raises(RFTConfigError, match=re.escape(names)) as caught:
        RFTTrainer(
            tiny_rows.model(),
            RFTConfig(output_dir=str(tmp_path), **config),
            train_dataset=tiny_rows.dataset(4),
            processing_class=tiny_rows.tokenizer(),
            compute_loss_func=loss_func,
        )
    assert "`rft=True` cannot be combined with" in str(caught.value)
    # With rft off, TRL takes the same settings as they are.
    RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path / "sft"), rft=False, **config),
        train_dataset=tiny_rows.dataset(4).remove_columns("token_class"),
        processing_class=tiny_rows.tokenizer(),
        compute_loss_func=loss_func,
    )


def test_streamed_dataset_and_padding_free_custom_collator_are_refused_with_the_fix(tmp_path):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    with pytest.raises(TypeError, match=r"IterableDataset.*Fix: load without `streaming=True`"):
        RFTTrainer(
            tiny_rows.model(),
            RFTConfig(output_dir=str(tmp_path), **COMMON),
            train_dataset=tiny_rows.dataset(4).to_iterable_dataset(),
            processing_class=tiny_rows.tokenizer(),
        )
    with pytest.raises(ValueError, match="Fix: drop `data_collator`"):
        RFTTrainer(
            tiny_rows.model(),
            RFTConfig(output_dir=str(tmp_path), padding_free=True, **COMMON),
            train_dataset=tiny_rows.dataset(4),
            processing_class=tiny_rows.tokenizer(),
            data_collator=DataCollatorForLanguageModeling(pad_token_id=0),
        )


def _stored_labels(tmp_path, eval_rows=None):
    """A labels directory for the tiny rows: LD = l_s - l_o in [-0.1, 0.1], classes at 0."""
    from rft_trl.shad import save_labels

    def with_losses(data, seed):
        gen = torch.Generator().manual_seed(seed)
        rows = []
        for row in data:
            ld = (torch.rand(len(row["labels"]), generator=gen) * 0.2 - 0.1).tolist()
            mask = [label != -100 for label in row["labels"]]
            rows.append(
                {
                    "input_ids": row["input_ids"],
                    "labels": row["labels"],
                    "token_class": [
                        int(d > 0) if m else -100 for d, m in zip(ld, mask, strict=True)
                    ],
                    "shad_l_o": [0.0] * len(ld),
                    "shad_l_s": [d if m else 0.0 for d, m in zip(ld, mask, strict=True)],
                }
            )
        return Dataset.from_list(rows)

    train = with_losses(tiny_rows.dataset(8), 0)
    evals = {"eval": with_losses(eval_rows, 1)} if eval_rows is not None else {}
    return save_labels(train, tmp_path / "labels", eval_datasets=evals), train, evals


def test_stored_labels_are_rethresholded_at_shad_threshold(tmp_path):
    # The losses are stored so the threshold can change; the TRL path used the stored classes.
    path, stored, stored_evals = _stored_labels(tmp_path, eval_rows=tiny_rows.dataset(4, seed=1))
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(
            output_dir=str(tmp_path / "out"),
            shad_labels_path=str(path),
            shad_threshold=0.05,
            **COMMON,
        ),
        train_dataset=tiny_rows.dataset(8).remove_columns("token_class"),
        eval_dataset=tiny_rows.dataset(4, seed=1).remove_columns("token_class"),
        processing_class=tiny_rows.tokenizer(),
    )
    for got, ref in ((trainer.train_dataset, stored), (trainer.eval_dataset, stored_evals["eval"])):
        assert got["input_ids"] == ref["input_ids"]
        for classes, l_s in zip(got["token_class"], ref["shad_l_s"], strict=True):
            for cls, ld in zip(classes, l_s, strict=True):
                if cls != -100:
                    assert cls == int(ld > 0.05)  # l_o is 0
    moved = sum(
        c == 1 and d <= 0.05
        for row in stored
        for c, d in zip(row["token_class"], row["shad_l_s"], strict=True)
    )
    assert moved > 0  # the stored classes (threshold 0) differ from the ones asked for


def test_stored_labels_without_an_eval_split_name_the_eval_set_and_the_fix(tmp_path):
    from rft_trl.shad import ShadLabelsError

    path, _, _ = _stored_labels(tmp_path)
    with pytest.raises(ShadLabelsError, match=r"no eval split, so eval set 'eval'.*Fix: re-run"):
        RFTTrainer(
            tiny_rows.model(),
            RFTConfig(output_dir=str(tmp_path / "out"), shad_labels_path=str(path), **COMMON),
            train_dataset=tiny_rows.dataset(8).remove_columns("token_class"),
            eval_dataset=tiny_rows.dataset(4, seed=1).remove_columns("token_class"),
            processing_class=tiny_rows.tokenizer(),
        )


def test_options_changed_after_the_config_was_built_are_validated(tmp_path):
    args = RFTConfig(output_dir=str(tmp_path), **COMMON)
    args.rft_temperature = 0  # gave a NaN loss: the config validated only when it was built
    with pytest.raises(RFTConfigError, match="rft_temperature"):
        RFTTrainer(
            tiny_rows.model(),
            args,
            train_dataset=tiny_rows.dataset(4),
            processing_class=tiny_rows.tokenizer(),
        )


def test_skip_prepare_dataset_leaves_rows_unpacked_as_sft_trainer_does(tmp_path):
    config = {
        **COMMON,
        "packing": True,
        "max_length": 32,
        "dataset_kwargs": {"skip_prepare_dataset": True},
    }
    data = tiny_rows.dataset(8)
    sft = SFTTrainer(
        tiny_rows.model(),
        SFTConfig(output_dir=str(tmp_path / "sft"), **config),
        train_dataset=data.remove_columns("token_class"),
        processing_class=tiny_rows.tokenizer(),
    )
    rft = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path / "rft"), **config),
        train_dataset=data,
        processing_class=tiny_rows.tokenizer(),
    )
    rft.ensure_labels()
    assert len(sft.train_dataset) == len(rft.train_dataset) == 8  # RFT packed them before
    assert rft.train_dataset["input_ids"] == data["input_ids"]


def test_parallelism_conflicts_name_zero3_and_context_parallelism():
    assert parallelism_conflicts(zero_stage=None, context_parallel=False) == []
    assert parallelism_conflicts(zero_stage=2, context_parallel=False) == []
    (zero3,) = parallelism_conflicts(zero_stage=3, context_parallel=False)
    assert "ZeRO-3" in zero3 and "deepspeed_zero2.yaml" in zero3
    (cp,) = parallelism_conflicts(zero_stage=None, context_parallel=True)
    assert "cp_size > 1" in cp


def test_moe_load_balancing_loss_is_added_as_trl_adds_it(tmp_path):
    # A Mixture-of-Experts model: RFT's loss plus router_aux_loss_coef x the model's aux loss,
    # the term SFTTrainer adds; it was dropped before.
    from transformers import MixtralConfig, MixtralForCausalLM

    from rft_trl.modeling import model_inputs

    torch.manual_seed(0)
    config = MixtralConfig(
        vocab_size=tiny_rows.VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_local_experts=4,
        num_experts_per_tok=2,
        output_router_logits=True,
        router_aux_loss_coef=0.5,
        max_position_embeddings=64,
    )
    trainer = RFTTrainer(
        MixtralForCausalLM(config),
        # TRL writes its argument into the model config (older TRL defaults it to 0.0)
        RFTConfig(output_dir=str(tmp_path), router_aux_loss_coef=0.5, **COMMON),
        train_dataset=tiny_rows.dataset(4),
        processing_class=tiny_rows.tokenizer(),
    )
    trainer.ensure_labels()
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    model = trainer.model.eval()
    with torch.no_grad():
        with_aux = trainer.compute_loss(model, dict(batch))
        aux = model(**model_inputs(batch), output_router_logits=True).aux_loss
        model.config.router_aux_loss_coef = 0.0
        without = trainer.compute_loss(model, dict(batch))
    assert aux > 0
    assert with_aux.item() == pytest.approx(without.item() + 0.5 * aux.item(), rel=1e-6)
    model.config.router_aux_loss_coef = 0.5
    trainer.train()  # the training path: the term divided over gradient accumulation steps
    assert len(losses(trainer)) == 2 and all(math.isfinite(x) for x in losses(trainer))


def test_batch_scope_prepass_runs_in_training_mode(tmp_path):
    # After an evaluation (or from `from_pretrained`) the model is in eval mode; the pre-pass must
    # weigh the step with the forward training_step uses (dropout on), not the eval one.
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), rft_group_scope="batch", **COMMON),
        train_dataset=tiny_rows.dataset(4),
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    trainer.ensure_labels()
    seen = []
    trainer.model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    trainer.model.eval()
    batches, count = trainer.get_batch_samples(
        iter(trainer.get_train_dataloader()), 1, trainer.args.device
    )
    assert len(batches) == 1 and int(count) == 4
    assert seen == [True]


def test_qlora_4bit_trains_on_cpu_and_logs_rft_metrics(tmp_path):
    import bitsandbytes  # noqa: F401 - installed with the test extras ('.[dev,qlora]'): never skip
    from transformers import BitsAndBytesConfig

    path = tmp_path / "base"
    model = tiny_rows.model()
    model.save_pretrained(path)
    tiny_rows.tokenizer().save_pretrained(path)
    trainer = RFTTrainer(
        str(path),
        RFTConfig(
            output_dir=str(tmp_path / "out"), model_init_kwargs={"dtype": torch.float32}, **COMMON
        ),
        train_dataset=tiny_rows.dataset(8),
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32
        ),
        peft_config=tiny_rows.lora(),
    )
    assert (
        getattr(trainer.model, "is_loaded_in_4bit", False)
        or trainer.model.get_base_model().is_loaded_in_4bit
    )
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    assert logs and all(math.isfinite(e["loss"]) and "reasoning_weight" in e for e in logs)


def test_gradient_checkpointing_gives_the_same_loss(tmp_path):
    def run(checkpointing: bool) -> list[float]:
        trainer = RFTTrainer(
            tiny_rows.model(),
            RFTConfig(
                output_dir=str(tmp_path / str(checkpointing)),
                gradient_checkpointing=checkpointing,
                **COMMON,
            ),
            train_dataset=tiny_rows.dataset(8),
            processing_class=tiny_rows.tokenizer(),
            peft_config=tiny_rows.lora(),
        )
        trainer.train()
        return losses(trainer)

    assert run(True) == pytest.approx(run(False), rel=1e-5)


def test_a_shad_cache_miss_and_hit_train_the_same_under_bf16(tmp_path):
    """The shuffle-tune's Trainer prepares the run's PEFT model; the run must still prepare it
    itself (autocast), so labelling on a miss or loading on a hit trains identically."""
    data = tiny_rows.dataset(16).remove_columns("token_class")
    runs = []
    for name in ("miss", "hit"):
        trainer = RFTTrainer(
            tiny_rows.model(),
            RFTConfig(
                output_dir=str(tmp_path / name),
                **{**COMMON, "bf16": True, "max_steps": 3},
                shad_min_steps=1,
                shad_cache_dir=str(tmp_path / "cache"),
            ),
            train_dataset=data,
            processing_class=tiny_rows.tokenizer(),
            peft_config=tiny_rows.lora(),
        )
        trainer.train()
        runs.append((trainer.shad_report.cache, losses(trainer)))
    assert [cache for cache, _ in runs] == ["miss", "hit"]
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("scope", ["sample", "batch"])
def test_a_resumed_run_continues_exactly_like_an_uninterrupted_one(tmp_path, scope):
    """Four steps straight (SHAD labels in-process: a cache miss) against two steps restored from
    the step-2 checkpoint (labels from the cache): steps 3 and 4 log the same values."""
    data = tiny_rows.dataset(16).remove_columns("token_class")

    def trainer(name: str) -> RFTTrainer:
        config = {**COMMON, "bf16": True, "max_steps": 4, "save_strategy": "steps"}
        return RFTTrainer(
            tiny_rows.model(),
            RFTConfig(
                output_dir=str(tmp_path / name),
                **config,
                save_steps=2,
                rft_group_scope=scope,
                shad_min_steps=1,
                shad_cache_dir=str(tmp_path / "cache"),
            ),
            train_dataset=data,
            processing_class=tiny_rows.tokenizer(),
            peft_config=tiny_rows.lora(),
        )

    straight = trainer("straight")
    straight.train()
    resumed = trainer("resumed")
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-2"))
    assert (straight.shad_report.cache, resumed.shad_report.cache) == ("miss", "hit")

    def late_logs(t: RFTTrainer) -> list[dict]:
        return [
            {k: v for k, v in entry.items() if k not in ("epoch",)}
            for entry in t.state.log_history
            if "loss" in entry and entry["step"] > 2
        ]

    assert len(late_logs(straight)) == 2
    assert late_logs(resumed) == late_logs(straight)


def test_evaluation_metrics_do_not_carry_what_predict_saw(tmp_path):
    """`predict()` between two evaluations (e.g. a prediction-table callback) must not leak its
    batches into the next evaluation's RFT metrics."""
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), **COMMON, per_device_eval_batch_size=2),
        train_dataset=tiny_rows.dataset(8),
        eval_dataset=tiny_rows.dataset(6, seed=1),
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    first = trainer.evaluate()
    trainer.predict(trainer.eval_dataset.select(range(3)))
    second = trainer.evaluate()
    for key in ("eval_reasoning_fraction", "eval_reasoning_weight", "eval_reasoning_loss"):
        assert second[key] == first[key], key


def test_data_with_almost_every_token_in_the_loss_warns(tmp_path, caplog):
    """A prompt left in the loss (e.g. Axolotl roles_to_train with user turns) is named."""
    rows = [
        {
            "input_ids": list(range(2, 42)),
            "labels": [-100, *range(3, 42)],
            "token_class": [-100, *(i % 2 for i in range(39))],
        }
        for _ in range(4)
    ]
    caplog.set_level(logging.WARNING, logger="rft_trl.dataset_ops")
    RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), **COMMON),
        train_dataset=Dataset.from_list(rows),
        processing_class=tiny_rows.tokenizer(),
    )
    assert "98% of the first 4 rows' tokens are in the loss: is the prompt masked?" in caplog.text
    caplog.clear()
    RFTTrainer(  # ordinary agent-like rows: no warning
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), **COMMON),
        train_dataset=tiny_rows.dataset(4),
        processing_class=tiny_rows.tokenizer(),
    )
    assert "is the prompt masked" not in caplog.text


def test_rows_without_labels_are_refused_with_the_fix(tmp_path):
    """Untokenized or label-less rows given with `skip_prepare_dataset` (TRL or Axolotl)."""
    rows = [{"input_ids": [5, 6, 7, 8]}, {"input_ids": [5, 6, 9]}]
    config = {**COMMON, "dataset_kwargs": {"skip_prepare_dataset": True}}
    with pytest.raises(NoResponseTokensError, match=r"no `labels` column.*skip_prepare_dataset"):
        RFTTrainer(
            tiny_rows.model(),
            RFTConfig(output_dir=str(tmp_path), **config),
            train_dataset=Dataset.from_list(rows),
            processing_class=tiny_rows.tokenizer(),
        )


def test_packing_without_max_length_is_refused_when_the_trainer_is_built(tmp_path):
    """SFTTrainer refuses it at construction; RFTTrainer failed inside TRL's packer after SHAD."""
    config = {**COMMON, "packing": True, "max_length": None}
    with pytest.raises(ValueError, match="max_length` can't be `None`"):
        RFTTrainer(
            tiny_rows.model(),
            RFTConfig(output_dir=str(tmp_path), **config),
            train_dataset=tiny_rows.dataset(4),
            processing_class=tiny_rows.tokenizer(),
        )


def test_predict_and_dataloaders_work_before_train(tmp_path):
    """As with SFTTrainer: predict() and the dataloaders before train() (SHAD labels first)."""
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(
            output_dir=str(tmp_path),
            **COMMON,
            per_device_eval_batch_size=2,
            shad_min_steps=1,
            shad_cache_dir=str(tmp_path / "cache"),
        ),
        train_dataset=tiny_rows.dataset(8).remove_columns("token_class"),
        eval_dataset=tiny_rows.dataset(4, seed=1).remove_columns("token_class"),
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["token_class"].shape == batch["labels"].shape
    assert "token_class" in next(iter(trainer.get_eval_dataloader()))
    output = trainer.predict(trainer.eval_dataset)
    assert math.isfinite(output.metrics["test_loss"])
    with pytest.raises(ValueError, match="needs rows with SHAD labels"):
        trainer.predict(tiny_rows.dataset(2, seed=3).remove_columns("token_class"))


def test_plain_training_arguments_are_taken_as_sft_trainer_takes_them(tmp_path):
    from transformers import TrainingArguments

    plain = {k: v for k, v in COMMON.items() if k != "max_length"}
    trainer = RFTTrainer(
        tiny_rows.model(),
        TrainingArguments(output_dir=str(tmp_path), **plain),
        train_dataset=tiny_rows.dataset(8),
        processing_class=tiny_rows.tokenizer(),
        peft_config=tiny_rows.lora(),
    )
    assert isinstance(trainer.args, RFTConfig) and trainer.args.rft  # RFT's defaults
    trainer.train()
    assert all("reasoning_weight" in e for e in trainer.state.log_history if "loss" in e)


def test_a_user_collator_that_pads_on_the_left(tmp_path):
    from transformers import DataCollatorForSeq2Seq

    tokenizer = tiny_rows.tokenizer()
    tokenizer.padding_side = "left"
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), **COMMON),
        train_dataset=tiny_rows.dataset(8),
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True),
        peft_config=tiny_rows.lora(),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    assert bool((batch["input_ids"][:, 0] == tokenizer.pad_token_id).any())  # really left-padded
    assert torch.equal(batch["token_class"] == -100, batch["labels"] == -100)
    trainer.train()


def test_rft_false_is_not_tagged_rft(tmp_path):
    trainer = RFTTrainer(
        tiny_rows.model(),
        RFTConfig(output_dir=str(tmp_path), rft=False, **COMMON),
        train_dataset=tiny_rows.dataset(4).remove_columns("token_class"),
        processing_class=tiny_rows.tokenizer(),
    )
    assert "rft" not in trainer._tag_names and "sft" in trainer._tag_names


def test_submodules_are_attributes_of_the_package():
    import subprocess
    import sys

    code = "import rft_trl; print(rft_trl.dist.shut_down.__name__); rft_trl.no_such_thing"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "shut_down"
    assert "has no attribute 'no_such_thing'" in proc.stderr
