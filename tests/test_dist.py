"""`rft_trl.dist`: the torch.distributed helpers, in one process and under torchrun (gloo, 2 ranks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rft_trl import dist

# One rank: collectives, a DDP model that dies inside a function (as `rft-trl train`'s trainer
# does), then `shut_down` while rank 1 still holds a second DDP model: rank 0 destroys its group,
# rank 1 warns and keeps it (then tears it down itself rather than leave it to exit).
RANK_SCRIPT = """
import gc, json, sys, warnings
import torch, torch.distributed as td
from rft_trl import dist

def train_ddp():
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))
    model(torch.ones(3, 4)).sum().backward()
    return model

td.init_process_group("gloo")
record = {"rank": dist.rank(), "world": dist.world_size(), "main": dist.is_main(),
          "sum": dist.sum_int(dist.rank() + 1), "broadcast": dist.broadcast(f"from {dist.rank()}")}
train_ddp()
kept = train_ddp()  # building a DDP model is a collective: every rank builds it
if dist.rank() == 0:
    kept = None
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    dist.shut_down()
record["initialized_after"] = td.is_initialized()
record["warnings"] = [str(w.message) for w in caught if "DistributedDataParallel" in str(w.message)]
with open(f"{sys.argv[1]}/rank{record['rank']}.json", "w") as handle:
    json.dump(record, handle)
if kept is not None:
    del kept
    gc.collect()
    td.destroy_process_group()
"""


def test_helpers_are_no_ops_without_a_group():
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    assert dist.sum_int(7) == 7 and dist.broadcast({"a": 1}) == {"a": 1}
    dist.barrier()
    dist.shut_down()  # nothing to destroy: returns quietly


@pytest.mark.slow
def test_shut_down_under_torchrun(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(script), str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "terminate called" not in proc.stderr
    for rank in (0, 1):
        record = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert record["rank"] == rank and record["world"] == 2 and record["main"] == (rank == 0)
        assert record["sum"] == 3 and record["broadcast"] == "from 0"
        # Rank 1's live model keeps its group, with a warning that says why; rank 0 destroys its own.
        assert record["initialized_after"] is (rank == 1)
        if rank == 0:
            assert record["warnings"] == []
        else:
            assert len(record["warnings"]) == 1
            assert (
                "1 DistributedDataParallel model(s) still referenced on rank 1"
                in (record["warnings"][0])
            )


def test_the_shipped_two_process_cpu_launch_config_starts_two_processes(tmp_path):
    """`plugin_configs/accelerate/cpu_2proc.yaml` must start two ranks (with MULTI_CPU,
    accelerate 1.15 started one without mpirun, silently)."""
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "plugin_configs/accelerate/cpu_2proc.yaml"
    script = tmp_path / "rank.py"
    script.write_text(
        "import os\nprint('RANK', os.environ.get('RANK'), os.environ.get('WORLD_SIZE'))\n"
    )
    accelerate = Path(sys.executable).parent / "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(accelerate), "launch", "--config_file", str(config), str(script)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = sorted(line for line in proc.stdout.splitlines() if line.startswith("RANK"))
    assert ranks == ["RANK 0 2", "RANK 1 2"], proc.stdout
