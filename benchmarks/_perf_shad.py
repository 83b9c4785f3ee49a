"""SHAD cost in one process: scoring vs a no-grad forward, SHAD total vs SFT steps, same rows.

On a shared machine the background load changes within seconds, so phases measured minutes apart
cannot be compared directly. Every unit of work (a forward batch, a scored batch, an SFT step, a
shuffle-tune step) is therefore followed by a *reference forward* (a fixed batch through a
separate copy of the model), and each unit is counted as (its time / the time of the reference
forward that follows it): costs are measured in reference forwards, which the load slows down
alike. Raw seconds are kept as well.
"""

from __future__ import annotations

import gc
import logging
import tempfile
import time
from collections import defaultdict
from typing import Any

import _perf_setup as setup
import _perf_step
import torch
from _perf_lockstep import NoBaton
from transformers import TrainerCallback

SFT_KINDS = ("plain_sft", "trl_sft")


class RefClock:
    """Pairs each timed unit of work with a reference forward run right after it, per phase."""

    def __init__(self, model, batch: dict[str, torch.Tensor], meter: setup.MemoryMeter) -> None:
        self.model = model.eval()
        self.batch = batch
        self.meter = meter
        self.pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.keys: dict[str, list[str | None]] = defaultdict(list)
        self.spent: dict[str, float] = defaultdict(float)

    def reference(self, phase: str) -> float:
        """One reference forward (full logits, inference mode); its seconds, charged to `phase`."""
        self.meter.sync()
        started = time.perf_counter()
        with torch.inference_mode():
            self.model(**self.batch)
        self.meter.sync()
        seconds = time.perf_counter() - started
        self.spent[phase] += seconds
        return seconds

    def pair(self, phase: str, work_seconds: float, key: str | None = None) -> None:
        """Record a unit of work of `phase` (on batch `key`) and the reference forward after it."""
        self.pairs[phase].append((work_seconds, self.reference(phase)))
        self.keys[phase].append(key)

    def units(self, phase: str) -> float:
        """The phase's paired work in reference forwards: sum of work / reference."""
        return sum(work / ref for work, ref in self.pairs[phase])

    def to_json(self) -> dict[str, Any]:
        """Pairs and reference time per phase."""
        return {"pairs": dict(self.pairs), "spent": dict(self.spent), "keys": dict(self.keys)}


class _RefBetweenSteps(NoBaton):
    """Between training steps (outside the timed step): pair the last step with a reference."""

    def __init__(self, ref: RefClock, phase: str, clock_holder: list) -> None:
        self.ref, self.phase, self.clock_holder = ref, phase, clock_holder

    def take(self) -> None:
        """Instead of waiting for a turn: pair the step just timed (if any) with a reference."""
        clock = self.clock_holder[0]
        if clock.wall and len(self.ref.pairs[self.phase]) < len(clock.wall):
            self.ref.pair(self.phase, clock.wall[-1])


class _TuneClock(TrainerCallback):
    """Times each shuffle-tune step and pairs it with a reference forward."""

    def __init__(self, ref: RefClock) -> None:
        self.ref = ref
        self.mark = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.ref.meter.sync()
        self.mark = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.ref.meter.sync()
        self.ref.pair("tune", time.perf_counter() - self.mark)


def batch_key(first_row_ids) -> str:
    """Identifies a batch by its first row's tokens (the scorer and the forward batch alike)."""
    return " ".join(map(str, first_row_ids))


def _batches(data, batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Padded batches of the rows, longest first (the order and size SHAD's scorer uses)."""
    from rft_trl.shad.batching import pad_rows

    order = sorted(range(len(data)), key=lambda i: (-len(data[i]["input_ids"]), i))
    out = []
    for start in range(0, len(order), batch_size):
        picked = [data[i] for i in order[start : start + batch_size]]
        out.append(
            pad_rows([r["input_ids"] for r in picked], [r["labels"] for r in picked], pad_id=0)
        )
    return out


def forward_pass(model, batches, ref: RefClock, *, logprobs: bool, precision: str | None) -> float:
    """One no-grad pass over the batches (full logits, or our log-probs), each batch paired."""
    from rft_trl.loss import shift_targets
    from rft_trl.modeling import forward_token_logprobs
    from rft_trl.shad.score import autocast_for, model_device

    phase = "logprob_pass" if logprobs else "forward"
    model.eval()
    device = model_device(model)
    total = 0.0
    for batch in batches:
        batch = {key: value.to(device) for key, value in batch.items()}
        ref.meter.sync()
        started = time.perf_counter()
        with torch.inference_mode(), autocast_for(device, precision):
            if logprobs:
                forward_token_logprobs(model, batch, shift_targets(batch["labels"]))
            else:
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        ref.meter.sync()
        seconds = time.perf_counter() - started
        total += seconds
        first = batch["input_ids"][0][batch["attention_mask"][0].bool()]
        ref.pair(phase, seconds, batch_key(first.tolist()))
    return total


def sft_steps(kind: str, size: setup.ModelSize, steps: int, device: str, ref: RefClock):
    """Wall times of `steps` padded LoRA SFT steps (after one warm-up), each paired."""
    trainer = _perf_step.build_trainer(kind, size, "padded", "lora", steps + 1, None, device)
    holder: list = []
    clock = _perf_step.StepClock(_RefBetweenSteps(ref, f"sft:{kind}", holder), steps + 1, device)
    holder.append(clock)
    _perf_step.quiet(trainer)
    trainer.add_callback(clock)
    trainer.train()
    del trainer
    gc.collect()
    for table in (ref.pairs, ref.keys):  # drop the warm-up step
        table[f"sft:{kind}"] = table[f"sft:{kind}"][1:]
    return clock.wall[1:]


def _training_args(size: setup.ModelSize, score_batch: int, device: str):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="rft-perf-shad-"),
        per_device_train_batch_size=size.batch_size,
        per_device_eval_batch_size=score_batch,
        learning_rate=1e-4,
        use_cpu=device != "cuda",
        bf16=device == "cuda",
        report_to="none",
        disable_tqdm=True,
        seed=0,
    )


