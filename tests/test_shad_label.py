"""`label_dataset` end to end on the tiny Llama: real Trainer, real PEFT, the cache, resumption and bad input."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import LlamaModel, TrainingArguments

from rft_trl.modeling import unwrap
from rft_trl.shad import (
    ShadDataError,
    ShadLabelsError,
    ShadSettings,
    UnsupportedModelError,
    label_dataset,
    save_labels,
)
from rft_trl.shad import score as score_module
from rft_trl.shad import tune as tune_module

MAX_LENGTH = 640


pytestmark = pytest.mark.usefixtures("one_thread_per_module")


@pytest.fixture(scope="module")
def tokenized(shad_traces) -> Dataset:
    """The shared SHAD traces (conftest), under this module's name for them."""
    return shad_traces


@pytest.fixture
def args(tmp_path) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=5e-3,
        use_cpu=True,
        report_to=[],
        seed=0,
    )


def settings(tmp_path, **overrides) -> ShadSettings:
    return ShadSettings(min_steps=2, cache_dir=str(tmp_path / "cache"), **overrides)


def run(model, data, tmp_path, args, tokenizer, **kwargs):
    kw = {
        "settings": settings(tmp_path),
        "training_args": args,
        "tokenizer": tokenizer,
        "max_length": MAX_LENGTH,
    }
    kw.update(kwargs)
    return label_dataset(model, data, progress=False, **kw)


def snapshot(model: torch.nn.Module):
    return (
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        {n: p.requires_grad for n, p in model.named_parameters()},
        [
            (n, type(m).__name__, m.training, len(m._forward_hooks))
            for n, m in model.named_modules()
        ],
        model.training,
        # attributes the training stack sets on the objects (accelerate's "prepared" flag, hook
        # lists): left behind, they change how the run's own training treats the model
        sorted(vars(model)),
        sorted(vars(unwrap(model))),
        next(model.parameters()).device,
    )


def assert_same_model(before, after, skip=()):
    assert before[0].keys() == after[0].keys()
    changed = [
        k
        for k in before[0]
        if not any(s in k for s in skip) and not torch.equal(before[0][k], after[0][k])
    ]
    assert changed == []
    assert before[1:] == after[1:]


def assert_valid_labels(result, data):
    out = result.dataset
    assert out.column_names == [*data.column_names, "token_class", "shad_l_o", "shad_l_s"]
    assert out["sample_id"] == data["sample_id"]
    for ids, labels, cls, l_o, l_s in zip(
        out["input_ids"],
        out["labels"],
        out["token_class"],
        out["shad_l_o"],
        out["shad_l_s"],
        strict=True,
    ):
        assert len(ids) == len(cls) == len(l_o) == len(l_s)
        labels, cls, l_o, l_s = map(np.asarray, (labels, cls, l_o, l_s))
        assert ((cls == -100) == (labels == -100)).all()
        assert set(cls[labels != -100].tolist()) <= {0, 1}
        assert (l_o[labels == -100] == 0).all() and (l_s[labels == -100] == 0).all()
        in_loss = labels != -100
        assert ((cls[in_loss] == 1) == ((l_s - l_o)[in_loss] > 0)).all()  # the default threshold 0
    assert str(out.features["token_class"].feature.dtype) == "int8"
    assert str(out.features["shad_l_o"].feature.dtype) == "float32"


def test_plain_model_is_labelled_and_restored(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer
):
    tiny_model.eval()
    before = snapshot(tiny_model)
    result = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert_same_model(before, snapshot(tiny_model))
    assert not hasattr(tiny_model, "peft_config")
    assert_valid_labels(result, tokenized)
    report = result.report
    assert report.rows == 16 and report.sampled == 8 and report.tune_steps == 2
    assert report.cache == "miss" and report.probe is not None and report.probe.tokens > 0
    assert report.response_tokens == sum(sum(x != -100 for x in lab) for lab in tokenized["labels"])
    assert (
        0 <= report.boilerplate_fraction <= 1
        and sum(report.histogram.counts) == report.response_tokens
    )
    ld = np.concatenate(
        [
            np.subtract(s, o)
            for s, o in zip(result.dataset["shad_l_s"], result.dataset["shad_l_o"], strict=True)
        ]
    )
    assert np.abs(ld).max() > 1e-4  # the shuffle-tune changed the model
    assert {"sample+shuffle", "tune", "score", "probe", "classify", "total"} <= set(report.seconds)
    assert "boilerplate fraction" in report.summary()


