"""A dataset's fingerprint follows the content of every file its consumers read."""

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from correlearn.data import fingerprint as fp
from correlearn.data.sources import DatasetSpec

MINI = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


def _copy(tmp_path, seq="bear", n=4) -> DatasetSpec:
    for part, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        dst = tmp_path / "d" / part / "480p" / seq
        dst.mkdir(parents=True)
        for f in sorted((MINI / part / "480p" / seq).glob(f"*.{ext}"))[:n]:
            shutil.copy(f, dst / f.name)
    return DatasetSpec(name="d", root=str(tmp_path / "d"), layout="davis")


def _rewrite_same_size(path: Path) -> None:
    """Shift a mask by one pixel and pad the PNG back to its old size: same size, new content."""
    arr = np.roll(np.asarray(Image.open(path)), 1, axis=1)
    old = path.stat().st_size
    Image.fromarray(arr).save(path)
    data = path.read_bytes()
    if len(data) > old:  # recompress harder until it fits, then pad after IEND (PNG ignores it)
        Image.fromarray(arr).save(path, optimize=True, compress_level=9)
        data = path.read_bytes()
    assert len(data) <= old, "the shifted mask does not fit its old size"
    path.write_bytes(data + b"\0" * (old - len(data)))


def test_a_mask_shifted_in_place_with_its_size_kept_is_a_new_key(tmp_path):
    spec = _copy(tmp_path)
    before = fp.fingerprint(spec, tmp_path, videos=True)
    mask = sorted((tmp_path / "d" / "Annotations" / "480p" / "bear").iterdir())[1]
    size = mask.stat().st_size
    _rewrite_same_size(mask)
    assert mask.stat().st_size == size
    after = fp.fingerprint(spec, tmp_path, videos=True)
    assert after["fingerprint"] != before["fingerprint"]
    assert after["files"] == before["files"] == 8  # 4 frames + 4 masks


def test_images_of_a_davis_folder_do_not_key_on_its_masks(tmp_path):
    """``eval knn`` reads frames only: a changed mask does not invalidate its features."""
    spec = _copy(tmp_path)
    before = fp.fingerprint(spec, tmp_path, videos=False)
    mask = sorted((tmp_path / "d" / "Annotations" / "480p" / "bear").iterdir())[0]
    mask.write_bytes(mask.read_bytes() + b"\0")
    assert fp.fingerprint(spec, tmp_path, videos=False) == before


def test_a_large_file_is_sampled_and_a_change_in_a_sample_is_seen(tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "FULL_HASH_BYTES", 1000)
    monkeypatch.setattr(fp, "_SAMPLE", 100)
    f = tmp_path / "v.mp4"
    data = bytearray(range(256)) * 20  # 5120 bytes: sampled
    f.write_bytes(bytes(data))
    first = fp.file_digest(f)
    data[-1] ^= 0xFF  # the last sample covers the end
    f.write_bytes(bytes(data))
    assert fp.file_digest(f) != first
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    assert fp.file_digest(f) == first
