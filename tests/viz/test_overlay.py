import numpy as np
import pytest
from PIL import Image

from correlearn.viz.overlay import contact_sheet, overlay_mask


def test_overlay_mask_colours_objects_only():
    frame = np.full((20, 30, 3), 100, dtype=np.uint8)
    mask = np.zeros((20, 30), dtype=np.int64)
    mask[5:15, 5:15] = 1
    out = overlay_mask(frame, mask, alpha=0.5, contour=False)
    assert out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])  # background untouched
    np.testing.assert_array_equal(out[10, 10], [114, 50, 50])  # 0.5*100 + 0.5*(128, 0, 0)
    np.testing.assert_array_equal(overlay_mask(frame, mask, alpha=0.0, contour=False), frame)
    with_contour = overlay_mask(frame, mask, alpha=0.0)
    np.testing.assert_array_equal(with_contour[5, 5], [128, 0, 0])
    with pytest.raises(ValueError):
        overlay_mask(frame, mask[:10])


def test_contact_sheet(tmp_path):
    frames = [np.full((40, 60, 3), 10 * t, dtype=np.uint8) for t in range(8)]
    masks = [np.zeros((40, 60), dtype=np.int64) for _ in range(8)]
    path = tmp_path / "sheet.png"
    sheet = contact_sheet(frames, masks, masks, n=4, thumb_height=20, path=path)
    assert sheet.shape == (40, 4 * 30, 3)
    with Image.open(path) as im:
        assert im.size == (120, 40)
    assert contact_sheet(frames, masks, n=3, thumb_height=20).shape == (20, 90, 3)
