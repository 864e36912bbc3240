"""OTB readers and metrics on hand-worked boxes (the got10k toolkit's definitions)."""

import numpy as np
import pytest

from correlearn.data.sources import DataError
from correlearn.eval import otb
from tests.eval.fixtures_tracking import make_got10k, make_otb

GT = np.array([[0, 0, 10, 10]] * 3, dtype=float)


def test_iou_and_centre_error_by_hand():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    b = np.array([[5, 0, 10, 10], [3, 4, 10, 10]], dtype=float)
    # 50 / 150; 7 x 6 = 42 over 200 - 42.
    assert otb.rect_iou(a, b) == pytest.approx([1 / 3, 42 / 158])
    assert otb.center_error(a, b) == pytest.approx([5.0, 5.0])


def test_curves_by_hand_with_the_first_frame_reset_to_the_ground_truth():
    pred = np.array([[50, 50, 4, 4], [3, 4, 10, 10], [30, 0, 10, 10]], dtype=float)
    success, precision = otb.curves(pred, GT)
    # Errors 0, 5, 30 px: two of three within 20 px, all three within 30, one within 4.
    assert precision[20] == pytest.approx(2 / 3) and precision[30] == 1.0
    assert precision[4] == pytest.approx(1 / 3)
    # IoUs 1, 42/158 = 0.266, 0: 2/3 above t = 0 .. 0.25 (6 bins), 1/3 up to 0.95, 0 at t = 1.
    assert success[0] == pytest.approx(2 / 3) and success[5] == pytest.approx(2 / 3)
    assert success[6] == pytest.approx(1 / 3) and success[20] == 0.0
    rep = otb.otb_report({"a": (pred, GT)})
    assert rep["success"] == pytest.approx(100 * (6 * 2 / 3 + 14 / 3) / 21)
    assert rep["precision"] == pytest.approx(200 / 3)


def test_report_means_the_sequence_curves():
    perfect = (GT.copy(), GT)
    lost = (np.array([[0, 0, 10, 10], [100, 100, 10, 10], [100, 100, 10, 10]], float), GT)
    rep = otb.otb_report({"perfect": perfect, "lost": lost})
    # IoU 1 passes every threshold but t = 1 (the toolkit's "greater than").
    assert rep["per_sequence"]["perfect"]["success"] == pytest.approx(100 * 20 / 21)
    assert rep["per_sequence"]["perfect"]["precision"] == 100.0
    assert rep["per_sequence"]["lost"]["precision"] == pytest.approx(100 / 3)
    assert rep["precision"] == pytest.approx((100 + 100 / 3) / 2)
    assert len(rep["success_curve"]) == 21 and len(rep["precision_curve"]) == 51


@pytest.mark.parametrize(
    ("text", "rows"),
    [("1,2,3,4\n5,6,7,8\n", 2), ("1\t2\t3\t4\n", 1), ("1 2 3 4\n\n5  6 7 8\n", 2)],
)
def test_boxes_parse_with_any_separator(text, rows):
    boxes = otb.parse_boxes(text, "g.txt")
    assert boxes.shape == (rows, 4) and boxes[0].tolist() == [1, 2, 3, 4]


def test_a_bad_box_file_names_itself():
    with pytest.raises(DataError, match="g.txt: 3 numbers per line"):
        otb.parse_boxes("1,2,3\n", "g.txt")


def test_otb_reader_on_the_davis_fixture(tmp_path):
    truth = make_otb(tmp_path, n=4, size=(60, 100))
    seqs = otb.read_otb(tmp_path)
    assert [s.name for s in seqs] == sorted(truth)
    for s in seqs:
        assert len(s.frames) == 4 and np.array_equal(s.boxes, truth[s.name])
    assert [s.name for s in otb.read_otb(tmp_path, ["motorbike"])] == ["motorbike"]
    with pytest.raises(DataError, match="unknown sequence"):
        otb.read_otb(tmp_path, ["Basketball"])


def test_otb_two_targets_empty_files_and_frame_ranges(tmp_path):
    truth = make_otb(tmp_path, seqs=("bear",), n=4, size=(60, 100))
    seq = tmp_path / "bear"
    (seq / "groundtruth_rect.txt").rename(seq / "groundtruth_rect.1.txt")
    (seq / "groundtruth_rect.2.txt").write_text("1,1,5,5\n" * 4)
    (tmp_path / "bear" / "groundtruth_rect.3.txt").write_text("\n")  # empty: skipped
    names = [s.name for s in otb.read_otb(tmp_path)]
    assert names == ["bear.1", "bear.2"]
    # David is annotated on frames 300..770 only: the reader cuts img/ the same way.
    david = tmp_path / "David" / "img"
    david.mkdir(parents=True)
    for t in range(1, 772):
        (david / f"{t:04d}.jpg").write_bytes(b"")
    (tmp_path / "David" / "groundtruth_rect.txt").write_text("1,1,5,5\n" * 471)
    d = otb.read_otb(tmp_path, ["David"])[0]
    assert d.frames[0].name == "0300.jpg" and d.frames[-1].name == "0770.jpg"
    (seq / "groundtruth_rect.2.txt").write_text("1,1,5,5\n" * 3)
    with pytest.raises(DataError, match="3 boxes but 4 frames"):
        otb.read_otb(tmp_path)
    assert truth


def test_got10k_reader_reads_list_boxes_and_cover(tmp_path):
    truth = make_got10k(tmp_path, n=3, size=(60, 100))
    seqs = otb.read_got10k(tmp_path)
    assert [s.name for s in seqs] == ["bear", "motorbike"]
    assert np.allclose(seqs[0].boxes, truth["bear"]) and seqs[0].cover.tolist() == [8, 8, 8]
