"""A user's DAVIS-layout folder: every defect is one DataError naming the file, before any work."""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from correlearn.data.sources import DataError
from correlearn.eval.davis_folder import check_davis
from correlearn.eval.label_propagation import load_davis_sequence

MINI = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


@pytest.fixture
def root(tmp_path) -> Path:
    """bear with 4 frames and their masks."""
    for part, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        dst = tmp_path / part / "480p" / "bear"
        dst.mkdir(parents=True)
        for f in sorted((MINI / part / "480p" / "bear").glob(f"*.{ext}"))[:4]:
            shutil.copy(f, dst / f.name)
    return tmp_path


def _frames(root):
    return sorted((root / "JPEGImages" / "480p" / "bear").iterdir())


def _masks(root):
    return sorted((root / "Annotations" / "480p" / "bear").iterdir())


def test_the_real_folder_passes_and_loads(root):
    (seq,) = check_davis(root)
    assert seq.name == "bear" and len(seq.frames) == 4 and seq.stray == []
    frames, masks, names = load_davis_sequence(root, "bear")
    assert len(frames) == 4 and names == [m.name for m in _masks(root)]


def test_extensions_people_use_are_read_and_a_stray_file_is_named(root):
    frames = _frames(root)
    frames[1].rename(frames[1].with_suffix(".JPG"))
    frames[2].rename(frames[2].with_suffix(".jpeg"))
    Image.open(frames[3]).save(frames[3].with_suffix(".png"))  # a PNG frame among JPEGs
    frames[3].unlink()
    (frames[0].parent / "Thumbs.db").write_bytes(b"x")
    (seq,) = check_davis(root)
    assert [p.suffix for p in seq.frames] == [".jpg", ".JPG", ".jpeg", ".png"]
    assert [p.name for p in seq.stray] == ["Thumbs.db"]
    loaded, _, names = load_davis_sequence(root, "bear")
    assert len(loaded) == 4 and names == [m.name for m in _masks(root)]


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _rgb(p: Path) -> None:
    Image.open(p).convert("RGB").save(p)


def _resize(p: Path) -> None:
    im = Image.open(p)
    im.resize((im.width // 2, im.height // 2), Image.NEAREST).save(p)


def _empty_object(p: Path) -> None:
    im = Image.open(p)
    out = Image.fromarray(np.zeros((im.height, im.width), np.uint8), mode="L")
    out.save(p)


def _antialias(p: Path) -> None:
    arr = (np.asarray(Image.open(p)) > 0).astype(np.uint8) * 255
    Image.fromarray(cv2.GaussianBlur(arr, (9, 9), 3)).save(p)  # soft edges: many grey values


CASES = {
    "missing Annotations": (lambda r: shutil.rmtree(r / "Annotations"), "Annotations", "missing"),
    "missing first mask": (lambda r: _masks(r)[0].unlink(), "00000.png", "missing"),
    "truncated frame": (lambda r: _truncate(_frames(r)[2]), "00002.jpg", "truncated frame"),
    "zero-byte frame": (lambda r: _frames(r)[1].write_bytes(b""), "00001.jpg", "empty frame"),
    "corrupt mask": (lambda r: _masks(r)[1].write_bytes(b"garbage" * 20), "00001.png", "mask"),
    "RGB mask": (lambda r: _rgb(_masks(r)[0]), "00000.png", "mode RGB"),
    "mask of another size": (lambda r: _resize(_masks(r)[2]), "00002.png", "its frame is"),
    "frame of another size": (lambda r: _resize(_frames(r)[3]), "00003.jpg", "one frame size"),
    "empty first mask": (lambda r: _empty_object(_masks(r)[0]), "00000.png", "no object"),
    "antialiased mask": (lambda r: _antialias(_masks(r)[0]), "00000.png", "object ids"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_defect_is_one_error_naming_the_file(root, case):
    damage, name, problem = CASES[case]
    damage(root)
    with pytest.raises(DataError) as err:
        check_davis(root)
    msg = str(err.value)
    assert name in msg and problem in msg, msg
    assert "\n" not in msg


def test_max_frames_checks_only_what_is_read(root):
    _truncate(_frames(root)[3])
    assert len(check_davis(root, max_frames=3)[0].frames) == 3
    with pytest.raises(DataError, match="truncated"):
        check_davis(root)


def test_an_unknown_sequence_or_an_empty_root_is_named(root, tmp_path_factory):
    with pytest.raises(DataError, match=r"no sequence folder \['cat'\]"):
        check_davis(root, ["cat"])
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DataError, match="JPEGImages/480p: missing; expected a DAVIS folder"):
        check_davis(empty)
