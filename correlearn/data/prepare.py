"""Validate a source image and make the JPEG bytes a shard stores; WebDataset-safe sample keys.

A JPEG within the size cap is stored untouched (pixel-exact round trip); a larger one is
downscaled (bicubic, antialiased) and any other format converted to RGB, both re-encoded at
quality :data:`JPEG_QUALITY`. Every input is fully decoded once here, so a corrupt or truncated
file is caught when the shards are written, not in the middle of training.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFile

JPEG_QUALITY = 95


class BadInput(Exception):
    """An input file that cannot be used; the message is the reason (it is skipped, listed)."""


def sanitize_keys(keys: Sequence[str]) -> list[str]:
    """Make item keys safe as WebDataset keys, disambiguating collisions with ``-<n>`` suffixes.

    WebDataset splits member names at the first dot: ``/`` becomes ``__`` and anything outside
    ``[A-Za-z0-9_-]`` becomes ``_``.
    """
    out, seen = [], set()
    for key in keys:
        base = re.sub(r"[^A-Za-z0-9_\-]", "_", key.replace("/", "__")) or "_"
        cand, n = base, 1
        while cand in seen:
            cand, n = f"{base}-{n}", n + 1
        seen.add(cand)
        out.append(cand)
    return out


def open_checked(data: bytes) -> Image.Image:
    """Fully decode ``data`` once, so a corrupt or truncated file is caught at write time.

    Raises:
        BadInput: empty, corrupt or truncated data.
    """
    if not data:
        raise BadInput("empty file (0 bytes)")
    # Another library may have switched on truncated-image loading globally; we must not.
    old, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, ...)
        raise BadInput(f"cannot decode image: {exc}") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old
    return im


def scaled_size(w: int, h: int, max_short_side: int | None) -> tuple[int, int] | None:
    """Target ``(w, h)`` when the short side exceeds the cap (never upscales), else None."""
    if max_short_side is None or min(w, h) <= max_short_side:
        return None
    s = max_short_side / min(w, h)
    if w <= h:
        return max_short_side, max(1, round(h * s))
    return max(1, round(w * s)), max_short_side


def _capped_rgb(im: Image.Image, max_short_side: int | None) -> Image.Image:
    rgb = im.convert("RGB")
    target = scaled_size(rgb.width, rgb.height, max_short_side)
    return rgb if target is None else rgb.resize(target, Image.Resampling.BICUBIC)


def prepare_jpeg(data: bytes, max_short_side: int | None = None) -> tuple[bytes, int, int, bool]:
    """Validate an encoded image and return the JPEG bytes a shard stores.

    Returns:
        ``(jpeg_bytes, width, height, reencoded)``.

    Raises:
        BadInput: empty, corrupt or truncated data.
    """
    im = open_checked(data)
    if im.format == "JPEG" and scaled_size(im.width, im.height, max_short_side) is None:
        return data, im.width, im.height, False
    rgb = _capped_rgb(im, max_short_side)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue(), rgb.width, rgb.height, True


def prepare_rgb(data: bytes, max_short_side: int | None = None) -> np.ndarray:
    """Validate an encoded image and return its pixels within the size cap, uint8 ``(H, W, 3)``.

    The same decode and resize as :func:`prepare_jpeg`, without the JPEG step (for frames that
    are re-encoded as video).

    Raises:
        BadInput: empty, corrupt or truncated data.
    """
    return np.asarray(_capped_rgb(open_checked(data), max_short_side))


def jpeg_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the header alone (the bytes were already validated)."""
    with Image.open(io.BytesIO(data)) as im:
        return im.size
