"""`label_dataset`: SHAD end to end (sample, shuffle, shuffle-tune, score, classify, health, cache)."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset, Sequence, Value

from rft_trl import __version__, dist
from rft_trl.loss import IGNORE_INDEX
from rft_trl.modeling import lm_head_parts
from rft_trl.shad import score as score_module
from rft_trl.shad.adapter import ShadAdapter, active_peft_config, shad_lora_config
from rft_trl.shad.batching import pad_id_of, plan_shards
from rft_trl.shad.cache import (
    ALGORITHM_VERSION,
    CacheEntry,
    model_identity,
    runtime_identity,
    tokenizer_identity,
)
from rft_trl.shad.classify import COLUMNS, L_O, L_S, TOKEN_CLASS, classify
from rft_trl.shad.errors import ShadDataError, ShadLabelsError
from rft_trl.shad.health import (
    boilerplate_warning,
    drift_warning,
    ld_histogram,
    probe_result,
    saturation_warning,
)
from rft_trl.shad.labels_io import TRAIN, LabelsDir, load_labels
from rft_trl.shad.report import ShadReport, SplitStats
from rft_trl.shad.sampling import (
    ShuffledRow,
    choose_samples,
    identical_responses,
    sample_count,
    segments,
    shuffle_rows,
)
from rft_trl.shad.score import ScoreJob, run_scoring
from rft_trl.shad.settings import ShadSettings
from rft_trl.shad.table import TokenTable
from rft_trl.shad.tune import effective_batch, tune, tune_key

logger = logging.getLogger("rft_trl.shad")

DEFAULT_SCORE_BATCH = 8


@dataclass
class ShadResult:
    """Labelled training rows, labelled eval sets and the run's report."""

    dataset: Dataset
    eval_datasets: dict[str, Dataset] = field(default_factory=dict)
    report: ShadReport = field(default_factory=ShadReport)


class _Warnings:
    """Collects warnings into the report and logs each once (on the main process)."""

    def __init__(self, report: ShadReport) -> None:
        self.report = report

    def __call__(self, message: str) -> None:
        if message not in self.report.warnings:
            self.report.warnings.append(message)
            if dist.is_main():
                logger.warning(message)


@contextlib.contextmanager
def _preserved_rng() -> Iterator[None]:
    """Restore Python, NumPy and torch RNG states afterwards: SHAD must not shift the run's randomness."""
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _precision(training_args) -> str | None:
    if training_args is None:
        return None
    if getattr(training_args, "bf16", False):
        return "bf16"
    if getattr(training_args, "fp16", False):
        return "fp16"
    return None


def _split_name(table: TokenTable) -> str:
    return f"eval-{table.fingerprint[:16]}"


