"""Decode a JPEG at reduced size when the crop it feeds is smaller than the source.

JPEG decode is the ceiling of the CPU training data path. libjpeg(-turbo) can run its inverse DCT
at 1/2, 1/4 or 1/8 scale ("DCT scaling", exposed by OpenCV as ``IMREAD_REDUCED_COLOR_{2,4,8}``
and by PIL as ``Image.draft``), which costs a fraction of a full decode. For a random-resized crop
the crop box is drawn first from the header's size with exactly the draws
:func:`~correlearn.data.augment.random_resized_crop` makes on a decoded image, so the random stream
is unchanged; then the largest scale ``s`` keeps the crop at least as large as the output at every
side (the resize only ever shrinks, as it does at full size), the image is decoded at ``1/s``, and
the box is cut at its exact coordinates in the reduced image.

Geometry: a DCT-scaled decode maps source pixel edges ``x`` to ``x / s`` (output pixel ``i``
covers source pixels ``[i s, (i + 1) s)``), so the box ``(top, left, h, w)`` becomes the
fractional box ``(top / s, left / s, h / s, w / s)``. Rounding it to integers would move the crop by
up to ``s / 2`` source pixels; instead it is resampled at its exact fractional position
(:func:`crop_resize_exact`, bilinear: the DCT scaling already was a box filter of width ``s`` and
the residual shrink is below 2x; ``torchvision.ops.roi_align`` would add an antialias filter but
cost more than the decode it saves). At ``s = 1`` the crop is the unchanged ``resized_crop`` path,
bit for bit. Pixel values differ from the full-size path by the resampling filters (a few grey
levels); positions do not (``tests/data/test_decode.py``).

``max_scale=1`` switches it off. Not JPEG (PNG, ...): always full size.

:class:`EncodedImage` is what ``ShardedImages(root, decode="lazy")`` returns: the stored bytes,
their size from the header, and ``random_resized_crop`` with that reduced decode. Several views of
one image (BYOL's two) share its decodes: a view reuses the full-size decode when an earlier view
made it (the reference path), else the decode at its own scale.

Also here: the full-size decode every reader uses (:func:`decode_image`, OpenCV/libjpeg-turbo, EXIF
orientation ignored as PIL and torchvision's loader do), and :func:`decode_on_device`, one batched
call of ``torchvision.io.decode_jpeg`` on the training device (nvJPEG on CUDA), behind BYOL's
``method.decode: device``.
"""

from __future__ import annotations

import io
import warnings
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

from correlearn.data.augment import rrc_params

Decode = Literal["numpy", "torch", "bytes", "lazy"]
SCALES = (1, 2, 4, 8)
_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip


def decode_image(data: bytes) -> np.ndarray:
    """Decode JPEG/PNG bytes to a uint8 RGB array ``(H, W, 3)``; ValueError when undecodable."""
    flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if arr is None:
        raise ValueError(f"cannot decode image ({len(data)} bytes)")
    return arr


def as_output(arr: np.ndarray, decode: Decode) -> Any:
    """A decoded ``(H, W, 3)`` array as the reader's output type (``"torch"``: ``(3, H, W)``)."""
    # (H, W, 3) -> (3, H, W) without a copy; default_collate stacks it.
    return torch.from_numpy(arr).permute(2, 0, 1) if decode == "torch" else arr


def is_jpeg(data: bytes) -> bool:
    """Whether ``data`` starts with the JPEG SOI marker."""
    return data[:2] == b"\xff\xd8"


def image_size(data: bytes) -> tuple[int, int]:
    """``(H, W)`` of encoded image bytes from the header alone (PIL opens lazily)."""
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    return h, w


def dct_scale(box_hw: tuple[int, int], out_hw: tuple[int, int], max_scale: int = 8) -> int:
    """The largest DCT scale that keeps a crop at least as large as its output on both sides.

    Args:
        box_hw: crop size ``(h, w)`` in source pixels.
        out_hw: output size ``(H_out, W_out)``.
        max_scale: largest scale allowed (1 disables reduced decoding).

    Returns:
        ``s`` in (1, 2, 4, 8) with ``h / s >= H_out`` and ``w / s >= W_out`` (1 when none is).
    """
    best = 1
    for s in SCALES:
        if s <= max_scale and box_hw[0] / s >= out_hw[0] and box_hw[1] / s >= out_hw[1]:
            best = s
    return best


def decode_scaled(data: bytes, scale: int) -> np.ndarray:
    """JPEG bytes -> uint8 RGB ``(ceil(H / s), ceil(W / s), 3)`` by DCT scaling (libjpeg-turbo).

    Raises:
        ValueError: the bytes do not decode.
    """
    # The REDUCED flags include IMREAD_COLOR (BGR), which OpenCV refuses next to IMREAD_COLOR_RGB.
    flags = (_REDUCED[scale] & ~cv2.IMREAD_COLOR) | cv2.IMREAD_COLOR_RGB
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None:
        raise ValueError(f"cannot decode image ({len(data)} bytes) at 1/{scale}")
    return arr


