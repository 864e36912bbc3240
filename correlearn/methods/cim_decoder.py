"""CIM's correlation decoder (Li, Xie & Loy 2023, Sec. 3.2, eq. 4-6, Fig. 4a).

Context tokens h_c query the exemplar tokens h_z: :class:`CrossAttentionBlock` is eq. 4-5 (global
cross-attention), :class:`ConvCorrelationBlock` the "conv" alternative of Fig. 4a (depthwise
correlation, SiamRPN++). :class:`CorrelationDecoder` embeds both streams, adds the context's fixed
sin-cos positions, runs the blocks and predicts one logit map per exemplar (eq. 6), upsampled to
the context's pixels.

Details from the ref code (weivision/Correlational-Image-Modeling, models/cim.py,
models/nn_util.py): one ``Linear(D, 512)`` embeds both streams; the cross-attention block is
pre-norm with one LayerNorm shared by queries and keys (so f_c, f_k, f_v of eq. 4 are that
embedding followed by the block's q/k/v maps); 16 heads; a final LayerNorm before the 2-class
linear predictor; bilinear upsampling of the logits to m x m. The ref code keeps the CLS token in
the decoder; here only patch tokens (ViT) or res5 cells (ResNet) are used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from correlearn.models import sincos_2d


class CrossAttentionBlock(nn.Module):
    """Eq. 4-5: a = softmax(q k^T / sqrt(d)) v; h = h_c + a + MLP(LN(h_c + a)); multi-head.

    Pre-norm as the ref code's ``CrossBlock``: q from LN(h_c), k and v from LN(h_z).

    Args:
        dim: token width d.
        heads: attention heads.
        mlp_ratio: MLP hidden width / d.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"decoder_dim {dim} is not divisible by decoder_heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)  # shared by both streams, as the ref code
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self._make_maps(dim)

    def _make_maps(self, dim: int) -> None:
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)

    def correlate(
        self, hc: torch.Tensor, hz: torch.Tensor, grid_c: tuple[int, int], grid_z: tuple[int, int]
    ) -> torch.Tensor:
        """(N, Nc, d) context and (N, Nz, d) exemplar tokens -> (N, Nc, d) values a (eq. 4)."""
        n, nc, d = hc.shape
        q = self.q(self.norm1(hc)).view(n, nc, self.heads, -1).transpose(1, 2)
        k, v = self.kv(self.norm1(hz)).view(n, hz.shape[1], 2, self.heads, -1).unbind(2)
        a = F.scaled_dot_product_attention(q, k.transpose(1, 2), v.transpose(1, 2))
        return a.transpose(1, 2).reshape(n, nc, d)

    def forward(
        self, hc: torch.Tensor, hz: torch.Tensor, grid_c: tuple[int, int], grid_z: tuple[int, int]
    ) -> torch.Tensor:
        """(N, Nc, d) context and (N, Nz, d) exemplar tokens on their grids -> (N, Nc, d)."""
        h = hc + self.proj(self.correlate(hc, hz, grid_c, grid_z))
        return h + self.mlp(self.norm2(h))


class ConvCorrelationBlock(CrossAttentionBlock):
    """Fig. 4a "conv": eq. 5 with a depthwise correlation (SiamRPN++) in place of eq. 4.

    The exemplar's (d, hz, wz) feature map is a per-channel kernel slid over the context's map
    ('same' padding, divided by hz * wz), so each output token sees a local window only.
    """

    def _make_maps(self, dim: int) -> None:
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)

    def correlate(
        self, hc: torch.Tensor, hz: torch.Tensor, grid_c: tuple[int, int], grid_z: tuple[int, int]
    ) -> torch.Tensor:
        """(N, Nc, d) context and (N, Nz, d) exemplar tokens -> (N, Nc, d) correlations."""
        n, nc, d = hc.shape
        ctx = self.q(self.norm1(hc)).transpose(1, 2).reshape(1, n * d, *grid_c)
        ker = self.k(self.norm1(hz)).transpose(1, 2).reshape(n * d, 1, *grid_z)
        kh, kw = grid_z
        # 'same' padding by hand: even kernels (4 x 4 ViT cells) pad one more cell after.
        ctx = F.pad(ctx, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))
        a = F.conv2d(ctx, ker, groups=n * d) / (kh * kw)
        return a.reshape(n, d, nc).transpose(1, 2)


class CorrelationDecoder(nn.Module):
    """CIM's decoder (eq. 4-6): embed, correlate (x depth), LN, linear predictor, upsample.

    Args:
        in_dim: encoder token width D.
        dim: decoder width d (CIM Fig. 4d: 512).
        depth: correlation blocks (Fig. 4c: 1).
        heads: attention heads.
        mlp_ratio: hidden width of the blocks' MLP / d.
        correlation: ``cross_attention`` (eq. 4) or ``conv`` (Fig. 4a).
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        correlation: str = "cross_attention",
    ) -> None:
        super().__init__()
        block = ConvCorrelationBlock if correlation == "conv" else CrossAttentionBlock
        self.embed = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, 2)  # 2-class logits as the ref code's Conv2d(512, 2, 1)
        for mod in self.modules():
            if isinstance(mod, nn.Linear):  # ref code / JAX ViT init
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)

    def forward(
        self, ctx: torch.Tensor, ex: torch.Tensor, out_size: tuple[int, int], align_corners: bool
    ) -> torch.Tensor:
        """Logit maps of every exemplar over its context.

        Args:
            ctx: (B, D, hc, wc) context feature map h_c.
            ex: (B * E, D, hz, wz) exemplar feature maps h_z, exemplar e of context b at b * E + e.
            out_size: (H, W) of the context image.
            align_corners: of the bilinear upsampling.

        Returns:
            (B * E, H, W) logits l (y_hat = sigmoid(l)).
        """
        b, _, hgt, wid = ctx.shape
        reps = ex.shape[0] // b
        pe = sincos_2d(self.embed.out_features, hgt, wid, ctx.device)
        # Embed once per context, then repeat per exemplar: every exemplar gets its own map.
        hc = (self.embed(ctx.flatten(2).transpose(1, 2)) + pe).repeat_interleave(reps, dim=0)
        hz = self.embed(ex.flatten(2).transpose(1, 2))
        for blk in self.blocks:
            hc = blk(hc, hz, (hgt, wid), tuple(ex.shape[-2:]))
        logits = self.pred(self.norm(hc))
        diff = (logits[..., 1] - logits[..., 0]).reshape(-1, 1, hgt, wid)
        up = F.interpolate(diff.float(), out_size, mode="bilinear", align_corners=align_corners)
        return up[:, 0]
