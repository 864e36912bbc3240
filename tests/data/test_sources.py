import shutil

import pytest

from correlearn.data.sources import DataError, DatasetSpec, list_classes, list_images, list_videos


def _copy_frames(davis_root, dst, seq="bear", n=3):
    dst.mkdir(parents=True, exist_ok=True)
    src = sorted((davis_root / "JPEGImages" / "480p" / seq).iterdir())[:n]
    for p in src:
        shutil.copy(p, dst / p.name)
    return [dst / p.name for p in src]


def test_davis_images_every_kth_frame(davis_root):
    spec = DatasetSpec(
        name="d", root=str(davis_root), layout="davis", sequences=["bear"], frame_step=10
    )
    items = list_images(spec)
    assert [it.key for it in items[:3]] == ["bear/00000", "bear/00010", "bear/00020"]
    assert len(items) == 9  # bear has 82 frames: 0, 10, ..., 80
    assert all(it.label == -1 and it.source == "d" for it in items)
    assert len(list_images(spec.model_copy(update={"max_items": 4}))) == 4


def test_davis_videos_fps_and_masks(davis_root):
    spec = DatasetSpec(name="d", root=str(davis_root), layout="davis", sequences=["boat", "bear"])
    videos = list_videos(spec)
    assert [v.key for v in videos] == ["bear", "boat"]
    assert videos[0].fps == 24.0 and len(videos[0].frames) == 82
    assert videos[0].masks[5].endswith("Annotations/480p/bear/00005.png")
    strided = list_videos(spec.model_copy(update={"frame_step": 2}))
    assert strided[0].fps == 12.0 and len(strided[0].frames) == 41


def test_class_folders_labels_and_relative_root(davis_root, tmp_path):
    for cls in ["zebra", "apple"]:
        _copy_frames(davis_root, tmp_path / "ds" / cls / "sub", n=2)
    (tmp_path / "ds" / "empty").mkdir()
    spec = DatasetSpec(name="c", root="ds", layout="class_folders")
    items = list_images(spec, base=tmp_path)
    assert list_classes(spec, base=tmp_path) == ["apple", "zebra"]
    assert [(it.key, it.label) for it in items] == [
        ("apple/sub/00000", 0),
        ("apple/sub/00001", 0),
        ("zebra/sub/00000", 1),
        ("zebra/sub/00001", 1),
    ]
    only = list_images(spec.model_copy(update={"sequences": ["zebra"]}), base=tmp_path)
    assert {it.label for it in only} == {1}


def test_image_folder_and_frame_folders(davis_root, tmp_path):
    _copy_frames(davis_root, tmp_path / "imgs" / "a", n=2)
    _copy_frames(davis_root, tmp_path / "imgs", n=1)
    keys = [
        it.key
        for it in list_images(
            DatasetSpec(name="i", root=str(tmp_path / "imgs"), layout="image_folder")
        )
    ]
    assert keys == ["00000", "a/00000", "a/00001"]
    spec = DatasetSpec(name="f", root=str(tmp_path / "imgs"), layout="frame_folders")
    videos = list_videos(spec)
    assert [(v.key, len(v.frames), v.fps) for v in videos] == [("a", 2, 30.0)]


def test_missing_root_names_the_path(tmp_path):
    spec = DatasetSpec(name="x", root=str(tmp_path / "nowhere"), layout="image_folder")
    with pytest.raises(DataError, match="nowhere"):
        list_images(spec)


def test_empty_dataset_names_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=str(tmp_path / "empty")):
        list_images(DatasetSpec(name="x", root=str(tmp_path / "empty"), layout="image_folder"))
    with pytest.raises(DataError, match="empty"):
        list_videos(DatasetSpec(name="x", root=str(tmp_path / "empty"), layout="video_files"))


def test_unknown_sequence_and_wrong_layout(davis_root):
    spec = DatasetSpec(name="d", root=str(davis_root), layout="davis", sequences=["nope"])
    with pytest.raises(DataError, match="nope"):
        list_videos(spec)
    with pytest.raises(DataError, match="list_videos"):
        list_images(DatasetSpec(name="v", root=str(davis_root), layout="video_files"))


def test_spec_is_strict():
    with pytest.raises(ValueError):
        DatasetSpec(name="x", root=".", layout="image_folder", colour="red")
    with pytest.raises(ValueError):
        DatasetSpec(name="x", root=".", layout="image_folder", frame_step=0)


def test_two_files_with_one_key_are_refused_naming_both(davis_root, tmp_path):
    # issue 11 item 4: x.jpg and x.png (or x.JPG) both became key "x" and merged downstream.
    src = sorted((davis_root / "JPEGImages" / "480p" / "bear").iterdir())[0]
    root = tmp_path / "imgs"
    root.mkdir()
    shutil.copy(src, root / "x.jpg")
    shutil.copy(src, root / "x.JPG")
    shutil.copy(src, root / "y.jpg")
    spec = DatasetSpec(name="d", root=str(root), layout="image_folder")
    with pytest.raises(DataError, match=r"x\.JPG and .*x\.jpg share the item key 'x'"):
        list_images(spec)