def crop_resize_exact(
    img: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]
) -> np.ndarray:
    """Resample a fractional box of ``img`` to ``size`` at exact positions (bilinear).

    Output pixel ``(v, u)`` samples the source at the continuous point ``(top + (v + 0.5) h /
    H_out, left + (u + 0.5) w / W_out)``, the same point torchvision's ``resized_crop`` samples
    for an integer box. Used after a DCT-scaled decode, where the residual shrink is below 2x, so
    no further antialias filter is applied (the DCT scaling was the box filter).

    Args:
        img: (H, W, 3) uint8.
        box: ``(top, left, h, w)`` in continuous pixel-edge coordinates (may be fractional).
        size: output ``(H_out, W_out)``.

    Returns:
        (H_out, W_out, 3) uint8.
    """
    top, left, h, w = box
    sy, sx = h / size[0], w / size[1]
    # OpenCV puts pixel centres at integer coordinates: edge coordinate x is centre x - 0.5.
    m = np.array([[sx, 0.0, left + 0.5 * sx - 0.5], [0.0, sy, top + 0.5 * sy - 0.5]])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(img, m, (size[1], size[0]), flags=flags, borderMode=cv2.BORDER_REPLICATE)


class EncodedImage:
    """Stored image bytes that decode only as much as each crop of them needs.

    Args:
        data: encoded image bytes (JPEG gets the reduced decode; anything else full size).
        max_scale: largest DCT scale (1: always full size, the reference behaviour).

    Attributes:
        data: the bytes.
        shape: ``(H, W, 3)`` from the header (no decode).
    """

    def __init__(self, data: bytes, max_scale: int = 8):
        self.data = data
        self.shape = (*image_size(data), 3)
        self.max_scale = max_scale if is_jpeg(data) else 1
        self._decoded: dict[int, np.ndarray] = {}

    def decode(self) -> np.ndarray:
        """The full-size image, uint8 ``(H, W, 3)`` (cached)."""
        if 1 not in self._decoded:
            self._decoded[1] = decode_image(self.data)
        return self._decoded[1]

    def random_resized_crop(
        self,
        rng: np.random.Generator,
        size: int | tuple[int, int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> tuple[torch.Tensor, int]:
        """Random-resized crop with the draws of ``augment.random_resized_crop`` on the decoded image.

        Returns:
            The crop, (3, H_out, W_out) uint8, and the DCT scale used (1: the reference path).
        """
        out_hw = (size, size) if isinstance(size, int) else tuple(size)
        top, left, h, w = rrc_params(rng, self.shape[0], self.shape[1], scale, ratio)
        s = dct_scale((h, w), out_hw, self.max_scale)
        if s == 1 or 1 in self._decoded:
            img = torch.from_numpy(self.decode()).permute(2, 0, 1)
            crop = F.resized_crop(img, top, left, h, w, list(out_hw),
                                  interpolation=InterpolationMode.BILINEAR, antialias=True)  # fmt: skip
            return crop, 1
        if s not in self._decoded:
            self._decoded[s] = decode_scaled(self.data, s)
        small = crop_resize_exact(self._decoded[s], (top / s, left / s, h / s, w / s), out_hw)
        return torch.from_numpy(small).permute(2, 0, 1), s


def decode_random_resized_crop(
    data: bytes,
    rng: np.random.Generator,
    size: int | tuple[int, int],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    max_scale: int = 8,
) -> tuple[torch.Tensor, int]:
    """Decode + random-resized crop in one step, decoding only as much as the crop needs.

    Draws from ``rng`` exactly what ``random_resized_crop(decode_image(data), rng, size, scale,
    ratio)`` draws, so the two give the same box for the same generator state.

    Args:
        data: encoded image bytes.
        rng: the random generator.
        size: output side S or ``(H_out, W_out)``.
        scale: crop area range (fraction of the image).
        ratio: crop aspect range (w / h).
        max_scale: largest DCT scale (1: always full size, the reference behaviour).

    Returns:
        The crop, (3, H_out, W_out) uint8, and the DCT scale used.
    """
    return EncodedImage(data, max_scale).random_resized_crop(rng, size, scale, ratio)


def decode_on_device(blobs: list[bytes], device: torch.device | str) -> list[torch.Tensor]:
    """Decode a batch of images in one call on ``device``: ``(3, H_i, W_i)`` uint8 there.

    JPEGs go through ``torchvision.io.decode_jpeg`` as one batch (nvJPEG on CUDA, libjpeg-turbo on
    the CPU); anything else (PNG) through :func:`decode_image` on the CPU, then to ``device``.

    Raises:
        ValueError: an image does not decode.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    out: list[torch.Tensor | None] = [None] * len(blobs)
    jpegs = [i for i, b in enumerate(blobs) if is_jpeg(b)]
    for i in set(range(len(blobs))) - set(jpegs):
        out[i] = as_output(decode_image(blobs[i]), "torch").to(device)
    if jpegs:
        tensors = [torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8) for i in jpegs]
        try:
            with warnings.catch_warnings():
                # torchvision 0.29 marks its image codecs as deprecated in favour of torchcodec;
                # the pinned 0.29.1 has them, and they are the batched nvJPEG path we want.
                warnings.simplefilter("ignore", DeprecationWarning)
                decoded = decode_jpeg(tensors, mode=ImageReadMode.RGB, device=torch.device(device))
        except RuntimeError as exc:
            raise ValueError(f"cannot decode image: {exc}") from None
        for i, img in zip(jpegs, decoded, strict=True):
            out[i] = img
    return out  # type: ignore[return-value]