def label_dataset(
    model: torch.nn.Module,
    dataset: Dataset,
    settings: ShadSettings | None = None,
    training_args: Any | None = None,
    peft_config: Any | None = None,
    tokenizer: Any | None = None,
    max_length: int | None = None,
    model_id: str | None = None,
    eval_datasets: dict[str, Dataset] | None = None,
    progress: bool = True,
) -> ShadResult:
    """Label every response token of `dataset` (and of `eval_datasets`) as boilerplate (0) or reasoning (1).

    Adds `token_class` (int8, -100 exactly where `labels == -100`), `shad_l_o` and `shad_l_s`
    (float32 per-token losses without/with the SHAD adapter, 0 outside the loss) to the rows and
    keeps every other column. The model is returned to its exact prior state (weights, adapters,
    `requires_grad` flags, mode, device); the RNG states are restored. The shuffle-tune's LoRA
    copies `peft_config`, else the model's own active LoRA adapter, else r=16/alpha=32 on every
    linear layer.
    """
    settings = settings or ShadSettings()
    report = ShadReport(threshold=settings.threshold, world_size=dist.world_size())
    warn = _Warnings(report)
    started = time.perf_counter()
    if settings.labels_path:
        return _from_labels(dataset, eval_datasets, settings, report, started)

    lm_head_parts(model)  # an UnsupportedModelError before anything is computed or written
    if training_args is not None:
        training_args.device  # noqa: B018 - sets up torch.distributed exactly as the run does
        report.world_size = dist.world_size()
    if max_length is None:
        max_length = getattr(training_args, "max_length", None)

    table = TokenTable(dataset, "training")
    evals = {name: TokenTable(ds, f"eval '{name}'") for name, ds in (eval_datasets or {}).items()}
    _check_trainable(table)
    for eval_table in evals.values():
        if eval_table.response_tokens == 0:
            raise ShadDataError(_no_response_message(eval_table.name))

    # --- sample and shuffle (pure, deterministic) ----------------------------------------------
    t0 = time.perf_counter()
    eligible = np.flatnonzero(table.response_counts > 0).tolist()
    count = sample_count(
        len(eligible), settings.sample_ratio, settings.min_steps, effective_batch(training_args)
    )
    rows = table.rows(choose_samples(eligible, count, settings.seed))
    if identical_responses(rows):
        warn(
            "All sampled responses are identical: the shuffle changes nothing, so SHAD cannot separate "
            "boilerplate from reasoning (every LD is ~0). Fix: check that the dataset's responses are "
            "real and differ between samples."
        )
    shuffled = shuffle_rows(rows, settings.seed, max_length)
    report.rows = table.num_rows
    report.sampled = len(rows)
    report.segments_shuffled = sum(len(segments(r.labels)) for r in rows)
    report.seconds["sample+shuffle"] = time.perf_counter() - t0

    # --- cache entry ------------------------------------------------------------------------------
    # The run's LoRA settings: given, or those of the adapter the model already carries.
    lora = shad_lora_config(peft_config if peft_config is not None else active_peft_config(model))
    score_batch = getattr(training_args, "per_device_eval_batch_size", None) or DEFAULT_SCORE_BATCH
    material = _cache_material(
        model, model_id, tokenizer, table, max_length, settings, training_args, lora, score_batch
    )
    entry = CacheEntry(settings.resolved_cache_dir(), material, warn)
    with entry.exclusive():
        if dist.is_main():
            entry.prepare()
        dist.barrier()
        report.cache_entry = str(entry.path)

        pad_id = pad_id_of(tokenizer, model)
        precision = _precision(training_args)
        jobs = {TRAIN: _job(TRAIN, table, score_batch)}
        for eval_table in evals.values():
            jobs[_split_name(eval_table)] = _job(_split_name(eval_table), eval_table, score_batch)
        probe_job = _probe_job(shuffled, score_batch)

        scores: dict[str, dict[str, dict[int, np.ndarray]]] = {}
        reused = 0
        with _preserved_rng():
            _seed_everything(settings.seed)
            with ShadAdapter(model, lora) as adapter:
                report.tune_steps, adapter_reused = _tuned_adapter(
                    adapter,
                    entry,
                    shuffled,
                    settings,
                    training_args,
                    pad_id,
                    report,
                    warn,
                    progress,
                )
                t0 = time.perf_counter()
                passes = [("l_o", adapter.disabled), ("l_s", adapter.enabled)]
                for split, job in jobs.items():
                    scores[split], n = run_scoring(
                        adapter.peft_model,
                        job,
                        passes,
                        entry.shards(split),
                        pad_id,
                        precision,
                        progress,
                    )
                    reused += n
                report.seconds["score"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                probe_scores, n = run_scoring(
                    adapter.peft_model,
                    probe_job,
                    [("l_swap", adapter.disabled)],
                    entry.shards("probe"),
                    pad_id,
                    precision,
                    progress,
                )
                reused += n
                report.seconds["probe"] = time.perf_counter() - t0
        total_shards = sum(len(job.shards) for job in jobs.values()) + len(probe_job.shards)
        report.cache = _cache_status(adapter_reused, reused, total_shards)

        # --- classify and check health -----------------------------------------------------------------
        t0 = time.perf_counter()
        labelled, stats, ld_values, l_o_values = _attach(
            dataset, table, scores[TRAIN], settings.threshold
        )
        report.response_tokens = stats.response_tokens
        report.boilerplate_tokens = stats.boilerplate_tokens
        report.histogram = ld_histogram(ld_values)
        labelled_evals = {}
        for name, eval_table in evals.items():
            labelled_evals[name], report.eval[name], _, _ = _attach(
                eval_datasets[name], eval_table, scores[_split_name(eval_table)], settings.threshold
            )
        report.probe = _probe(shuffled, probe_scores["l_swap"], scores[TRAIN], settings.threshold)
        for message in (
            *_threshold_warnings(
                report.boilerplate_fraction, l_o_values, ld_values, settings.threshold
            ),
            saturation_warning(l_o_values),
            None if report.probe.ready else report.probe.verdict,
        ):
            if message:
                warn(message)
        report.seconds["classify"] = time.perf_counter() - t0
        report.seconds["total"] = time.perf_counter() - started
        if dist.is_main():
            entry.mark_complete({"report": report.to_dict()})
        dist.barrier()
        return ShadResult(dataset=labelled, eval_datasets=labelled_evals, report=report)


# ---------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------


def _cache_material(
    model, model_id, tokenizer, table, max_length, settings, training_args, lora, score_batch
) -> dict[str, Any]:
    """Everything that changes the scores (the threshold does not: it only classifies)."""
    return {
        "rft_trl": __version__,
        "algorithm": ALGORITHM_VERSION,
        "model": model_identity(model, model_id),
        "tokenizer": tokenizer_identity(tokenizer),
        "data": {"rows": table.num_rows, "fingerprint": table.fingerprint},
        "max_length": max_length,
        "settings": {
            "sample_ratio": settings.sample_ratio,
            "min_steps": settings.min_steps,
            "num_epochs": settings.num_epochs,
            "max_steps": settings.max_steps,
            "seed": settings.seed,
        },
        "tune": tune_key(settings, training_args),
        "lora": _lora_key(lora),
        "score_batch": score_batch,
        "runtime": runtime_identity(model),
    }


def _cache_status(adapter_reused: bool, reused_shards: int, total_shards: int) -> str:
    """`hit`, `miss`, or what a partial (resumed) run reused."""
    if adapter_reused and reused_shards == total_shards:
        return "hit"
    if not adapter_reused and not reused_shards:
        return "miss"
    adapter = "adapter reused" if adapter_reused else "adapter tuned"
    return f"partial: {adapter}, {reused_shards} of {total_shards} score shards reused"


def _no_response_message(name: str) -> str:
    return (
        f"The {name} dataset has no response tokens: every label is -100, so there is nothing to "
        "label or train on. Fix: tokenize with a loss mask on the responses (TRL: prompt/completion "
        "data, or `assistant_only_loss=True` with a chat template that has {% generation %} markers; "
        "Axolotl: `train_on_inputs: false` with roles to train), and check that `max_length` does "
        "not cut every response off."
    )


def _check_trainable(table: TokenTable) -> None:
    """Clear errors for data SHAD cannot work on."""
    if table.num_rows == 0 or table.response_tokens == 0:
        raise ShadDataError(_no_response_message(table.name))
    with_response = int((table.response_counts > 0).sum())
    if with_response < 2:
        raise ShadDataError(
            f"SHAD needs at least 2 samples with response tokens to shuffle responses between them; the "
            f"{table.name} dataset has {with_response}. Fix: use more samples, or provide labels with "
            "`shad_labels_path`, or set `rft: false`."
        )


def _lora_key(lora) -> dict[str, Any]:
    data = lora.to_dict()
    for volatile in ("base_model_name_or_path", "revision", "inference_mode", "peft_version"):
        data.pop(volatile, None)
    return {key: (sorted(v) if isinstance(v, set) else v) for key, v in data.items()}


def _shard_sizes() -> tuple[int, int]:
    return score_module.BATCHES_PER_SHARD, score_module.MIN_SHARDS


def _job(split: str, table: TokenTable, batch_size: int) -> ScoreJob:
    lengths = table.lengths
    return ScoreJob(
        split=split,
        shards=plan_shards(range(table.num_rows), lengths, batch_size, *_shard_sizes()),
        lengths={i: int(n) for i, n in enumerate(lengths)},
        fetch=lambda idx: [(r.input_ids, r.labels) for r in table.rows(idx)],
    )


def _probe_job(shuffled: list[ShuffledRow], batch_size: int) -> ScoreJob:
    by_index = {row.index: row for row in shuffled}
    indices = sorted(by_index)
    lengths = np.zeros(max(indices) + 1, dtype=np.int64)
    for index in indices:
        lengths[index] = len(by_index[index].input_ids)
    return ScoreJob(
        split="probe",
        shards=plan_shards(indices, lengths, batch_size, *_shard_sizes()),
        lengths={i: int(lengths[i]) for i in indices},
        fetch=lambda idx: [(by_index[i].input_ids, by_index[i].labels) for i in idx],
    )


def _tuned_adapter(
    adapter: ShadAdapter,
    entry: CacheEntry,
    shuffled: list[ShuffledRow],
    settings: ShadSettings,
    training_args: Any,
    pad_id: int,
    report: ShadReport,
    warn: _Warnings,
    progress: bool,
) -> tuple[int | None, bool]:
    """Load the cached adapter or tune and save it; every process then scores with the saved bytes.

    Returns (shuffle-tune steps, whether the cached adapter was reused).
    """
    usable = False
    saved = None
    if dist.is_main():
        saved = entry.load_adapter()
        if saved is not None:
            usable = adapter.load_state_dict(saved[0])
            if not usable:
                warn(
                    f"SHAD cache: the saved adapter in {entry.path} does not fit this model; retuning."
                )
                entry.drop_adapter()
    usable = dist.broadcast(usable)
    if usable:
        if not dist.is_main():
            saved = entry.load_adapter()
            if saved is None or not adapter.load_state_dict(saved[0]):
                raise RuntimeError(
                    f"SHAD: process {dist.rank()} cannot read the adapter in {entry.path}. Fix: "
                    "put `shad_cache_dir` on storage every process can read (a shared file system "
                    "on several machines)."
                )
        report.seconds["tune"] = 0.0
        return saved[1].get("steps"), True
    outcome = tune(adapter, shuffled, settings, training_args, pad_id, progress)
    report.seconds["tune"] = outcome.seconds
    if dist.is_main():
        entry.drop_scores()  # scores made with an earlier adapter must not mix with this one's
        entry.save_adapter(
            adapter.state_dict(), {"steps": outcome.steps, "final_loss": outcome.final_loss}
        )
    dist.barrier()
    saved = entry.load_adapter()
    if saved is None or not adapter.load_state_dict(saved[0]):
        raise RuntimeError(
            f"SHAD: the adapter just saved in {entry.path} cannot be read back. Fix: put "
            "`shad_cache_dir` on storage every process can read and write (a shared file system "
            "on several machines), with space left."
        )
    return outcome.steps, False


def _attach(
    dataset: Dataset, table: TokenTable, scores: dict[str, dict[int, np.ndarray]], threshold: float
) -> tuple[Dataset, SplitStats, np.ndarray, np.ndarray]:
    """`dataset` with token_class/shad_l_o/shad_l_s columns, its stats, and LD and l_o over response tokens."""
    classes, l_os, l_ss, lds, l_o_resp = [], [], [], [], []
    boilerplate = 0
    for row in table.rows(range(table.num_rows)):
        l_o, l_s = scores["l_o"][row.index], scores["l_s"][row.index]
        in_loss = np.asarray(row.labels) != IGNORE_INDEX
        cls = classify(l_o, l_s, in_loss, threshold)
        boilerplate += int((cls == 0).sum())
        classes.append(cls)
        l_os.append(l_o)
        l_ss.append(l_s)
        lds.append((l_s - l_o)[in_loss])
        l_o_resp.append(l_o[in_loss])
    base = dataset.remove_columns([c for c in COLUMNS if c in dataset.column_names])
    for name, values, arrow_type, feature in (
        (TOKEN_CLASS, classes, pa.int8(), Value("int8")),
        (L_O, l_os, pa.float32(), Value("float32")),
        (L_S, l_ss, pa.float32(), Value("float32")),
    ):
        base = base.add_column(name, _list_array(values, arrow_type), feature=Sequence(feature))
    stats = SplitStats(
        rows=table.num_rows, response_tokens=table.response_tokens, boilerplate_tokens=boilerplate
    )
    concat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.float32)  # noqa: E731
    return base, stats, concat(lds), concat(l_o_resp)


