"""Teacher-forced per-token losses on one model copy, batched by length, sharded over processes and cached.

A loss is stored per token, aligned with `input_ids`: `loss[p] = -log p(input_ids[p] | input_ids[:p])`
where `labels[p] != -100`, and 0 elsewhere (also at position 0, which nothing predicts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from rft_trl import dist
from rft_trl.loss import IGNORE_INDEX, shift_targets
from rft_trl.modeling import forward_token_logprobs
from rft_trl.shad.batching import pad_rows
from rft_trl.shad.cache import ShardStore, sha256_json

# A shard (the unit of resumption and of work per process) holds up to this many batches, and a
# split is cut into at least ~MIN_SHARDS shards when it has enough batches, so that up to that many
# processes share the work. Neither depends on the number of processes (see `plan_shards`).
BATCHES_PER_SHARD = 16
MIN_SHARDS = 64

# A scoring pass: a name (the stored column) and a context manager factory that sets the model up.
Pass = tuple[str, Callable[[], contextlib.AbstractContextManager]]
# Rows to score: (input_ids, labels) pairs looked up by row id.
RowSource = Callable[[Sequence[int]], list[tuple[Sequence[int], Sequence[int]]]]


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (inputs go there)."""
    return next(model.parameters()).device


def autocast_for(device: torch.device, precision: str | None) -> contextlib.AbstractContextManager:
    """Autocast matching the run's mixed precision (`bf16`/`fp16`), else nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def score_batch(
    model: torch.nn.Module,
    rows: list[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    precision: str | None = None,
) -> list[np.ndarray]:
    """Per-token losses (float32, aligned with input_ids, 0 outside the loss) of one batch of rows."""
    batch = pad_rows([ids for ids, _ in rows], [labels for _, labels in rows], pad_id)
    device = model_device(model)
    batch = {key: value.to(device) for key, value in batch.items()}
    targets = shift_targets(batch["labels"])
    with torch.inference_mode(), autocast_for(device, precision):
        logp = forward_token_logprobs(model, batch, targets)
    loss = torch.zeros_like(logp, dtype=torch.float32)
    loss[:, 1:] = -logp[:, :-1].float()
    loss = loss.masked_fill(batch["labels"] == IGNORE_INDEX, 0.0).cpu().numpy()
    return [loss[i, : len(ids)].copy() for i, (ids, _) in enumerate(rows)]


@dataclass
class ScoreJob:
    """One split to score: its name, row ids, lengths, and how to fetch rows."""

    split: str
    shards: list[list[list[int]]]
    lengths: dict[int, int]
    fetch: RowSource

    @property
    def plan(self) -> str:
        """Hash of the shard/batch plan: a cached shard is reused only under the same plan."""
        return sha256_json(self.shards)


def scoring_plan(plan: str, model: torch.nn.Module) -> str:
    """The shards' plan with the device type they are scored on: a run resumed on a GPU must
    not reuse shards a CPU scored (the last digits differ, and can move a token across the
    threshold), and the device is only known here (a tune places the model; a reused adapter
    leaves it where it was)."""
    return f"{plan}@{next(model.parameters()).device.type}"


def run_scoring(
    model: torch.nn.Module,
    job: ScoreJob,
    passes: Sequence[Pass],
    store: ShardStore,
    pad_id: int,
    precision: str | None = None,
    progress: bool = True,
) -> tuple[dict[str, dict[int, np.ndarray]], int]:
    """Score every row of `job` under each pass; returns ({pass: {row: losses}}, shards reused).

    Shards are dealt round-robin to the processes; each writes its shards to `store`, then all
    read the union, so the result is the same on every process and identical to one process.
    """
    names = tuple(name for name, _ in passes)
    rank, world = dist.rank(), dist.world_size()
    plan = scoring_plan(job.plan, model)
    mine = [s for s in range(len(job.shards)) if s % world == rank]
    todo = []
    reused = 0
    for shard in mine:
        rows = [r for batch in job.shards[shard] for r in batch]
        if store.load(shard, plan, rows, [job.lengths[r] for r in rows], names) is None:
            todo.append(shard)
        else:
            reused += 1
    total_batches = sum(len(job.shards[s]) for s in todo)
    bar = tqdm(
        total=total_batches,
        desc=f"SHAD scoring {job.split}",
        unit="batch",
        disable=not progress or not dist.is_main() or total_batches == 0,
    )
    was_training = model.training
    model.eval()
    try:
        for shard in todo:
            rows: list[int] = []
            columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
            for batch_rows in job.shards[shard]:
                data = job.fetch(batch_rows)
                for name, setup in passes:
                    with setup():
                        columns[name].extend(score_batch(model, data, pad_id, precision))
                rows.extend(batch_rows)
                bar.update(1)
            store.save(shard, plan, rows, columns)
    finally:
        bar.close()
        model.train(was_training)
    dist.barrier()
    reused_total = reused
    out: dict[str, dict[int, np.ndarray]] = {name: {} for name in names}
    for shard in range(len(job.shards)):
        rows = [r for batch in job.shards[shard] for r in batch]
        loaded = store.load(shard, plan, rows, [job.lengths[r] for r in rows], names)
        if loaded is None:
            raise RuntimeError(
                f"SHAD: score shard {shard} of '{job.split}' (scored by process {shard % world}) is not "
                f"readable in {store.directory}. With several processes, `shad_cache_dir` must be on a "
                "filesystem every process sees (one machine, or shared storage across nodes)."
            )
        for name in names:
            for row, values in zip(rows, loaded[name], strict=True):
                out[name][row] = values
    return out, dist.sum_int(reused_total)
