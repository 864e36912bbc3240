"""The SiamFC head's training schedule and its sequence filter."""

import numpy as np
import pytest
from PIL import Image

from correlearn.data.sources import DataError
from correlearn.eval.otb import TrackSequence
from correlearn.eval.siamfc_head_fit import TrainSiamFCHeadConfig, total_steps, usable_sequences


def test_total_steps_is_epochs_of_one_pair_per_sequence_capped_by_max_steps():
    cfg = TrainSiamFCHeadConfig(epochs=3, batch_size=4)
    assert total_steps(cfg, 10) == (6, 2)
    assert total_steps(cfg, 2) == (3, 1)  # fewer sequences than a batch: one step per epoch
    assert total_steps(cfg.model_copy(update={"max_steps": 4}), 10) == (4, 2)


def test_sequences_without_two_valid_frames_are_skipped(tmp_path):
    Image.new("RGB", (200, 200)).save(tmp_path / "f.jpg")
    good = np.array([[50, 50, 40, 40]] * 3, dtype=float)
    tiny = np.array([[50, 50, 5, 5]] * 3, dtype=float)  # below 20 px: no valid frame
    seqs = [
        TrackSequence("good", [tmp_path / "f.jpg"] * 3, good),
        TrackSequence("tiny", [tmp_path / "f.jpg"] * 3, tiny),
    ]
    skipped = []
    usable = usable_sequences(seqs, lambda name, why: skipped.append(name))
    assert [s.name for s, _ in usable] == ["good"] and usable[0][1].tolist() == [0, 1, 2]
    assert skipped == ["tiny"]
    with pytest.raises(DataError, match="no sequence of 1"):
        usable_sequences(seqs[1:], lambda name, why: None)


@pytest.mark.parametrize("channels, scale", [(512, 1e-3), (2048, 1e-5)])
def test_the_head_takes_the_reference_response_scale_of_its_backbone(tmp_path, channels, scale):
    """VFS trains ResNet-50's head with out_scale 1e-5 (its SiamFC README), ResNet-18's with 1e-3."""
    import torch

    from correlearn.eval.siamfc_head_fit import fit_head

    Image.new("RGB", (200, 200)).save(tmp_path / "f.jpg")
    seqs = [TrackSequence("s", [tmp_path / "f.jpg"] * 3, np.array([[50, 50, 40, 40]] * 3, float))]
    usable = usable_sequences(seqs, lambda name, why: None)

    def features(x):
        return torch.ones(x.shape[0], channels, x.shape[-2] // 8, x.shape[-1] // 8)

    cfg = TrainSiamFCHeadConfig(exemplar_size=32, instance_size=64, channels=4, max_steps=1)
    head, _ = fit_head(features, channels, 8, usable, cfg, "cpu")
    assert head.out_scale == scale
    head, _ = fit_head(
        features, channels, 8, usable, cfg.model_copy(update={"out_scale": 0.1}), "cpu"
    )
    assert head.out_scale == 0.1