# A list array's offsets are int32: one chunk holds at most this many values in all.
_MAX_CHUNK_VALUES = 2**31 - 1


def _list_array(
    values: list[np.ndarray], arrow_type: pa.DataType, max_chunk_values: int = _MAX_CHUNK_VALUES
) -> pa.ChunkedArray:
    """One list column as Arrow chunks of whole rows, each small enough for int32 offsets (a
    single array would wrap silently past 2**31 tokens)."""
    chunks, start, size = [], 0, 0
    for index, row in enumerate(values):
        if size + len(row) > max_chunk_values and index > start:
            chunks.append(_list_chunk(values[start:index], arrow_type))
            start, size = index, 0
        size += len(row)
    chunks.append(_list_chunk(values[start:], arrow_type))
    return pa.chunked_array(chunks, type=pa.list_(arrow_type))


def _list_chunk(values: list[np.ndarray], arrow_type: pa.DataType) -> pa.ListArray:
    lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    flat = np.concatenate(values) if values else np.zeros(0)
    return pa.ListArray.from_arrays(offsets, pa.array(flat, type=arrow_type))


def _probe(
    shuffled: list[ShuffledRow],
    l_swap: dict[int, np.ndarray],
    train: dict[str, dict[int, np.ndarray]],
    threshold: float,
):
    """Compare each response token's base loss under a swapped prompt with its loss in its own row."""
    swapped, own, reasoning = [], [], []
    for row in shuffled:
        losses = l_swap[row.index]
        for pos in range(1, len(row.input_ids)):
            src_row, src_pos = row.source_row[pos], row.source_pos[pos]
            if src_row < 0 or src_pos < 1 or row.labels[pos] == IGNORE_INDEX:
                continue
            swapped.append(losses[pos])
            l_o = train["l_o"][src_row][src_pos]
            own.append(l_o)
            reasoning.append(train["l_s"][src_row][src_pos] - l_o > threshold)
    return probe_result(np.asarray(swapped), np.asarray(own), np.asarray(reasoning))


