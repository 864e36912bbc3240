"""MoCo's queue of negative keys (He et al. 2020, Sec. 3.2), for VFS's MoCo variant (Sec. 4.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KeyQueue(nn.Module):
    """MoCo's negative bank (He et al. 2020, Sec. 3.2): a FIFO ring buffer of L2-normalised keys.

    Starts with random unit vectors, as MoCo; the pointer is a buffer, so checkpoints resume it.

    Args:
        size: K, keys held (VFS Sec. 4.1: 65536).
        dim: key width.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, k: torch.Tensor) -> torch.Tensor:
        """Insert (M, dim) keys in order, overwriting the M oldest (wrapping around).

        Returns:
            The dequeued (overwritten) keys, oldest first; with M > K only the newest K are kept.
        """
        size = self.keys.shape[0]
        k = k.detach()[-size:].to(self.keys.dtype)
        idx = (int(self.ptr) + torch.arange(k.shape[0], device=self.keys.device)) % size
        out = self.keys[idx].clone()
        self.keys[idx] = k
        self.ptr.fill_((int(self.ptr) + k.shape[0]) % size)
        return out

    def ordered(self) -> torch.Tensor:
        """(K, dim) keys, oldest first."""
        return torch.roll(self.keys, -int(self.ptr), dims=0)


def all_gather(x: torch.Tensor) -> torch.Tensor:
    """(M, dim) keys of this rank -> (world x M, dim) keys of every rank (x itself on one process).

    MoCo enqueues the keys of the whole global batch so that every rank's queue stays identical.
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out)
