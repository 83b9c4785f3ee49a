"""The few torch.distributed helpers rft-trl needs; all are no-ops in a single process."""

from __future__ import annotations

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
    """Collect garbage, wait for every process, then destroy the default process group.

    Left to interpreter shutdown, a gloo thread can still be joinable and abort a rank that trained
    fine ("terminate called without an active exception"). Destroyed while a DDP model is alive,
    the group is freed later by the model's Reducer with the GIL held, and its gloo threads wait for
    the GIL: a hang. So the caller drops its trainer first, and this collects before destroying.
    """
    if not _active():
        return
    import gc

    gc.collect()
    barrier()
    torch_dist.destroy_process_group()