class _Instrumented:
    """Patches SHAD's scorer and tune trainer so each scored batch and tune step is paired."""

    def __init__(self, ref: RefClock, train_rows: list[dict[str, Any]]) -> None:
        self.ref = ref
        self.train_ids = {tuple(r["input_ids"]) for r in train_rows}
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> _Instrumented:
        from rft_trl.shad import score, tune

        original_score, original_trainer = score.score_batch, tune.ShadTuneTrainer
        ref, train_ids = self.ref, self.train_ids

        def score_batch(model, rows, *args, **kwargs):
            ref.meter.sync()
            started = time.perf_counter()
            out = original_score(model, rows, *args, **kwargs)
            ref.meter.sync()
            phase = "score" if tuple(rows[0][0]) in train_ids else "probe"
            ref.pair(phase, time.perf_counter() - started, batch_key(rows[0][0]))
            return out

        class TuneTrainer(original_trainer):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.add_callback(_TuneClock(ref))

        self.saved = {"score": original_score, "trainer": original_trainer}
        score.score_batch, tune.ShadTuneTrainer = score_batch, TuneTrainer
        return self

    def __exit__(self, *exc_info) -> None:
        from rft_trl.shad import score, tune

        score.score_batch, tune.ShadTuneTrainer = self.saved["score"], self.saved["trainer"]


def run(spec: dict[str, Any], baton) -> dict[str, Any]:
    """Forward passes, SFT steps and one `label_dataset` run on `spec['rows']` random rows."""
    from rft_trl.shad import ShadSettings, label_dataset

    logging.getLogger("rft_trl.shad").setLevel(logging.ERROR)  # random rows: health warnings
    size = setup.SIZES[spec["size"]]
    score_batch = spec.get("score_batch", 8)
    device = spec.get("device", "cpu")
    precision = "bf16" if device == "cuda" else None
    data = setup.dataset(spec["rows"], size, with_classes=False)
    rows = list(data)
    batches = _batches(rows, score_batch)
    model = setup.build_model(size).to(device)
    middle = batches[len(batches) // 2]
    ref_rows = spec.get("ref_rows", score_batch)
    ref_batch = {k: v[:ref_rows].to(device) for k, v in middle.items() if k != "labels"}
    ref = RefClock(setup.build_model(size).to(device), ref_batch, setup.MemoryMeter(device))
    kinds = spec.get("sft_kinds", SFT_KINDS)
    result: dict[str, Any] = {"forward": [], "logprob_pass": [], "sft": {k: [] for k in kinds}}
    for logprobs in (False, True):  # warm-up: first-call costs are not part of a pass
        forward_pass(model, batches[-1:], ref, logprobs=logprobs, precision=precision)
    ref.pairs.clear()
    ref.keys.clear()
    ref.spent.clear()

    for logprobs in (False, True):
        key = "logprob_pass" if logprobs else "forward"
        result[key].append(
            forward_pass(model, batches, ref, logprobs=logprobs, precision=precision)
        )
    for kind in kinds:
        result["sft"][kind] = sft_steps(kind, size, spec["sft_steps"], device, ref)

    settings = ShadSettings(
        cache_dir=tempfile.mkdtemp(prefix="rft-perf-shad-cache-"), max_steps=spec.get("tune_steps")
    )
    with _Instrumented(ref, rows):
        report = label_dataset(
            model,
            data,
            settings=settings,
            training_args=_training_args(size, score_batch, device),
            peft_config=setup.lora_config(size),
            tokenizer=setup.tokenizer(size.vocab_size),
            max_length=size.seq_len,
            progress=False,
        ).report
    result.update(
        {
            "rows": len(rows),
            "tokens": sum(len(r["input_ids"]) for r in rows),
            "score_batch": score_batch,
            "train_batch": size.batch_size,
            "shad_seconds": dict(report.seconds),
            "tune_steps": report.tune_steps,
            "sampled": report.sampled,
            "ref": ref.to_json(),
        }
    )
    return result
