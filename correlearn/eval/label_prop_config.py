"""Label-propagation settings (:class:`LabelPropConfig`) and the published presets.

The protocol and the reference codes each preset follows are described in
:mod:`correlearn.eval.label_propagation`; ``vfs_resnet`` is the VFS ResNet protocol (the model's
defaults), ``crw_resnet`` CRW's (ajabri/videowalk), ``dino_vit`` DINO's, ``siammae_vit`` SiamMAE's
as CropMAE evaluates it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from correlearn.config import StrictModel, overrides_of
from correlearn.eval.windowed_propagation import Window

ContextMode = Literal["queue", "vfs", "crw"]

PRESETS: dict[str, dict[str, Any]] = {
    # VFS ref code (xvjiarui/VFS configs/r18_*.py test_cfg): res4 (out_indices (2,)) with strides
    # (1,2,1,1) -> stride 8, precede_frames 20, topk 10, temperature 0.07, neighbor_range 24
    # (circle of radius 12), with_first + with_first_neighbor (first frame restricted too), keys
    # [0] + [t-20, t) (VanillaTracker.forward_test); frames resized to short side 480.
    "vfs_resnet": {},
    # CRW (ajabri/videowalk @ 047f3f4). README.md:92-94, the DAVIS label-propagation command:
    # "--topk 10 --videoLen 20 --radius 12 --temperature 0.05 --cropSize -1" (frames at their own
    # size; README.md:96: T is the training temperature). code/test.py:104-112: keys = long_mem [0] (utils/arguments.py:52) + the previous
    # videoLen frames of a video padded with videoLen copies of frame 0 (data/vos.py:142-149);
    # the radius mask (utils/__init__.py:355-356, distance < radius) spares long_mem
    # (utils/test_utils.py:154). data/vos.py:262: first-frame one-hot labels resized bilinearly
    # (cv2 default); utils/arguments.py:56: --norm_mask off (no min-max normalisation);
    # utils/test_utils.py:90-93: soft labels upsampled to the input, then argmax. Features:
    # utils/arguments.py:49 --remove-layers layer4 and resnet.py:21-26 layer3 strides set to 1 ->
    # res4 at stride 8; utils/__init__.py:291 + resnet.py:30-34 reflect padding in every padded
    # conv; test.py:85-86 L2-normalised; data/vos.py:173 ImageNet mean/std.
    "crw_resnet": dict(
        context="crw",
        context_frames=20,
        topk=10,
        temperature=0.05,
        radius=12,
        window="circle",
        restrict_first=False,
        first_labels="bilinear",
        minmax_normalize=False,
        upsample="input",
        short_side=None,
        layer="res4",
        strides=(1, 2, 1, 1),
        padding_mode="reflect",
    ),
    # DINO eval_video_segmentation.py: n_last_frames 7 in a queue, topk 5, exp(cos/0.1), square
    # window of 12 patches. DINO floors the long side to a multiple of 64 (854 -> 832); we floor
    # both sides to the patch size (854 -> 848), which keeps the short side at 480 as DINO does.
    "dino_vit": dict(
        context="queue",
        upsample="input",
        context_frames=7,
        topk=5,
        temperature=0.1,
        radius=12,
        window="square",
        size_multiple=16,
        layer=None,
        strides=None,
    ),
    # SiamMAE Table 4b (DAVIS): top-k 7, queue 20, neighbourhood 20. The paper gives no temperature;
    # CropMAE's public SiamMAE evaluation (CRW code, downstreams/propagation) uses 0.7, video_len 20
    # (m copies of frame 0 in front), long_mem [0] unrestricted, bilinear first-frame labels and
    # no min-max normalisation.
    "siammae_vit": dict(
        context="crw",
        first_labels="bilinear",
        upsample="input",
        context_frames=20,
        topk=7,
        temperature=0.7,
        radius=20,
        window="circle",
        restrict_first=False,
        minmax_normalize=False,
        size_multiple=16,
        layer=None,
        strides=None,
    ),
}


class LabelPropConfig(StrictModel):
    """Label-propagation settings; the defaults are the VFS ResNet protocol (``vfs_resnet``).

    ``layer``, ``strides`` and ``padding_mode`` (ResNets only) are for the caller that builds the
    backbone (docs/contracts.md);
    propagation itself only sees the feature maps. ``tile`` and ``feature_batch`` change speed,
    not results.
    """

    context: ContextMode = Field("vfs", description="how early frames' context is built")
    context_frames: int = Field(20, ge=0, description="m: previous frames kept as context")
    topk: int = Field(10, ge=1, description="k: affinities kept jointly over all context")
    temperature: float = Field(0.07, gt=0, description="T in softmax(cos / T)")
    radius: float = Field(12.0, gt=0, description="window radius in feature cells")
    window: Window = "circle"
    restrict_first: bool = True
    first_labels: Literal["nearest", "bilinear"] = "nearest"
    minmax_normalize: bool = True
    upsample: Literal["annotation", "input"] = Field("annotation", description="argmax size")
    short_side: int | None = Field(480, ge=1, description="frames resized to this short side")
    size_multiple: int = Field(1, ge=1, description="resized sides floored to a multiple")
    layer: str | None = "res4"
    strides: tuple[int, int, int, int] | None = (1, 2, 1, 1)
    padding_mode: Literal["zeros", "reflect"] = Field("zeros", description="ResNet conv padding")
    tile: int | tuple[int, int] = Field(10, description="target tile side or (rows, cols): speed")
    feature_batch: int = Field(4, ge=1, description="frames per feature-extractor call (speed)")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> LabelPropConfig:
        """The published settings ``vfs_resnet | crw_resnet | dino_vit | siammae_vit``, overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown label-propagation preset {name!r}; known: {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


#: ``params`` of the propagation stages: overrides of the preset's :class:`LabelPropConfig`, each
#: key and value checked when the config is read.
LabelPropOverrides = Annotated[dict[str, Any], AfterValidator(overrides_of(LabelPropConfig))]
