"""The probes' labelled data: labels per layout and the deterministic train/test split."""

import numpy as np
import pytest
from PIL import Image

from correlearn.data.sources import DataError, DatasetSpec
from correlearn.eval.probe_data import (
    ProbeDataConfig,
    labelled_images,
    load_probe_image,
    split_labels,
)


def test_split_per_label_temporal_keeps_order_random_is_seeded():
    labels = np.array([0] * 6 + [1] * 4)
    train, test = split_labels(labels, ProbeDataConfig(split="temporal", test_fraction=0.5))
    assert test.tolist() == [3, 4, 5, 8, 9] and train.tolist() == [0, 1, 2, 6, 7]
    cfg = ProbeDataConfig(split="random", test_fraction=0.5, seed=3)
    a, b = split_labels(labels, cfg), split_labels(labels, cfg)
    assert np.array_equal(a[0], b[0]) and len(a[1]) == 5 and not set(a[0]) & set(a[1])
    with pytest.raises(DataError, match="label 2 has 1 image"):
        split_labels(np.array([0, 0, 2]), ProbeDataConfig())


def test_frame_folders_are_labelled_by_sequence_and_unlabelled_layouts_fail(tmp_path):
    for seq, n in (("b-seq", 2), ("a-seq", 3)):
        (tmp_path / seq).mkdir()
        for i in range(n):
            Image.new("RGB", (40, 30)).save(tmp_path / seq / f"{i:05d}.jpg")
    spec = DatasetSpec(name="d", root=str(tmp_path), layout="frame_folders")
    items, labels = labelled_images(spec, tmp_path)
    assert len(items) == 5 and sorted(labels.tolist()) == [0, 0, 0, 1, 1]
    assert {it.key.split("/")[0] for it, y in zip(items, labels, strict=True) if y == 0} == {
        "a-seq"
    }
    flat = DatasetSpec(name="f", root=str(tmp_path / "a-seq"), layout="image_folder")
    with pytest.raises(DataError, match="has no labels to fine-tune on"):
        labelled_images(flat, tmp_path, purpose="to fine-tune on")


def test_probe_image_is_a_normalised_centre_crop(tmp_path):
    Image.new("RGB", (80, 40), (255, 255, 255)).save(tmp_path / "w.png")
    x = load_probe_image(str(tmp_path / "w.png"), 32)
    assert x.shape == (3, 32, 32)
    assert x[0].allclose(x[0, 0, 0].expand(32, 32)) and x[0, 0, 0] > 2  # white, normalised
