"""The few torch.distributed helpers rft-trl needs; all are no-ops in a single process."""

from __future__ import annotations

import gc
import warnings

import torch.distributed as torch_dist


def _active() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 without torch.distributed)."""
    return torch_dist.get_rank() if _active() else 0


def world_size() -> int:
    """Number of processes (1 without torch.distributed)."""
    return torch_dist.get_world_size() if _active() else 1


def is_main() -> bool:
    """Whether this is the global main process (the one that writes shared files and shows progress)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if _active() and world_size() > 1:
        torch_dist.barrier()


def broadcast(value):
    """`value` of rank 0 on every process (any picklable object; in-memory only, never a file)."""
    if not _active() or world_size() == 1:
        return value
    holder = [value]
    torch_dist.broadcast_object_list(holder, src=0)
    return holder[0]


def sum_int(value: int) -> int:
    """Sum of an integer over all processes."""
    if not _active() or world_size() == 1:
        return value
    import torch

    backend = torch_dist.get_backend()
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if backend == "nccl"
        else torch.device("cpu")
    )
    tensor = torch.tensor([value], dtype=torch.long, device=device)
    torch_dist.all_reduce(tensor)
    return int(tensor.item())


def shut_down() -> None:
    """Wait for every rank, then destroy the default process group; call it once, last, on every rank.

    At interpreter exit a gloo worker thread may still be freeing a finished collective whose
    tensor has a Python object; that needs the GIL the dying interpreter no longer hands out, and
    the rank aborts with "terminate called without an active exception" (pytorch/pytorch#190489).
    Here the last gloo work is a tensor-free barrier, queued after a garbage collection that gives
    the caller's last collectives time to be retired (so no collective on Python tensors may run
    here): the race is made unlikely, not impossible.
    Destroying the group frees its threads only when nothing in C++ still holds it (a DDP model
    built earlier does). Destroyed under a live DDP model, the group is freed later by the model's
    Reducer with the GIL held, and its threads wait for it: a hang. So callers drop their trainer
    first, and a rank that still holds a DDP model warns and keeps its group (destroy is local).
    """
    if not _active():
        return
    from torch.nn.parallel import DistributedDataParallel

    gc.collect()
    # type(), not isinstance(): the latter reads `__class__`, which warns on deprecated torch objects.
    alive = sum(issubclass(type(obj), DistributedDataParallel) for obj in gc.get_objects())
    barrier()
    if alive:
        warnings.warn(
            f"{alive} DistributedDataParallel model(s) still referenced on rank {rank()}, so its "
            "process group is left to interpreter exit: destroying it under a live model can "
            "hang. Drop references to the trainer before the run ends.",
            stacklevel=2,
        )
        return
    torch_dist.destroy_process_group()
