"""SiamMAE's decoder block: cross-attention to the past frame, self-attention, MLP (Sec. 3, Table 2b)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import Mlp
from torch import nn


class Attention(nn.Module):
    """Multi-head attention of queries x over a context (self-attention when context is x)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.proj = (
            nn.Linear(dim, dim),
            nn.Linear(dim, 2 * dim),
            nn.Linear(dim, dim),
        )

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """(B, n, dim) queries over (B, m, dim) context -> (B, n, dim)."""
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(ctx).view(b, ctx.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class DecoderBlock(nn.Module):
    """Pre-norm block: [cross-attention to f1] -> [self-attention] -> MLP (Sec. 3, Table 2b)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, cross: bool, self_attn: bool):
        super().__init__()
        self.cross = Attention(dim, heads) if cross else None
        self.norm_q, self.norm_kv = (
            (nn.LayerNorm(dim), nn.LayerNorm(dim)) if cross else (None, None)
        )
        self.attn = Attention(dim, heads) if self_attn else None
        self.norm_sa = nn.LayerNorm(dim) if self_attn else None
        self.norm_mlp, self.mlp = nn.LayerNorm(dim), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, mem: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n, dim) tokens (f2, or [f1; f2] for joint), mem (B, m, dim) f1 -> (B, n, dim)."""
        if self.cross is not None:
            x = x + self.cross(self.norm_q(x), self.norm_kv(mem))
        if self.attn is not None:
            y = self.norm_sa(x)
            x = x + self.attn(y, y)
        return x + self.mlp(self.norm_mlp(x))
