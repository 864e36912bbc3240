"""The run report: a self-contained HTML file built from a flow result over real artifacts."""

import base64
import io
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from correlearn.report import publish_report, write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bin"))
from check_report import check, find_browser  # noqa: E402


class _Doc(HTMLParser):
    """Ids, images, external references and the text of every table cell."""

    def __init__(self):
        super().__init__()
        self.ids: list[str] = []
        self.imgs: list[str] = []
        self.external: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False
        self._stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for k in ("src", "href"):
            v = a.get(k) or ""
            if tag in ("img", "script", "link") and v and not v.startswith(("data:", "#")):
                self.external.append(v)
        if tag in ("td", "th"):
            self._in_cell = True
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def _png(path: Path, w: int, h: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(img).save(path)


def _artifact(root: Path, stage: str, key: str, seconds: float, pictures=(), metrics=None, **extra):
    path = root / stage / key
    path.mkdir(parents=True)
    for i, p in enumerate(pictures):
        _png(path / p, 1600 if "sheet" in p else 120, 90, seed=i)
    if metrics is not None:
        (path / "metrics.json").write_text(json.dumps(metrics))
    manifest = {"stage": stage, "key": key, "seconds": seconds, "pictures": list(pictures)}
    manifest.update(extra)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return {"stage": stage, "key": key, "path": str(path)}


def _lp(jf: dict[str, float]) -> dict:
    per = {s: {"J_mean": v - 0.05, "F_mean": v + 0.05, "JF_mean": v} for s, v in jf.items()}
    mean = sum(jf.values()) / len(jf)
    return {"JF_mean": mean, "J_mean": mean - 0.05, "F_mean": mean + 0.05, "per_sequence": per}


def _flow_result(root: Path) -> dict:
    shards = _artifact(root, "image_shards", "a" * 16, 1.5)
    ckpt = _artifact(
        root,
        "pretrain_image",
        "b" * 16,
        120.0,
        ["pictures/loss_curve.png", "pictures/views.png"],
        metadata={"steps": 60, "minutes": 2.0},
    )
    rand = _artifact(root, "init_random", "c" * 16, 0.4)
    lp_b = _artifact(
        root,
        "eval_label_propagation",
        "d" * 16,
        30.0,
        ["pictures/bear_sheet.png"],
        _lp({"bear": 0.61, "surf": 0.52}),
        inputs={"checkpoint": {"stage": "pretrain_image", "key": "b" * 16}},
    )
    lp_mid = _artifact(
        root, "eval_label_propagation", "9" * 16, 25.0, [], _lp({"bear": 0.41, "surf": 0.32})
    )
    lp_r = _artifact(
        root, "eval_label_propagation", "e" * 16, 28.0, [], _lp({"bear": 0.31, "surf": 0.22})
    )
    lp_r1 = _artifact(
        root, "eval_label_propagation", "8" * 16, 28.0, [], _lp({"bear": 0.35, "surf": 0.24})
    )
    stages = [
        {**shards, "cache_hit": True, "label": "image_shards"},
        {**ckpt, "cache_hit": False, "label": "pretrain_image"},
        {**lp_b, "cache_hit": False, "label": "eval_label_propagation[byol]"},
        {**rand, "cache_hit": False, "label": "init_random[resnet18]"},
        {**lp_r, "cache_hit": True, "label": "eval_label_propagation[random]"},
    ]
    record = {
        "name": "byol",
        "stage": "pretrain_image",
        "preset": "vfs_resnet",
        "points": [{"steps": 30, "lp": lp_mid}, {"steps": 60, "lp": lp_b}],
        "baselines": {"random-s0": lp_r, "random-s1": lp_r1},
    }
    return {"flow": "byol", "stages": stages, "evaluations": [record]}


def test_report_sections_tables_and_embedded_pictures(tmp_path):
    result = _flow_result(tmp_path / "artifacts")
    out = write_report(result, tmp_path / "r" / "report.html", {"config": "demo.yaml"})
    text = out.read_text()
    doc = _Doc()
    doc.feed(text)
    for section in ("summary", "stages", "jf", "loss-curves", "pictures"):
        assert section in doc.ids
    assert "demo-table" not in doc.ids
    assert not doc.external and "<style>" in text
    # Every picture is an embedded PNG: J&F-vs-steps curve, loss curve, views, the sheet
    # (downscaled), J&F chart.
    assert len(doc.imgs) == 5
    for src in doc.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    widths = []
    for src in doc.imgs:
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            widths.append(im.width)
    assert max(widths) == 960  # the 1600 px contact sheet, downscaled
    cells = doc.cells
    # Stage table: label, cache state, seconds from the manifest, key.
    assert "eval_label_propagation[random]" in cells and "init_random[resnet18]" in cells
    assert "120.0" in cells and "cache hit" in cells and "b" * 16 in cells
    # J&F per sequence: the checkpoint, then the random baseline, per sequence and mean.
    i = cells.index("bear")
    assert cells[i : i + 3] == ["bear", "0.610", "0.310"]
    assert "byol" in cells and "random" in cells and "J&F mean" in cells
    assert abs(float(cells[cells.index("J&F mean") + 1]) - 0.565) < 1e-9


def test_demo_report_has_the_demo_table_and_latest_copy(tmp_path):
    result = _flow_result(tmp_path / "artifacts")
    demo = {"flow": "demo", "stages": result["stages"], "flows": [result]}
    path = publish_report(demo, tmp_path / "reports", {"status": "completed"})
    assert path.name.startswith("demo-") and path.suffix == ".html"
    latest = tmp_path / "reports" / "latest-demo.html"
    assert latest.read_text() == path.read_text()
    doc = _Doc()
    doc.feed(path.read_text())
    assert "demo-table" in doc.ids
    # demo_table's row: flow, checkpoint, steps, J&F, J, F, random init per seed, seed spread,
    # BN-calibrated init (none here), gain over the best baseline.
    i = doc.cells.index("0.565")
    assert doc.cells[i - 3 : i + 7] == [
        "byol",
        "byol",
        "60",
        "0.565",
        "0.515",
        "0.615",
        "0.265 / 0.295",
        "0.030",
        "-",
        "+0.270",
    ]


def test_report_of_a_flow_without_training_or_evaluation(tmp_path):
    shards = _artifact(tmp_path, "image_shards", "f" * 16, 2.0)
    out = write_report(
        {"flow": "data", "stages": [{**shards, "cache_hit": False, "label": "image_shards"}]},
        tmp_path / "data.html",
    )
    doc = _Doc()
    doc.feed(out.read_text())
    assert {"summary", "stages", "jf", "loss-curves", "pictures"} <= set(doc.ids)
    assert doc.imgs == [] and "image_shards" in doc.cells


@pytest.mark.skipif(find_browser() is None, reason="no Chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    result = _flow_result(tmp_path / "artifacts")
    report = write_report(result, tmp_path / "report.html")
    problems = check(report, find_browser(), tmp_path / "shot.png", min_images=5, timeout=120)
    assert problems == []
