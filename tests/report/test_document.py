"""The run report: a self-contained HTML file built from a FlowRun over real artifacts."""

import base64
import io
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from correlearn.records import FlowRun, StageRun
from correlearn.report import SECTION_IDS, publish_report, write_report
from tests.flow_run_fixtures import artifact, byol_run, demo_run

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bin"))
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


def _doc(path: Path) -> _Doc:
    doc = _Doc()
    doc.feed(path.read_text())
    return doc


def test_report_sections_tables_and_embedded_pictures(tmp_path):
    run, _ = byol_run(tmp_path / "artifacts")
    out = write_report(run, tmp_path / "r" / "report.html", {"config": "demo.yaml"})
    text = out.read_text()
    doc = _doc(out)
    assert set(SECTION_IDS) <= set(doc.ids) and "demo-table" not in doc.ids
    assert not doc.external and "<style>" in text
    # Every picture is an embedded PNG: the J&F-vs-steps curve, the loss curves and views of both
    # checkpoints, the contact sheet (downscaled) and the J&F chart.
    assert len(doc.imgs) == 7
    widths = []
    for src in doc.imgs:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1])
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(raw)) as im:
            widths.append(im.width)
    assert max(widths) == 960  # the 1600 px contact sheet, downscaled
    cells = doc.cells
    # Stage table: the call's label, cache state, seconds from the manifest, key.
    assert "eval_label_propagation[random-s0]" in cells and "init_random[resnet18, seed 0]" in cells
    assert "120.0" in cells and "cache hit" in cells and "b" * 16 in cells
    # J&F per sequence, one column per evaluated checkpoint (the call's subject), baselines last.
    i = cells.index("sequence")
    assert cells[i : i + 6] == [
        "sequence",
        "byol",
        "byol@30",
        "random-s0",
        "random-s1",
        "byol-bn-init",
    ]
    i = cells.index("bear")
    assert cells[i : i + 6] == ["bear", "0.610", "0.410", "0.310", "0.350", "0.450"]
    assert abs(float(cells[cells.index("J&F mean") + 1]) - 0.565) < 1e-9


def test_demo_report_has_the_demo_table_and_latest_copy(tmp_path):
    run, _ = demo_run(tmp_path / "artifacts")
    path = publish_report(run, tmp_path / "reports", {"status": "completed"})
    assert path.name.startswith("demo-") and path.suffix == ".html"
    latest = tmp_path / "reports" / "latest-demo.html"
    assert latest.read_text() == path.read_text()
    doc = _doc(path)
    assert doc.ids.index("demo-table") < doc.ids.index("stages")
    # demo_table's row: flow, checkpoint, steps, held-out pretext (none here), J&F, J, F, random
    # init per seed, seed spread, BN-calibrated init, gain over the best baseline, k-NN (random).
    i = doc.cells.index("0.565")
    assert doc.cells[i - 4 : i + 8] == [
        "byol",
        "byol",
        "60",
        "-",
        "0.565",
        "0.515",
        "0.615",
        "0.265 / 0.295",
        "0.030",
        "0.375",
        "+0.190",
        "41.2 (12.5)",
    ]
    # One J&F table per method flow.
    assert doc.cells.count("sequence") == 2


def test_report_of_a_flow_without_training_or_evaluation(tmp_path):
    shards = artifact(tmp_path, "image_shards", "f" * 16, 2.0)
    run = FlowRun("data", [StageRun(**shards, cache_hit=False, label="image_shards")])
    doc = _doc(write_report(run, tmp_path / "data.html"))
    assert set(SECTION_IDS) <= set(doc.ids)
    assert doc.imgs == [] and "image_shards" in doc.cells and "computed" in doc.cells


@pytest.mark.skipif(find_browser() is None, reason="no Chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    run, _ = byol_run(tmp_path / "artifacts")
    report = write_report(run, tmp_path / "report.html")
    problems = check(report, find_browser(), tmp_path / "shot.png", min_images=7, timeout=120)
    assert problems == []