def _threshold_warnings(
    fraction: float, l_o: np.ndarray, ld: np.ndarray, threshold: float
) -> list[str]:
    """The health warnings that change with the threshold (the boilerplate share, drift)."""
    found = (boilerplate_warning(fraction), drift_warning(l_o, ld, threshold))
    return [message for message in found if message]


def _response_values(labelled: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """l_o, LD and the class of every response token of a labelled dataset."""
    l_o, ld, classes = [], [], []
    columns = labelled.select_columns([TOKEN_CLASS, L_O, L_S])
    for batch in columns.iter(batch_size=1024):
        for cls, o, s in zip(batch[TOKEN_CLASS], batch[L_O], batch[L_S], strict=True):
            cls, o, s = np.asarray(cls), np.asarray(o, np.float32), np.asarray(s, np.float32)
            in_loss = cls != IGNORE_INDEX
            l_o.append(o[in_loss])
            ld.append((s - o)[in_loss])
            classes.append(cls[in_loss])
    concat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype)  # noqa: E731
    return concat(l_o, np.float32), concat(ld, np.float32), concat(classes, np.int8)


def _from_labels(
    dataset: Dataset,
    eval_datasets: dict[str, Dataset] | None,
    settings: ShadSettings,
    report: ShadReport,
    started: float,
) -> ShadResult:
    """Attach labels written earlier by `rft-trl shad`, after checking they belong to these datasets."""
    labels_dir = LabelsDir(settings.labels_path)
    labelled = load_labels(settings.labels_path, dataset, threshold=settings.threshold)
    evals = {}
    if eval_datasets and not any(split.startswith("eval-") for split in labels_dir.splits):
        name = next(iter(eval_datasets))
        raise ShadLabelsError(
            f"The SHAD labels in {settings.labels_path} have no eval split, so eval set "
            f"{name!r} has no labels (stored: {sorted(labels_dir.splits)}). Fix: re-run "
            "`rft-trl shad` with the eval set in its config (`eval_strategy` other than 'no' "
            "and `dataset_test_split`), or give the eval rows a `token_class` column, or "
            "unset `shad_labels_path` so SHAD labels both."
        )
    for name, eval_dataset in (eval_datasets or {}).items():
        split = labels_dir.match(eval_dataset, preferred=f"eval-{name}")
        evals[name] = load_labels(
            settings.labels_path, eval_dataset, threshold=settings.threshold, split=split
        )
    stored = labels_dir.metadata.get("report")
    if stored:
        report.__dict__.update(ShadReport.from_dict(stored).__dict__)
    # The class counts and the warnings that depend on the threshold are those of this one.
    l_o, ld, classes = _response_values(labelled)
    stale = set(_threshold_warnings(report.boilerplate_fraction, l_o, ld, report.threshold))
    report.threshold = settings.threshold
    report.response_tokens = int(classes.size)
    report.boilerplate_tokens = int((classes == 0).sum())
    report.warnings = [m for m in report.warnings if m not in stale]
    warn = _Warnings(report)
    for message in _threshold_warnings(report.boilerplate_fraction, l_o, ld, settings.threshold):
        warn(message)
    for name, labelled_eval in evals.items():
        eval_classes = _response_values(labelled_eval)[2]
        report.eval[name] = SplitStats(
            rows=len(labelled_eval),
            response_tokens=int(eval_classes.size),
            boilerplate_tokens=int((eval_classes == 0).sum()),
        )
    report.cache = f"labels from {settings.labels_path}"
    report.seconds = {"load": time.perf_counter() - started}
    return ShadResult(dataset=labelled, eval_datasets=evals, report=report)
