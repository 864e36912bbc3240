"""Every file an evaluation reads enters its key: changed ground truth is never a stale cache hit."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES
from tests.eval.fixtures_tracking import make_otb

MINI = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


def _key(pipe: Pipeline, stage: str) -> dict:
    return STAGES[stage].resolve(pipe.section(stage), pipe)


def _pipeline(tmp_path, datasets: str, sections: str = "") -> Pipeline:
    ws = get_workspace(tmp_path / "home")
    (tmp_path / "cfg.yaml").write_text(f"datasets:\n{datasets}\n{sections}")
    return Pipeline(tmp_path / "cfg.yaml", STAGES, ws)


@pytest.fixture
def davis(tmp_path):
    for part in ("JPEGImages", "Annotations"):
        shutil.copytree(MINI / part / "480p" / "bear", tmp_path / "d" / part / "480p" / "bear")
    return tmp_path / "d"


def test_label_propagation_keys_on_the_masks(tmp_path, davis):
    pipe = _pipeline(
        tmp_path,
        f"  davis: {{root: {davis}, layout: davis}}",
        "eval_label_propagation: {dataset: davis}",
    )
    before = _key(pipe, "eval_label_propagation")
    mask = sorted((davis / "Annotations" / "480p" / "bear").iterdir())[0]
    arr = np.asarray(Image.open(mask)).copy()
    arr[:, :] = np.roll(arr, 3, axis=0)  # the object shifted by 3 rows
    Image.fromarray(arr).save(mask)
    after = _key(pipe, "eval_label_propagation")
    assert after["source"]["fingerprint"] != before["source"]["fingerprint"]


def test_tracking_keys_on_the_boxes(tmp_path):
    make_otb(tmp_path / "otb", seqs=("bear",), n=3, size=(60, 100))
    pipe = _pipeline(
        tmp_path,
        f"  otb: {{root: {tmp_path / 'otb'}, layout: otb}}",
        "eval_tracking: {head: none}",
    )
    before = _key(pipe, "eval_tracking")
    gt = tmp_path / "otb" / "bear" / "groundtruth_rect.txt"
    text = gt.read_text()
    digit = next(c for c in text if c in "12345678")
    gt.write_text(text.replace(digit, str(int(digit) + 1), 1))  # one box moved, same file size
    after = _key(pipe, "eval_tracking")
    assert after["source"]["fingerprint"] != before["source"]["fingerprint"]


def test_the_official_val_list_chooses_the_sequences_and_an_explicit_list_wins(tmp_path):
    for seq in ("bear", "surf"):
        for part in ("JPEGImages", "Annotations"):
            shutil.copytree(MINI / part / "480p" / seq, tmp_path / "d" / part / "480p" / seq)
    lists = tmp_path / "d" / "ImageSets" / "2017"
    lists.mkdir(parents=True)
    (lists / "val.txt").write_text("surf\n")
    section = "eval_label_propagation: {dataset: davis}"
    pipe = _pipeline(tmp_path, f"  davis: {{root: {tmp_path / 'd'}, layout: davis}}", section)
    src = _key(pipe, "eval_label_propagation")["source"]
    assert src["dataset"]["sequences"] == ["surf"]
    assert src["sequence_list"] == "ImageSets/2017/val.txt"
    explicit = f"  davis: {{root: {tmp_path / 'd'}, layout: davis, sequences: [bear]}}"
    src = _key(_pipeline(tmp_path, explicit, section), "eval_label_propagation")["source"]
    assert src["dataset"]["sequences"] == ["bear"] and "sequence_list" not in src