def test_peft_model_keeps_its_own_adapter_exactly(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer
):
    run_lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(tiny_model, run_lora)
    frozen = next(n for n, _ in model.named_parameters() if "lora_A" in n)
    model.get_parameter(frozen).requires_grad_(False)  # an unusual flag that must survive
    model.train()
    before = snapshot(model)
    result = run(model, tokenized, tmp_path, args, tiny_tokenizer, peft_config=run_lora)
    assert_same_model(before, snapshot(model))
    assert model.active_adapter == "default" and list(model.peft_config) == ["default"]
    assert not any("shad" in n for n, _ in model.named_modules())
    assert_valid_labels(result, tokenized)


def test_cache_hit_reuses_everything_and_threshold_needs_no_rescoring(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer, monkeypatch
):
    first = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)

    def fail(*a, **k):
        raise AssertionError("must not run on a cache hit")

    monkeypatch.setattr("rft_trl.shad.api.tune", fail)
    monkeypatch.setattr(score_module, "score_batch", fail)
    again = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert again.report.cache == "hit"
    assert again.dataset["token_class"] == first.dataset["token_class"]
    assert again.dataset["shad_l_s"] == first.dataset["shad_l_s"]
    margin = run(
        tiny_model,
        tokenized,
        tmp_path,
        args,
        tiny_tokenizer,
        settings=settings(tmp_path, threshold=0.05),
    )
    assert margin.report.cache == "hit" and margin.report.threshold == 0.05
    for cls, l_o, l_s in zip(
        margin.dataset["token_class"],
        first.dataset["shad_l_o"],
        first.dataset["shad_l_s"],
        strict=True,
    ):
        ld = np.subtract(l_s, l_o)
        assert [c for c in cls if c != -100] == [
            int(d > 0.05) for d, c in zip(ld, cls, strict=True) if c != -100
        ]


def test_a_second_run_waits_for_the_run_computing_the_entry_then_reuses_it(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer, caplog
):
    """Two independent runs on one cache entry: the second waits on the lock, never reads half a shard."""
    fcntl = pytest.importorskip("fcntl")
    first = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    lock = Path(first.report.cache_entry + ".lock")
    assert lock.read_text().startswith(f"pid {os.getpid()} ")
    results = []
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another run is computing this entry
        held.seek(0)
        held.truncate()
        held.write("pid 4242 on elsewhere, since 2026-01-01T00:00:00")
        held.flush()
        with caplog.at_level(logging.WARNING, logger="rft_trl.shad.cache"):
            second = threading.Thread(
                target=lambda: results.append(
                    run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
                )
            )
            second.start()
            deadline = time.monotonic() + 60
            while (
                "being computed by another run" not in caplog.text and time.monotonic() < deadline
            ):
                time.sleep(0.05)
            time.sleep(0.2)
            assert second.is_alive() and not results, "the second run must wait for the lock"
            assert "pid 4242 on elsewhere" in caplog.text and "shad_cache_dir" in caplog.text
            fcntl.flock(held, fcntl.LOCK_UN)
        second.join(timeout=120)
    assert results and results[0].report.cache == "hit"
    assert results[0].dataset["token_class"] == first.dataset["token_class"]


def test_key_changes_with_settings_and_run_arguments(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer
):
    first = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    other_seed = run(
        tiny_model, tokenized, tmp_path, args, tiny_tokenizer, settings=settings(tmp_path, seed=7)
    )
    assert (
        other_seed.report.cache == "miss"
        and other_seed.report.cache_entry != first.report.cache_entry
    )
    args.learning_rate = 1e-2
    other_lr = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert other_lr.report.cache == "miss"
    with torch.no_grad():
        tiny_model.lm_head.weight.add_(0.01)  # another checkpoint under the same name
    other_weights = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert other_weights.report.cache == "miss"
    before = tiny_model.config._attn_implementation
    tiny_model.set_attn_implementation("eager" if before != "eager" else "sdpa")
    try:  # another attention kernel: other floats, so another entry
        other_kernel = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    finally:
        tiny_model.set_attn_implementation(before)
    assert other_kernel.report.cache == "miss"
    assert other_kernel.report.cache_entry != other_weights.report.cache_entry


