"""A file truncated by a killed evaluation never poisons the re-runs, with or without --force."""

import json
import shutil
from pathlib import Path

import pytest

from correlearn.pipeline import Pipeline
from correlearn.workspace import get_workspace
from stages import STAGES

MINI = Path(__file__).resolve().parents[2] / "data" / "davis-mini"


@pytest.fixture
def pipe(tmp_path):
    for part in ("JPEGImages", "Annotations"):
        for seq in ("bear", "surf"):
            dst = tmp_path / "d" / part / "480p" / seq
            dst.mkdir(parents=True)
            for f in sorted((MINI / part / "480p" / seq).iterdir())[:4]:
                shutil.copy(f, dst / f.name)
    (tmp_path / "c.yaml").write_text(
        f"datasets:\n  d: {{root: {tmp_path / 'd'}, layout: davis}}\n"
        "init_random: {backbone: resnet_test}\n"
        "eval_label_propagation: {dataset: d, params: {short_side: 48}}\n"
    )
    return Pipeline(tmp_path / "c.yaml", STAGES, get_workspace(tmp_path / "home"))


def _poison(pipe: Pipeline, key: str) -> Path:
    """What a kill during a PNG write leaves: a partial folder with a truncated mask."""
    partial = pipe.ws.artifacts / "eval_label_propagation" / f".partial-{key}"
    folder = partial / "masks" / "bear"
    folder.mkdir(parents=True)
    for i in range(4):
        (folder / f"{i:05d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    return partial


@pytest.mark.parametrize("force", [False, True])
def test_a_truncated_mask_in_the_partial_folder_is_redone(pipe, force):
    ckpt = {"checkpoint": pipe.run_stage("init_random")}
    first = pipe.run_stage("eval_label_propagation", inputs=ckpt)
    want = json.loads((Path(first.ref.path) / "metrics.json").read_text())
    shutil.rmtree(first.ref.path)  # as if the first run had been killed instead
    _poison(pipe, first.ref.key)
    again = pipe.run_stage("eval_label_propagation", inputs=ckpt, force=force)
    got = json.loads((Path(again.ref.path) / "metrics.json").read_text())
    assert got["JF_mean"] == want["JF_mean"] and got["per_sequence"] == want["per_sequence"]
