"""Multi-process SHAD under `torchrun --nproc_per_node 2` (gloo, CPU): same labels as one process.

This file is also the torchrun worker (`python -m torch.distributed.run ... test_shad_multiprocess.py
--worker ...`): both ranks call `label_dataset`, rank 0 writes the labels, each rank writes how
many batches it scored.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

MAX_LENGTH = 640
# The job's collective timeout, shorter than the time the test holds the cache lock: a rank that sat in
# one barrier while rank 0 waited for the lock would time out.
LOCK_WAIT_TIMEOUT = 20
LOCK_HELD_SECONDS = 25


def _args(output_dir: str, per_device: int):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=4,
        learning_rate=5e-3,
        use_cpu=True,
        report_to=[],
        seed=0,
    )


def _label(checkpoint: str, data_path: str, cache: str, per_device: int, output_dir: str):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rft_trl.shad import ShadSettings, label_dataset

    model = AutoModelForCausalLM.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    data = Dataset.from_parquet(data_path)
    settings = ShadSettings(min_steps=2, cache_dir=cache)
    return label_dataset(
        model,
        data,
        settings,
        training_args=_args(output_dir, per_device),
        tokenizer=tokenizer,
        max_length=MAX_LENGTH,
        progress=False,
    )


def worker(argv: list[str]) -> None:
    """One rank: label with a warm adapter cache (sharded scoring) and with a cold one (DDP tune too)."""
    parser = argparse.ArgumentParser()
    for name in ("--checkpoint", "--data", "--warm-cache", "--cold-cache", "--out"):
        parser.add_argument(name, required=True)
    opts = parser.parse_args(argv)
    import datetime

    import torch.distributed

    # Short collective timeout (TrainingArguments.ddp_timeout does not reach gloo's barrier here).
    torch.distributed.init_process_group(
        "gloo", timeout=datetime.timedelta(seconds=LOCK_WAIT_TIMEOUT)
    )
    from rft_trl import dist
    from rft_trl.shad import save_labels
    from rft_trl.shad import score as score_module

    counted = {"batches": 0}
    real = score_module.score_batch

    def counting(*a, **k):
        counted["batches"] += 1
        return real(*a, **k)

    score_module.score_batch = counting
    out = Path(opts.out)
    warm = _label(opts.checkpoint, opts.data, opts.warm_cache, 2, str(out / "run"))
    warm_batches = counted["batches"]
    cold = _label(opts.checkpoint, opts.data, opts.cold_cache, 2, str(out / "run"))
    rank = dist.rank()
    (out / f"rank{rank}.json").write_text(
        json.dumps(
            {
                "world": dist.world_size(),
                "warm_batches": warm_batches,
                "warm_cache": warm.report.cache,
                "cold_steps": cold.report.tune_steps,
            }
        )
    )
    if rank == 0:
        save_labels(warm.dataset, out / "warm")
        save_labels(cold.dataset, out / "cold")


@pytest.mark.slow
def test_two_processes_give_the_same_labels_as_one(tiny_checkpoint, tiny_tokenizer, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    import torch
    from datasets import Dataset

    from rft_trl.shad import load_labels
    from rft_trl.synthetic import generate_samples, tokenize_example

    samples = generate_samples(14, "mixed", seed=5)
    rows = [
        tokenize_example(tiny_tokenizer, s, form="messages", max_length=MAX_LENGTH) for s in samples
    ]
    data = Dataset.from_list(rows)
    data_path = tmp_path / "data.parquet"
    data.to_parquet(str(data_path))

    # One process, one thread per op like each torchrun worker, effective batch 4 (= 2 x 2 processes).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = _label(
            str(tiny_checkpoint), str(data_path), str(tmp_path / "single"), 4, str(tmp_path / "run")
        )
    finally:
        torch.set_num_threads(threads)
    # The warm cache holds only the tuned adapter of the single-process run (same key: same effective batch).
    entry = Path(single.report.cache_entry)
    warm_entry = tmp_path / "warm" / "shad" / entry.name
    warm_entry.mkdir(parents=True)
    for name in ("key.json", "adapter.safetensors", "adapter.json"):
        shutil.copy(entry / name, warm_entry / name)

    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        __file__, "--worker", "--checkpoint", str(tiny_checkpoint), "--data", str(data_path),
        "--warm-cache", str(tmp_path / "warm"), "--cold-cache", str(tmp_path / "cold"), "--out", str(out),
    ]  # fmt: skip
    # Another run holds the warm entry's lock for longer than the job's collective timeout: the job
    # must wait (every rank polling in short broadcasts), then go on when it is released.
    lock = warm_entry.parent / f"{warm_entry.name}.lock"
    log = tmp_path / "stderr.txt"
    with open(lock, "a+") as held, open(log, "w") as stderr:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        deadline = time.monotonic() + 240
        while "is being computed by another run" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "the job never reached the cache lock"
            time.sleep(0.2)
        time.sleep(LOCK_HELD_SECONDS)  # > the collective timeout, counted from the wait's start
        still_waiting = proc.poll() is None
        fcntl.flock(held, fcntl.LOCK_UN)
        proc.wait(timeout=300)
    assert proc.returncode == 0, log.read_text()[-4000:]
    assert "still referenced" not in log.read_text()  # no DDP model outlived the labelling
    assert still_waiting

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["world"] == 2 for r in ranks)
    # Scoring was split: each rank scored some batches, together each batch of every pass once.
    train_batches, probe_batches = 4, 2  # 14 rows / 4 per batch; 8 shuffled rows / 4
    assert all(r["warm_batches"] > 0 for r in ranks)
    assert sum(r["warm_batches"] for r in ranks) == 2 * train_batches + probe_batches
    assert all(
        r["warm_cache"] == "partial: adapter reused, 0 of 6 score shards reused" for r in ranks
    )

    warm = load_labels(out / "warm")
    assert warm["token_class"] == single.dataset["token_class"]
    assert warm["shad_l_o"] == single.dataset["shad_l_o"]
    assert warm["shad_l_s"] == single.dataset["shad_l_s"]

    # Cold cache: the shuffle-tune itself ran data-parallel (2 processes x 2 rows = the same 2 steps of 4).
    assert all(r["cold_steps"] == single.report.tune_steps == 2 for r in ranks)
    cold = load_labels(out / "cold")
    assert cold["shad_l_o"] == single.dataset["shad_l_o"]  # the base is untouched
    diff = max(
        np.abs(np.subtract(a, b)).max()
        for a, b in zip(cold["shad_l_s"], single.dataset["shad_l_s"], strict=True)
    )
    assert diff < 1e-4  # DDP all-reduce vs one batch: the same update up to float rounding


if __name__ == "__main__" and "--worker" in sys.argv:
    sys.argv.remove("--worker")
    worker(sys.argv[1:])
    from rft_trl import dist

    dist.shut_down()  # the labelling results (and the shuffle-tune's DDP model) died with worker()