def test_interrupted_scoring_resumes_from_the_last_shard(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer, monkeypatch
):
    reference = run(tiny_model, tokenized, tmp_path / "ref", args, tiny_tokenizer)
    real = score_module.score_batch
    calls = {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] > 4:  # 2 shards of 2 passes each, then "killed"
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(score_module, "score_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)

    tuned = {"n": 0}
    real_tune = tune_module.tune

    def counting_tune(*a, **k):
        tuned["n"] += 1
        return real_tune(*a, **k)

    monkeypatch.setattr("rft_trl.shad.api.tune", counting_tune)
    calls["n"] = -10_000
    resumed = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert tuned["n"] == 0  # the adapter was saved right after tuning
    total_train_batches = 4  # 16 rows / batch 4
    probe_batches = 2  # 8 shuffled rows / batch 4
    assert calls["n"] + 10_000 == 2 * (total_train_batches - 2) + probe_batches
    assert resumed.report.cache == "partial: adapter reused, 2 of 6 score shards reused"
    assert resumed.dataset["token_class"] == reference.dataset["token_class"]
    assert resumed.dataset["shad_l_s"] == reference.dataset["shad_l_s"]


def test_corrupt_cache_files_are_reported_and_recomputed(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer
):
    first = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    entry = first.report.cache_entry
    shard = sorted((tmp_path / "cache").glob("shad/*/scores/train/shard-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:-30])  # truncated
    again = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert again.report.cache == "partial: adapter reused, 5 of 6 score shards reused"
    assert any("unusable" in w and "sha256" in w for w in again.report.warnings)
    assert again.dataset["token_class"] == first.dataset["token_class"]

    adapter = next((tmp_path / "cache").glob("shad/*/adapter.safetensors"))
    raw = bytearray(adapter.read_bytes())
    raw[-8:] = b"\x00" * 8
    adapter.write_bytes(bytes(raw))
    third = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert (
        third.report.cache_entry == entry and third.report.cache == "miss"
    )  # retuned, all rescored
    assert any("corrupt" in w for w in third.report.warnings)
    assert third.dataset["token_class"] == first.dataset["token_class"]


def test_eval_datasets_are_scored_with_the_same_adapter(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer
):
    evals = {"held_out": tokenized.select(range(5))}
    result = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer, eval_datasets=evals)
    held = result.eval_datasets["held_out"]
    assert held["token_class"] == result.dataset.select(range(5))["token_class"]
    assert result.report.eval["held_out"].rows == 5


def test_labels_file_roundtrip_and_mismatch(tiny_model, tokenized, tmp_path, args, tiny_tokenizer):
    result = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    path = save_labels(
        result.dataset, tmp_path / "labels", tokenizer=tiny_tokenizer, metadata={"threshold": 0.0}
    )
    loaded = run(
        tiny_model,
        tokenized,
        tmp_path,
        args,
        tiny_tokenizer,
        settings=ShadSettings(labels_path=str(path)),
    )
    assert loaded.dataset["token_class"] == result.dataset["token_class"]
    assert loaded.dataset["sample_id"] == tokenized["sample_id"]
    with pytest.raises(
        ShadLabelsError, match=r"made for 16 rows and this dataset has 15.*rft-trl shad"
    ):
        run(
            tiny_model,
            tokenized.select(range(15)),
            tmp_path,
            args,
            tiny_tokenizer,
            settings=ShadSettings(labels_path=str(path)),
        )
    other = tokenized.map(lambda r: {"input_ids": [*r["input_ids"][:-1], 5]})
    with pytest.raises(ShadLabelsError, match="tokens differ"):
        run(
            tiny_model,
            other,
            tmp_path,
            args,
            tiny_tokenizer,
            settings=ShadSettings(labels_path=str(path)),
        )
    with pytest.raises(ShadLabelsError, match=r"does not exist.*rft-trl shad --config"):
        run(
            tiny_model,
            tokenized,
            tmp_path,
            args,
            tiny_tokenizer,
            settings=ShadSettings(labels_path=str(tmp_path / "nope")),
        )


def test_rng_state_is_untouched(tiny_model, tokenized, tmp_path, args, tiny_tokenizer):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------------------------------ bad input


def test_no_response_tokens(tiny_model, tmp_path, args, tiny_tokenizer):
    data = Dataset.from_dict({"input_ids": [[1, 2, 3]] * 4, "labels": [[-100] * 3] * 4})
    with pytest.raises(ShadDataError, match=r"no response tokens.*Fix"):
        run(tiny_model, data, tmp_path, args, tiny_tokenizer)
    assert not (tmp_path / "cache").exists()


def test_fewer_than_two_samples(tiny_model, tmp_path, args, tiny_tokenizer):
    data = Dataset.from_dict(
        {"input_ids": [[1, 2, 3], [4, 5]], "labels": [[-100, 2, 3], [-100, -100]]}
    )
    with pytest.raises(ShadDataError, match=r"at least 2 samples.*has 1"):
        run(tiny_model, data, tmp_path, args, tiny_tokenizer)
    assert not (tmp_path / "cache").exists()


def test_identical_responses_warn(tiny_model, tmp_path, args, tiny_tokenizer, caplog):
    data = Dataset.from_dict(
        {
            "input_ids": [[10 + i, 11, 7, 8, 9] for i in range(6)],
            "labels": [[-100, -100, 7, 8, 9]] * 6,
        }
    )
    with caplog.at_level("WARNING", logger="rft_trl.shad"):
        result = run(tiny_model, data, tmp_path, args, tiny_tokenizer)
    assert any("identical" in w for w in result.report.warnings)
    assert any("identical" in r.message for r in caplog.records)


def test_model_without_lm_head(tiny_model, tokenized, tmp_path, args, tiny_tokenizer):
    bare = LlamaModel(tiny_model.config)
    with pytest.raises(UnsupportedModelError, match="no language-model head"):
        run(bare, tokenized, tmp_path, args, tiny_tokenizer)
    assert not (tmp_path / "cache").exists()


def test_gradient_accumulation_gives_the_same_adapter(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer
):
    """4 x GA 1 and 2 x GA 2 are the same optimizer steps: the loss is a token mean over the whole step."""
    one = run(tiny_model, tokenized, tmp_path / "a", args, tiny_tokenizer)
    args.per_device_train_batch_size, args.gradient_accumulation_steps = 2, 2
    two = run(tiny_model, tokenized, tmp_path / "b", args, tiny_tokenizer)
    assert two.report.tune_steps == one.report.tune_steps == 2
    assert two.dataset["shad_l_o"] == one.dataset["shad_l_o"]
    for a, b in zip(one.dataset["shad_l_s"], two.dataset["shad_l_s"], strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_qlora_4bit_model_with_its_adapter(
    tiny_checkpoint, tokenized, tmp_path, args, tiny_tokenizer
):
    import bitsandbytes  # noqa: F401 - installed with the test extras ('.[dev,qlora]'): never skip
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
    )
    model = AutoModelForCausalLM.from_pretrained(
        tiny_checkpoint, quantization_config=quant, device_map="cpu"
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    run_lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear")
    model = get_peft_model(model, run_lora)
    before = snapshot(model)
    result = run(model, tokenized, tmp_path, args, tiny_tokenizer, peft_config=run_lora)
    # bitsandbytes' CPU backend repacks 4-bit weights lazily on forward passes, so their serialized
    # form (packed weight, absmax, quant_map) changes with any forward, SHAD's or not: compare the rest.
    assert_same_model(
        before, snapshot(model), skip=(".absmax", ".quant_", ".nested_", "base_layer.weight")
    )
    assert_valid_labels(result, tokenized)
    assert result.report.tune_steps == 2


def test_list_columns_are_chunked_before_int32_offsets_could_overflow():
    # A single Arrow list array wraps its int32 offsets silently past 2**31 values; the columns
    # SHAD adds are built in chunks of whole rows instead (a small limit stands in for 2**31 - 1).
    import pyarrow as pa
    from datasets import Dataset, Sequence, Value

    from rft_trl.shad.api import _list_array

    rows = [np.arange(n, dtype=np.int8) for n in (3, 4, 2, 5, 1)]
    column = _list_array(rows, pa.int8(), max_chunk_values=6)
    assert [len(chunk) for chunk in column.chunks] == [1, 2, 2]  # 3 | 4+2 | 5+1 values
    assert all(len(chunk.values) <= 6 for chunk in column.chunks)
    data = Dataset.from_list([{"i": i} for i in range(5)])
    data = data.add_column("x", column, feature=Sequence(Value("int8")))
    assert data["x"] == [r.tolist() for r in rows]


def test_shuffle_tune_normalises_by_the_steps_shifted_response_tokens(tiny_model, tmp_path):
    # The token-mean loss over a whole optimizer step: the count is of positions that predict a
    # labelled token (a row's first label is never predicted), over every micro-batch.
    from datasets import Dataset
    from transformers import TrainingArguments

    from rft_trl.shad.batching import PadCollator
    from rft_trl.shad.tune import ShadTuneTrainer

    rows = [
        {"input_ids": [5, 6, 7, 8], "labels": [5, 6, 7, 8]},  # 3 predicted (4 unshifted)
        {"input_ids": [5, 6, 7], "labels": [5, 6, -100]},  # 1 predicted (2 unshifted)
    ]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=1,
        gradient_accumulation_steps=2,
        use_cpu=True,
        report_to="none",
    )
    trainer = ShadTuneTrainer(
        model=tiny_model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        data_collator=PadCollator(0),
    )
    batches, count = trainer.get_batch_samples(
        iter(trainer.get_train_dataloader()), 2, trainer.args.device
    )
    assert len(batches) == 2 and int(count) == 4


def test_gradient_checkpointing_leaves_no_input_hook_behind(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer
):
    """The tune enables input gradients for checkpointing; its hook must go with the adapter."""
    args.gradient_checkpointing = True
    before = snapshot(tiny_model)
    run(tiny_model, tokenized, tmp_path / "plain", args, tiny_tokenizer)
    assert_same_model(before, snapshot(tiny_model))
    model = get_peft_model(tiny_model, LoraConfig(r=4, lora_alpha=8))
    before = snapshot(model)
    run(model, tokenized, tmp_path / "peft", args, tiny_tokenizer)
    assert_same_model(before, snapshot(model))


def test_a_model_with_checkpointing_already_on_keeps_one_input_hook(tmp_path):
    """Axolotl turns checkpointing on at load; PEFT's wrap and the tune's Trainer each replace
    the model's input-gradient hook list, so the hook of the first must not be left behind."""
    import tiny_rows

    model = tiny_rows.model()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, use_cpu=True,
        report_to=[], gradient_checkpointing=True, disable_tqdm=True,
    )  # fmt: skip
    before = snapshot(model)
    label_dataset(
        model,
        tiny_rows.dataset(8).remove_columns("token_class"),
        ShadSettings(min_steps=1, cache_dir=str(tmp_path / "cache")),
        training_args=args,
        progress=False,
    )
    assert_same_model(before, snapshot(model))


def test_the_run_lora_is_copied_from_the_model_and_its_bias_is_not_trained(
    tiny_checkpoint, tmp_path, tokenized, args, tiny_tokenizer
):
    """A PEFT model passed without `peft_config` tunes with its own LoRA settings; a run LoRA
    that trains biases does not make SHAD train (and keep) the base biases, nor fail to add a
    second adapter next to it."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_checkpoint, attention_bias=True, mlp_bias=True)
    for bias in ("all", "lora_only"):
        base = AutoModelForCausalLM.from_config(config)
        run_lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], bias=bias)
        model = get_peft_model(base, run_lora)
        before = snapshot(model)
        result = run(model, tokenized, tmp_path / bias, args, tiny_tokenizer)  # no peft_config
        assert_same_model(before, snapshot(model))
        key = json.loads(Path(result.report.cache_entry, "key.json").read_text())
        assert key["lora"]["r"] == 2 and key["lora"]["target_modules"] == ["q_proj"]
        assert key["lora"]["bias"] == "none"
        plain = AutoModelForCausalLM.from_config(config)
        before = snapshot(plain)
        run(
            plain, tokenized, tmp_path / f"plain-{bias}", args, tiny_tokenizer, peft_config=run_lora
        )
        assert_same_model(before, snapshot(plain))  # the biases included


def test_stored_labels_at_another_threshold_get_that_thresholds_warnings_and_counts(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer, caplog
):
    from rft_trl.shad import save_result

    first = run(
        tiny_model, tokenized, tmp_path, args, tiny_tokenizer, eval_datasets={"dev": tokenized}
    )
    assert first.report.boilerplate_fraction < 0.95
    path = save_result(
        first, tmp_path / "labels", settings=settings(tmp_path), tokenizer=None, model_id=None,
        max_length=MAX_LENGTH,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="rft_trl.shad"):
        loaded = label_dataset(
            tiny_model,
            tokenized,
            ShadSettings(
                labels_path=str(path), threshold=100.0
            ),  # every LD is below: all boilerplate
            eval_datasets={"dev": tokenized},
            progress=False,
        )
    report = loaded.report
    assert report.threshold == 100.0 and report.boilerplate_fraction == 1.0
    assert report.eval["dev"].boilerplate_fraction == 1.0
    high = [w for w in report.warnings if "100.0% of response tokens boilerplate" in w]
    assert len(high) == 1 and high[0] in caplog.text
    assert len(report.warnings) == len(set(report.warnings))


def test_labelling_inside_no_grad_still_tunes(
    tiny_model, tokenized, tmp_path, args, tiny_tokenizer
):
    with torch.no_grad():  # e.g. a caller that labels from an evaluation loop
        result = run(tiny_model, tokenized, tmp_path, args, tiny_tokenizer)
    assert result.report.tune_steps == 2
    assert torch.is_grad_enabled()
