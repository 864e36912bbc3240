"""What a backbone family offers the evaluations: dense layers, normalisation, presets, options.

Code that treats ResNets and ViTs differently asks a :class:`BackboneInfo`, either by registry name
(:func:`correlearn.models.backbone_info`) or from a built module (``ResNet.info``, ``ViT.info``),
and never looks at the name itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["resnet", "vit"]


@dataclass(frozen=True)
class FeatureLayer:
    """One dense map of a backbone: ``dense(x, name)`` has ``stride`` input pixels per cell."""

    name: str
    stride: int


@dataclass(frozen=True)
class BackboneInfo:
    """The facts about a backbone that evaluation code may branch on.

    Attributes:
        family: ``"resnet"`` (torchvision) or ``"vit"`` (timm).
        feature_layers: the dense maps ``dense(x, layer)`` offers, shallow to deep, with their
            strides (ResNet ``res2..res5`` at 4..32 with default strides; ViT its last block at
            the patch size).
        has_batchnorm: whether the network holds BatchNorm layers (their running statistics are
            state that training and calibration change); ViTs use LayerNorm.
        lp_presets: the label-propagation presets that suit it, its default first.
        options: the constructor keyword arguments evaluations may set (ResNet ``strides``,
            ``dilations``, ``padding_mode``; ViT ``img_size``, ``pos_embed``, ``drop_path_rate``).
    """

    family: Family
    feature_layers: tuple[FeatureLayer, ...]
    has_batchnorm: bool
    lp_presets: tuple[str, ...]
    options: frozenset[str]

    @property
    def default_preset(self) -> str:
        """The label-propagation preset used when neither the user nor the method picks one."""
        return self.lp_presets[0]

    def dense_layer(self, layer: str | None) -> str | None:
        """``layer`` for a backbone with a choice of dense maps; None for one with a single map.

        A ViT has one dense map (its last block), so a ResNet layer name asked of it becomes None.
        """
        return layer if len(self.feature_layers) > 1 else None


RESNET_LAYERS = ("res2", "res3", "res4", "res5")


def resnet_info(strides: tuple[int, ...] = (4, 8, 16, 32)) -> BackboneInfo:
    """A ResNet's record; ``strides``: total strides of res2..res5 (default: torchvision's)."""
    return BackboneInfo(
        family="resnet",
        feature_layers=tuple(
            FeatureLayer(n, int(s)) for n, s in zip(RESNET_LAYERS, strides, strict=True)
        ),
        has_batchnorm=True,
        lp_presets=("vfs_resnet", "crw_resnet"),
        options=frozenset({"strides", "dilations", "padding_mode"}),
    )


def vit_info(patch_size: int) -> BackboneInfo:
    """A ViT's record: one dense map, the last block's patch tokens at the patch stride."""
    return BackboneInfo(
        family="vit",
        feature_layers=(FeatureLayer("last", int(patch_size)),),
        has_batchnorm=False,
        lp_presets=("dino_vit", "siammae_vit"),
        options=frozenset({"img_size", "pos_embed", "drop_path_rate"}),
    )
