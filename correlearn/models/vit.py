"""Vision Transformers (timm) with any-size inputs, dense patch maps and MAE-style token masking.

The timm model is built with ``dynamic_img_size=True``, so its position embeddings (defined for the
``img_size`` grid) are resampled bicubically to the patch grid of each input, square or not, as
MAE's ``interpolate_pos_embed`` and CIM's ``interpolate_pos_encoding`` do. ``pos_embed="learned"``
keeps timm's trainable table (timm's default); ``"sincos"`` fills it with MAE's fixed 2-D sin-cos
embedding (CLS position zero) and freezes it, as the MAE and CIM reference encoders
(``requires_grad=False``; :mod:`correlearn.models.pos_embed`).
:meth:`ViT.forward_tokens` adds the position embeddings *before* dropping masked patches, as MAE
(He et al. 2022, Sec. 3) and SiamMAE (Gupta et al. 2023, Sec. 3) do, so kept tokens remember where
they came from.

The timm model is held as ``self.model``; :meth:`ViT.export_state_dict` returns its state dict
unprefixed, loadable into ``timm.create_model(<same name>)`` (strict=False: only ``head.*``
missing).
"""

from __future__ import annotations

from typing import Literal

import timm
import torch
from timm.layers import resample_abs_pos_embed
from timm.models._manipulate import checkpoint_seq
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from correlearn.models.info import BackboneInfo, vit_info
from correlearn.models.pos_embed import sincos_2d

PosEmbed = Literal["learned", "sincos"]


