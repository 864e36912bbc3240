"""torch.distributed helpers: process groups, devices, DDP wrapping, collectives, torchrun.

Process-group setup reads torchrun's environment; the torchrun command line is for the stage runner
to launch a training stage on several GPUs or nodes.

Single-process runs never initialise a process group; every helper then answers as rank 0 of 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def is_dist() -> bool:
    """True when a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """Global rank of this process (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the only process that writes checkpoints and logs metrics."""
    return get_rank() == 0


def rank_seed(seed: int, rank: int | None = None) -> int:
    """Seed of one rank's data stream, so each rank draws a different shard of the global batch."""
    r = get_rank() if rank is None else rank
    return seed + 1_000_003 * r


def resolve_device(spec: str) -> torch.device:
    """``"auto"`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``"cuda"`` likewise."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda":
        return torch.device("cuda", local)
    return torch.device(spec)


def to_device(obj: Any, device: torch.device) -> Any:
    """Move every tensor in nested dicts/lists/tuples to ``device`` (other values unchanged)."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def init_distributed(device: str = "auto", timeout_minutes: float = 30.0) -> DistInfo:
    """Initialise the process group from torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.

    Backend: NCCL when training on CUDA, gloo on CPU. Without those variables (or with
    ``WORLD_SIZE=1``) nothing is initialised and this process is rank 0 of 1.

    Args:
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        timeout_minutes: collective timeout.

    Returns:
        This process's rank, world size, local rank and device (``cuda:LOCAL_RANK`` on CUDA).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            init_method="env://",
            rank=rank,
            world_size=world,
            timeout=timedelta(minutes=timeout_minutes),
        )
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def destroy_distributed() -> None:
    """Tear down the process group if one is initialised.

    Every rank meets at a barrier first: a rank that destroys its gloo group while a peer is still
    in a collective can make that peer's gloo threads abort the process (SIGABRT, "terminate called
    without an active exception") instead of returning.
    """
    if dist.is_available() and dist.is_initialized():
        if dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


class StepModule(nn.Module):
    """Routes ``forward(batch)`` to ``method.training_step(batch)`` so DDP sees the step.

    DDP only prepares its gradient all-reduce for computations that go through ``forward``.
    """

    def __init__(self, method: nn.Module):
        super().__init__()
        self.method = method

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named losses of one step, as ``method.training_step``."""
        return self.method.training_step(batch)


def wrap_ddp(
    method: nn.Module, device: torch.device | None = None, find_unused_parameters: bool = False
) -> DistributedDataParallel:
    """Wrap a method in DDP; call the result with a batch instead of ``method.training_step``.

    Parameters with ``requires_grad=False`` (EMA targets) are not all-reduced; the momentum update
    keeps them equal across ranks because the online weights are.

    Args:
        method: the method, already on ``device``.
        device: the process's CUDA device, or None/CPU for gloo.
        find_unused_parameters: see :class:`~correlearn.train.config.TrainConfig`.

    Returns:
        The DDP module; ``unwrap(ddp)`` gives ``method`` back.
    """
    ids = [device.index] if device is not None and device.type == "cuda" else None
    return DistributedDataParallel(
        StepModule(method), device_ids=ids, find_unused_parameters=find_unused_parameters
    )


def unwrap(model: nn.Module) -> nn.Module:
    """The method inside a DDP and/or :class:`StepModule` wrapper (or ``model`` itself)."""
    if isinstance(model, DistributedDataParallel):
        model = model.module
    if isinstance(model, StepModule):
        model = model.method
    return model


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over ranks (in place; ``t`` itself without a process group)."""
    if is_dist():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= get_world_size()
    return t


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank (keeps budget stops in lockstep)."""
    if not is_dist():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (a list of one without a process group); a collective call."""
    if not is_dist():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if is_dist():
        dist.barrier()


def torchrun_command(
    args: Sequence[str],
    nproc: int,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str = "127.0.0.1",
    master_port: int = 29500,
    python: str | None = None,
) -> list[str]:
    """The ``python -m torch.distributed.run`` command line for a training stage.

    Args:
        args: what each process runs: ``["-m", "pkg.module", ...]`` or ``["script.py", ...]``.
        nproc: processes (GPUs) per node.
        nnodes: number of nodes; with 1 the rendezvous is standalone on a free local port.
        node_rank: rank of this node (multi-node only).
        master_addr: address of node 0 (multi-node only).
        master_port: port on node 0 (multi-node only).
        python: interpreter; defaults to the current one.

    Returns:
        The argv list for ``subprocess``.
    """
    cmd = [python or sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc)]
    if nnodes == 1:
        cmd += ["--standalone", "--nnodes", "1"]
    else:
        cmd += [
            "--nnodes",
            str(nnodes),
            "--node_rank",
            str(node_rank),
            "--master_addr",
            master_addr,
            "--master_port",
            str(master_port),
        ]
    return cmd + list(args)


def launch_torchrun(
    args: Sequence[str],
    nproc: int,
    nnodes: int = 1,
    env: dict[str, str] | None = None,
    check: bool = True,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """Run :func:`torchrun_command` as a subprocess and wait for it.

    Args:
        args: what each process runs (see :func:`torchrun_command`).
        nproc: processes per node.
        nnodes: nodes.
        env: extra environment variables for the processes.
        check: raise ``CalledProcessError`` when any process fails.
        **kwargs: ``node_rank``, ``master_addr``, ``master_port``, ``python``.

    Returns:
        The completed process (output is not captured: it streams to this process's stdout).
    """
    cmd = torchrun_command(args, nproc=nproc, nnodes=nnodes, **kwargs)
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(cmd, env=full_env, check=check)
