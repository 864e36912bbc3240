"""Each preset's JHMDB pose and VIP parts settings, taken from the reference that preset follows.

A preset (:data:`~correlearn.eval.label_prop_config.PRESETS`) holds a reference's DAVIS settings;
the pose and parts protocols change some of them, and the stages' own fields (frame size, joint
readout), the way that reference evaluates those tasks:

- ``vfs_resnet`` (xvjiarui/VFS): VFS Sec. 4.1 propagates from "the latest 20 frames" in all three
  tasks with its DAVIS ``test_cfg`` (top-k 10, temperature 0.07, radius 12 at stride 8), and reads
  a JHMDB joint back as the soft-argmax of its top 5 cells (``mmaction/datasets/jhmdb_dataset.py``
  ``img2coord(topk=5)``; its label sigma of 4 px is our 0.5 cells at stride 8). The repository ships
  no JHMDB or VIP config, so the frame sizes are CRW's (320 square, ``--cropSize``) and UVC's (560
  square, VIP).
- ``crw_resnet`` (ajabri/videowalk): the README gives the DAVIS command only; ``code/test.py`` runs
  JHMDB and VIP through the same propagation, so its DAVIS settings stay (20 frames, top-k 10,
  radius 12, temperature 0.05: README.md:96, "we simply use the same temperature used at training
  time"; reflect padding, res4 at stride 8), with ``code/utils/arguments.py``'s ``--cropSize 320``
  (line 35) for JHMDB, the top-3 joint readout of ``code/utils/test_utils.py``
  ``process_pose(topk=3)`` (line 55) and UVC's 560 square for VIP, as the other presets.
- ``dino_vit``: DINO evaluates DAVIS only; pose and parts use CRW's test defaults
  (ajabri/videowalk ``code/utils/arguments.py``: ``--videoLen 20 --topk 10 --radius 12
  --temperature 0.07 --cropSize 320``, the first frame unrestricted, ``process_pose(topk=3)``).
- ``siammae_vit`` (CropMAE's SiamMAE evaluation, ``downstreams/propagation/util.py``): JHMDB 20
  frames, top-k 7, radius 20, temperature 0.7, 320 x 320, top-5 readout (``test_utils.py``
  ``process_pose(topk=5)``); VIP 20 frames, top-k **10**, radius 20, temperature 0.7, long side 880
  with the short side floored to a multiple of 64 (``src/data/vos.py``).

The SiamMAE paper's text (Sec. 4.2, "a single context frame") is the switch
``params: {context_frames: 1}``.
"""

from __future__ import annotations

from typing import Any

# CRW's test defaults as LabelPropConfig fields (its "crw" context: long_mem [0], video_len 20).
_CRW = dict(
    context="crw",
    context_frames=20,
    topk=10,
    temperature=0.07,
    radius=12,
    window="circle",
    restrict_first=False,
    upsample="input",
    layer=None,
    strides=None,
)

# protocol -> preset -> LabelPropConfig overrides of the preset. The stages resize the frames
# themselves, so ``short_side`` is off in each.
PROTOCOL_PROPAGATION: dict[str, dict[str, dict[str, Any]]] = {
    "pose": {
        "vfs_resnet": {"short_side": None},
        "crw_resnet": {"short_side": None},
        "dino_vit": {**_CRW, "short_side": None},
        "siammae_vit": {"short_side": None},
    },
    "parts": {
        "vfs_resnet": {"short_side": None},
        "crw_resnet": {"short_side": None},
        "dino_vit": {**_CRW, "short_side": None},
        "siammae_vit": {"topk": 10, "short_side": None},
    },
}

# protocol -> preset -> the stage's own fields (frames resized to a square side, or to a long side;
# the joint readout's top k).
PROTOCOL_STAGE: dict[str, dict[str, dict[str, Any]]] = {
    "pose": {
        "vfs_resnet": {"image_size": 320, "readout_topk": 5},
        "crw_resnet": {"image_size": 320, "readout_topk": 3},
        "dino_vit": {"image_size": 320, "readout_topk": 3},
        "siammae_vit": {"image_size": 320, "readout_topk": 5},
    },
    "parts": {
        "vfs_resnet": {"image_size": 560, "long_side": None},
        "crw_resnet": {"image_size": 560, "long_side": None},
        "dino_vit": {"image_size": 560, "long_side": None},
        "siammae_vit": {"image_size": None, "long_side": 880},
    },
}


def propagation_overrides(protocol: str | None, preset: str) -> dict[str, Any]:
    """The LabelPropConfig overrides of ``protocol`` for ``preset`` (none for DAVIS: None)."""
    if protocol is None:
        return {}
    return dict(PROTOCOL_PROPAGATION[protocol][preset])


def stage_settings(protocol: str, preset: str, given: dict[str, Any]) -> dict[str, Any]:
    """The stage fields of ``protocol`` for ``preset``; a value the user set (not None) wins."""
    out = dict(PROTOCOL_STAGE[protocol][preset])
    out.update({k: v for k, v in given.items() if v is not None})
    return out