class ViT(nn.Module):
    """A timm ``VisionTransformer`` with a CLS token, exposing pooled, dense and masked forwards.

    Args:
        model: a timm ``VisionTransformer`` built with ``dynamic_img_size=True``, ``num_classes=0``,
            a class token and no register tokens.
        pos_embed: ``"learned"`` (timm's trainable table) or ``"sincos"`` (MAE's fixed table).

    Attributes:
        patch_size: pixels per patch side.
        embed_dim: token width D (= ``out_dim``).
        out_dim: size of the pooled (CLS) feature.
    """

    def __init__(self, model: VisionTransformer, pos_embed: PosEmbed = "learned") -> None:
        super().__init__()
        if not model.dynamic_img_size:
            raise ValueError("the timm model must be built with dynamic_img_size=True")
        if model.cls_token is None or model.num_prefix_tokens != 1:
            raise ValueError("ViT expects exactly one prefix token (CLS) and no register tokens")
        self.model = model
        self.patch_size = int(model.patch_embed.patch_size[0])
        self.embed_dim = int(model.embed_dim)
        self.out_dim = self.embed_dim
        self.set_pos_embed(pos_embed)

    def set_pos_embed(self, kind: PosEmbed) -> None:
        """Make the position table timm's trainable one or MAE's fixed 2-D sin-cos one.

        ``"sincos"`` overwrites the table with :func:`sincos_2d` of the ``img_size`` grid (a zero
        row for the CLS position, MAE ``cls_token=True``) and sets ``requires_grad=False``;
        ``"learned"`` only makes the current table trainable again.
        """
        if kind not in ("learned", "sincos"):
            raise ValueError(f"pos_embed must be 'learned' or 'sincos', got {kind!r}")
        pe = self.model.pos_embed
        if kind == "sincos":
            gh, gw = self.model.patch_embed.grid_size
            table = sincos_2d(self.embed_dim, gh, gw)
            if not self.model.no_embed_class:
                table = torch.cat([torch.zeros(1, self.embed_dim), table])
            with torch.no_grad():
                pe.copy_(table.unsqueeze(0))
        pe.requires_grad_(kind == "learned")
        self.pos_embed_kind = kind

    @property
    def info(self) -> BackboneInfo:
        """This network's record (:mod:`correlearn.models.info`): one dense map, patch stride."""
        return vit_info(self.patch_size)

    def dense_dim(self, layer: str | None = None) -> int:
        """Channels of the dense map (the token width); ``layer`` is accepted and ignored."""
        return self.embed_dim

    def dense_stride(self, layer: str | None = None) -> int:
        """Input pixels per patch token (the patch size); ``layer`` is accepted and ignored."""
        return self.patch_size

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid (h, w) of an (height, width) input; a partial last patch is dropped."""
        return height // self.patch_size, width // self.patch_size

    def _pos_embeds(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Position embeddings resampled to an (h, w) grid: CLS (1, 1, D), patches (1, h*w, D)."""
        m = self.model
        if m.no_embed_class:
            pe = resample_abs_pos_embed(
                m.pos_embed, new_size=(h, w), old_size=m.patch_embed.grid_size, num_prefix_tokens=0
            )
            return torch.zeros_like(m.cls_token), pe
        pe = resample_abs_pos_embed(
            m.pos_embed, new_size=(h, w), old_size=m.patch_embed.grid_size, num_prefix_tokens=1
        )
        return pe[:, :1], pe[:, 1:]

    def _blocks_and_norm(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.norm_pre(x)
        if m.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(m.blocks, x)
        else:
            x = m.blocks(x)
        return m.norm(x)

    def forward_tokens(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Encode the CLS token and a subset of patch tokens (MAE-style masking).

        Args:
            x: (B, 3, H, W) normalised images; the patch grid is (H // p, W // p), N = h * w.
            keep: (B, N_keep) long indices into the row-major patch grid of the patches to encode;
                ``None`` keeps all N patches in grid order.

        Returns:
            (B, 1 + N_keep, D): CLS then the kept patch tokens in ``keep`` order, after all blocks
            and the final norm.
        """
        m = self.model
        tokens = m.patch_embed(x)  # (B, h, w, D): timm's dynamic-size patch embed is channels-last
        b, h, w, d = tokens.shape
        cls_pe, patch_pe = self._pos_embeds(h, w)
        tokens = tokens.reshape(b, h * w, d) + patch_pe
        if keep is not None:
            if keep.dim() != 2 or keep.shape[0] != b:
                raise ValueError(f"keep must be (B={b}, N_keep) indices, got {tuple(keep.shape)}")
            tokens = torch.gather(tokens, 1, keep.unsqueeze(-1).expand(-1, -1, d))
        cls = (m.cls_token + cls_pe).expand(b, -1, -1)
        tokens = m.pos_drop(torch.cat([cls, tokens], dim=1))
        if keep is None:
            tokens = m.patch_drop(tokens)
        return self._blocks_and_norm(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Final-norm CLS token: (B, 3, H, W) -> (B, D)."""
        return self.forward_tokens(x)[:, 0]

    def dense(self, x: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """Last-block patch tokens after the final norm as a map.

        Args:
            x: (B, 3, H, W) normalised images.
            layer: accepted for interface parity with ResNet; only the last block is available.

        Returns:
            (B, D, H // p, W // p).
        """
        if layer not in (None, "last"):
            raise ValueError(
                f"ViT dense features come from the last block only, got layer={layer!r}"
            )
        h, w = self.grid_size(x.shape[-2], x.shape[-1])
        tokens = self.forward_tokens(x)[:, 1:]
        return tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, h, w)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights with timm key names (``cls_token``, ``pos_embed``, ``blocks.*``...; no head)."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}


def _timm_vit(name: str, img_size: int, pos_embed: PosEmbed, **kwargs) -> ViT:
    model = timm.create_model(
        name, pretrained=False, num_classes=0, dynamic_img_size=True, img_size=img_size, **kwargs
    )
    return ViT(model, pos_embed)


def vit_small_patch16(img_size: int = 224, pos_embed: PosEmbed = "learned", **kwargs) -> ViT:
    """ViT-S/16 (timm ``vit_small_patch16_224``), random init; kwargs to ``timm.create_model``."""
    return _timm_vit("vit_small_patch16_224", img_size, pos_embed, **kwargs)


def vit_base_patch16(img_size: int = 224, pos_embed: PosEmbed = "learned", **kwargs) -> ViT:
    """ViT-B/16 (timm ``vit_base_patch16_224``), random init; kwargs to ``timm.create_model``."""
    return _timm_vit("vit_base_patch16_224", img_size, pos_embed, **kwargs)


def vit_small_patch8(img_size: int = 224, pos_embed: PosEmbed = "learned", **kwargs) -> ViT:
    """ViT-S/8 (timm ``vit_small_patch8_224``, SiamMAE's best), random init."""
    return _timm_vit("vit_small_patch8_224", img_size, pos_embed, **kwargs)


def vit_tiny_patch8(img_size: int = 224, pos_embed: PosEmbed = "learned", **kwargs) -> ViT:
    """ViT-Ti/8 (timm ``vit_tiny_patch16_224`` widths, patch 8): the CPU demo's SiamMAE encoder.

    Width 192, depth 12, 3 heads (DeiT-Ti). Patch 8 keeps more than one visible patch of f2 at the
    demo's small resolution, where a patch-16 ViT at 95% masking sees a single one.
    """
    return _timm_vit("vit_tiny_patch16_224", img_size, pos_embed, patch_size=8, **kwargs)


def vit_test_patch16(img_size: int = 224, pos_embed: PosEmbed = "learned", **kwargs) -> ViT:
    """Tiny test ViT: patch 16, width 64, depth 2, 2 heads."""
    model = VisionTransformer(
        img_size=img_size,
        patch_size=16,
        embed_dim=64,
        depth=2,
        num_heads=2,
        dynamic_img_size=True,
        num_classes=0,
        **kwargs,
    )
    return ViT(model, pos_embed)
