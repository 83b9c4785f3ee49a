"""`rft_trl.shad.dist`: the torch.distributed helpers, in one process and in a one-rank gloo group."""

from __future__ import annotations

import os
import subprocess
import sys

from rft_trl.shad import dist

# One rank of a gloo group: train a DDP model inside a function (so it dies on return, as
# `rft-trl train` does with its trainer), then shut down and report what is left.
ONE_RANK = """
import torch, torch.distributed as td
from rft_trl.shad import dist

def train():
    td.init_process_group("gloo")
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))
    model(torch.ones(3, 4)).sum().backward()
    return dist.rank(), dist.world_size(), dist.sum_int(5), dist.broadcast("x")

print(train(), flush=True)
dist.shut_down()
print("initialized after:", td.is_initialized(), flush=True)
"""


def test_helpers_are_no_ops_without_a_group():
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    assert dist.sum_int(7) == 7 and dist.broadcast({"a": 1}) == {"a": 1}
    dist.barrier()
    dist.shut_down()  # nothing to destroy: returns quietly


def test_shut_down_destroys_the_group_after_a_ddp_model(tmp_path):
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "0",
        "RANK": "0",
        "WORLD_SIZE": "1",
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", ONE_RANK],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["(0, 1, 5, 'x')", "initialized after: False"]
    assert "terminate called" not in proc.stderr
