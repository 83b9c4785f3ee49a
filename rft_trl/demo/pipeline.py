"""The demo end to end: corpus -> base -> SHAD -> SFT and RFT (same base, same budget) -> evaluation -> metrics."""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import disable_progress_bars, enable_progress_bars, is_progress_bar_enabled
from transformers import TrainingArguments

from rft_trl.demo.base_model import BaseRecipe, get_base
from rft_trl.demo.data import Splits, make_data, training_columns
from rft_trl.demo.generation import examples, generate_responses, score
from rft_trl.demo.metrics import label_quality, pad_batches, response_arrays, shad_quality
from rft_trl.demo.training import TrainBudget, TrainRun, lora_config, train

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"


class DemoError(ValueError):
    """Bad demo input (e.g. an unusable output folder); the message says what is wrong and the fix."""


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and budgets of one demo run (`settings_for` gives the full and the quick presets)."""

    out: Path
    seed: int = 0
    quick: bool = False
    n_train: int = 800
    n_test: int = 300
    # corpus shape: tools offered and calls made per prompt (benchmarks/evidence.py varies them)
    min_tools: int = 2
    max_tools: int = 2
    min_calls: int = 1
    max_calls: int = 3
    max_length: int = 1024
    stock_sentences: int = 0  # extra stock sentences per ReAct thought (benchmarks/evidence.py)
    stock_fixed: bool = False  # the same stock sentences in every thought instead of drawn ones
    spoken_values: bool = False  # dates, times, small numbers in words in requests (evidence.py)
    base: BaseRecipe = field(default_factory=BaseRecipe)
    budget: TrainBudget = field(default_factory=TrainBudget)
    shad_min_steps: int = 50
    shad_batch_size: int = 8
    shad_learning_rate: float = 1e-3
    shad_threshold: float = 0.0
    rft_temperature: float = 3.0
    curve_samples: int = 32
    report_examples: int = 6
    cache_dir: str | None = None
    progress: bool = True
    # where the base is pretrained and SHAD, SFT and RFT run: "cpu" (the documented figures) or "cuda"
    device: str = "cpu"


QUICK_BASE = BaseRecipe(
    vocab_size=1024,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=192,
    pretrain_steps=40,
    batch_size=8,
    block_size=128,
    learning_rate=3e-3,
    warmup_steps=4,
)


def settings_for(
    out: str | os.PathLike[str], *, seed: int = 0, quick: bool = False, **overrides: Any
) -> DemoSettings:
    """The full preset (about 9 minutes on 2 CPU cores with the base build, 4 once it is cached) or the `quick` smoke preset."""
    settings = DemoSettings(out=Path(out), seed=seed, quick=quick, budget=TrainBudget(seed=seed))
    if quick:
        settings = replace(
            settings,
            n_train=64,
            n_test=24,
            max_tools=2,
            base=QUICK_BASE,
            budget=TrainBudget(steps=12, batch_size=4, curve_points=3, seed=seed),
            shad_min_steps=8,
            shad_batch_size=4,
            curve_samples=8,
            report_examples=3,
        )
    return replace(settings, **overrides)


# ----------------------------------------------------------------------------- input checks


def check_out_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` if needed and prove it is a writable folder; a DemoError naming the fix otherwise."""
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise DemoError(
            f"--out {out} is a file, not a folder. Fix: pass a folder path (it is created if missing)."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as error:
        raise DemoError(
            f"--out {out} is not a writable folder ({error.strerror or error}). Fix: pass a folder you can write to."
        ) from None
    return out


DEVICES = ("cpu", "cuda")


def check_device(device: str) -> str:
    """`device` if the demo can run there; a DemoError naming the fix otherwise (checked before any work)."""
    if device not in DEVICES:
        raise DemoError(
            f"--device {device!r} is not supported. Fix: pass one of {', '.join(DEVICES)}."
        )
    if device == "cuda" and not torch.cuda.is_available():
        raise DemoError(
            "--device cuda, but torch sees no CUDA GPU here (torch.cuda.is_available() is False; "
            f"torch {torch.__version__}, CUDA build {torch.version.cuda}). Fix: run on a machine "
            "with a GPU and a CUDA build of torch, or use --device cpu."
        )
    if device == "cuda" and torch.cuda.device_count() > 1:
        raise DemoError(
            f"--device cuda sees {torch.cuda.device_count()} GPUs; the demo runs on one (with more, "
            "the Trainer would split every batch over them with DataParallel). Fix: pick one, e.g. "
            "CUDA_VISIBLE_DEVICES=0 rft-trl demo --device cuda."
        )
    return device


# ----------------------------------------------------------------------------- phases


class Phases:
    """Wall-clock and CPU seconds per phase (CPU time says what an unloaded machine would take)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - wall, 2)
            self.cpu_seconds[name] = round(time.process_time() - cpu, 2)


def versions() -> dict[str, str]:
    """Versions of everything that shapes the numbers."""
    import peft
    import transformers
    import trl

    import rft_trl

    return {
        "rft_trl": rft_trl.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def demo_data(tokenizer, settings: DemoSettings) -> Splits:
    """The training and held-out splits that `settings` describe (sizes, seed, corpus shape)."""
    return make_data(
        tokenizer,
        settings.n_train,
        settings.n_test,
        seed=settings.seed,
        min_tools=settings.min_tools,
        max_tools=settings.max_tools,
        min_calls=settings.min_calls,
        max_calls=settings.max_calls,
        max_length=settings.max_length,
        stock_sentences=settings.stock_sentences,
        stock_fixed=settings.stock_fixed,
        spoken_values=settings.spoken_values,
    )


def run_shad(model, tokenizer, splits: Splits, settings: DemoSettings):
    """SHAD labels for the training rows (the ground-truth columns ride along untouched)."""
    from rft_trl.shad import ShadSettings, label_dataset

    # on the run's device before SHAD: a cached adapter skips the tuning Trainer that would move it
    model.to(settings.device)
    with tempfile.TemporaryDirectory(prefix="rft-demo-shad-") as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=settings.shad_batch_size,
            per_device_eval_batch_size=8,
            learning_rate=settings.shad_learning_rate,
            use_cpu=settings.device == "cpu",
            report_to="none",
            seed=settings.seed,
            disable_tqdm=not settings.progress,
        )
        shad = ShadSettings(
            min_steps=settings.shad_min_steps,
            threshold=settings.shad_threshold,
            seed=settings.seed,
            cache_dir=str(settings.cache_dir) if settings.cache_dir else None,
        )
        return label_dataset(
            model,
            splits.train,
            settings=shad,
            training_args=args,
            peft_config=lora_config(settings.budget.lora_r),
            tokenizer=tokenizer,
            max_length=settings.max_length,
            progress=settings.progress,
        )


def shad_metrics(labelled, threshold: float) -> dict[str, Any]:
    """SHAD's label quality vs ground truth, with the baselines all-reasoning and base-loss-only."""
    arrays = response_arrays(labelled)
    quality = shad_quality(arrays, threshold)
    overall = quality["all"]
    gold = arrays["gt"]
    prevalence = float(gold.mean())
    cut = np.quantile(arrays["l_o"], 1 - prevalence)
    baselines = {
        "all_reasoning": label_quality(np.ones_like(gold), gold),
        "base_loss_at_true_prevalence": label_quality(
            (arrays["l_o"] > cut).astype(int), gold, arrays["l_o"]
        ),
    }
    return {
        "shad_token_accuracy": overall["accuracy"],
        "shad_reasoning_precision": overall["precision"],
        "shad_reasoning_recall": overall["recall"],
        "shad_reasoning_f1": overall["f1"],
        "shad_auroc": overall["auroc"],
        "boilerplate_fraction": overall["boilerplate_fraction"],
        "true_boilerplate_fraction": overall["true_boilerplate_fraction"],
        "shad_by_family": {
            k: {m: v for m, v in b.items() if m != "categories"}
            for k, b in quality.items()
            if k != "all"
        },
        "shad_category_agreement": overall["categories"],
        "label_baselines": baselines,
    }, arrays


def final_group_losses(run: TrainRun) -> dict[str, float]:
    """Held-out ground-truth group losses at the end of a run."""
    last = run.curve[-1]
    return {"boilerplate_loss": last["boilerplate_loss"], "reasoning_loss": last["reasoning_loss"]}


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Hide the datasets/transformers per-step bars (map, weight loading); the demo shows its own per phase."""
    from transformers.utils import logging as hf_logging

    datasets_on = is_progress_bar_enabled()
    hf_on = hf_logging.is_progress_bar_enabled()
    disable_progress_bars()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if datasets_on:
            enable_progress_bars()
        if hf_on:
            hf_logging.enable_progress_bar()


def run_demo(settings: DemoSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every phase, write metrics.json and report.html into `settings.out`, and return the metrics."""
    with quiet_libraries():
        return _run_demo(settings, log)


def _run_demo(settings: DemoSettings, log: Callable[[str], None]) -> dict[str, Any]:
    from rft_trl.demo.report import write_report

    check_device(settings.device)
    out = check_out_dir(settings.out)
    phases = Phases()
    started = time.perf_counter()
    torch.manual_seed(settings.seed)

    with phases("base"):
        base = get_base(
            settings.base,
            settings.cache_dir,
            progress=settings.progress,
            log=log,
            device=settings.device,
        )
        model, tokenizer = base.load()
    with phases("corpus"):
        log(
            f"Corpus: {settings.n_train} training and {settings.n_test} held-out samples (ReAct + JSON calls)"
        )
        splits = demo_data(tokenizer, settings)
    with phases("shad"):
        log("SHAD: shuffle-tuning and scoring the training set")
        shad = run_shad(model, tokenizer, splits, settings)
        labelled = shad.dataset
        label_figures, arrays = shad_metrics(labelled, settings.shad_threshold)
    del model

    curve_rows = splits.test.select(range(min(settings.curve_samples, len(splits.test))))
    curve_batches = pad_batches(
        [
            dict(zip(("input_ids", "labels", "gt_class"), r, strict=True))
            for r in zip(
                curve_rows["input_ids"], curve_rows["labels"], curve_rows["gt_class"], strict=True
            )
        ],
        tokenizer.pad_token_id,
    )
    max_new_tokens = (
        max(len(tokenizer(s.first_response)["input_ids"]) for s in splits.test_samples) + 16
    )
    runs: dict[str, TrainRun] = {}
    evaluations: dict[str, dict[str, float]] = {}
    responses: dict[str, list[str]] = {}
    for name, rft in (("sft", False), ("rft", True)):
        with phases(name):
            log(
                f"{name.upper()}: {settings.budget.steps} LoRA steps of {settings.budget.batch_size} samples"
            )
            runs[name] = train(
                name,
                str(base.path),
                tokenizer,
                training_columns(labelled, with_classes=rft),
                curve_batches,
                settings.budget,
                rft=rft,
                rft_options={"rft_temperature": settings.rft_temperature} if rft else None,
                progress=settings.progress,
                device=settings.device,
            )
        with phases(f"eval_{name}"):
            responses[name] = generate_responses(
                runs[name].model,
                tokenizer,
                splits.test_samples,
                max_new_tokens=max_new_tokens,
                desc=f"Evaluating {name.upper()} on {len(splits.test_samples)} held-out prompts",
                progress=settings.progress,
            )
            evaluations[name] = score(splits.test_samples, responses[name])

    metrics: dict[str, Any] = {
        **label_figures,
        "shad_threshold": settings.shad_threshold,
        "sft_exact_match": evaluations["sft"]["exact_match"],
        "rft_exact_match": evaluations["rft"]["exact_match"],
        "sft_format_valid": evaluations["sft"]["format_valid"],
        "rft_format_valid": evaluations["rft"]["format_valid"],
        "evaluation": evaluations,
        "heldout_group_losses": {name: final_group_losses(run) for name, run in runs.items()},
        "curves": {name: run.curve for name, run in runs.items()},
        "rft_train_log": [
            {
                k: e[k]
                for k in ("step", "loss", "boilerplate_loss", "reasoning_loss", "reasoning_weight")
                if k in e
            }
            for e in runs["rft"].log_history
            if "boilerplate_loss" in e
        ],
        "shad_report": {
            "tune_steps": shad.report.tune_steps,
            "sampled": shad.report.sampled,
            "probe_share": shad.report.probe.share if shad.report.probe else None,
            "probe_ready": shad.report.probe.ready if shad.report.probe else None,
            "probe_verdict": shad.report.probe.verdict if shad.report.probe else None,
            "warnings": shad.report.warnings,
            "seconds": shad.report.seconds,
        },
        "base": {
            "path": str(base.path),
            "fingerprint": base.path.name,
            "built_now": base.built,
            "recipe": asdict(settings.base),
            # the base alone: the LoRA layers PEFT injected into it are not the base's
            "parameters": sum(
                p.numel()
                for name, p in runs["sft"].model.get_base_model().named_parameters()
                if "lora_" not in name
            )
            if hasattr(runs["sft"].model, "get_base_model")
            else None,
            "pretrain_loss_final": float(np.mean(base.pretrain_loss[-10:]))
            if base.pretrain_loss
            else None,
        },
        "settings": {
            "seed": settings.seed,
            "quick": settings.quick,
            "n_train": settings.n_train,
            "n_test": settings.n_test,
            "min_tools": settings.min_tools,
            "max_tools": settings.max_tools,
            "min_calls": settings.min_calls,
            "max_calls": settings.max_calls,
            "spoken_values": settings.spoken_values,
            "budget": asdict(settings.budget),
            "shad_min_steps": settings.shad_min_steps,
            "shad_batch_size": settings.shad_batch_size,
            "shad_learning_rate": settings.shad_learning_rate,
            "rft_temperature": settings.rft_temperature,
            "device": settings.device,
        },
        "seed": settings.seed,
        "versions": versions(),
        "seconds": phases.seconds,
        "cpu_seconds": phases.cpu_seconds,
    }
    with phases("report"):
        write_report(
            out / REPORT_FILE,
            metrics,
            labelled=labelled,
            tokenizer=tokenizer,
            arrays=arrays,
            pretrain_loss=base.pretrain_loss,
            generations={
                n: examples(splits.test_samples, r, settings.report_examples)
                for n, r in responses.items()
            },
            n_examples=settings.report_examples,
        )
    metrics["seconds"]["total"] = round(time.perf_counter() - started, 2)
    metrics["cpu_seconds"]["total"] = round(sum(phases.cpu_seconds.values()), 2)
    (out / METRICS_FILE).write_text(
        json.dumps(strict_json(metrics), indent=2, default=_json_default)
    )
    return metrics


def strict_json(value: Any) -> Any:
    """`value` with NaN/inf floats replaced by None, so metrics.json is valid JSON for every reader."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return None
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
