"""SiamFC tracking on frozen features (the VINCE / SeCo protocol that VFS follows, VFS Sec. 4.1).

Follows the reference trackers line by line: xvjiarui/VFS ``projects/siamfc-pytorch/siamfc/
siamfc_tracker_base.py`` (``init``/``update``) and danielgordon10/vince ``siamfc_pytorch/
tracker.py``, both derived from huanglianghua/siamfc-pytorch. The ResNet runs with the strides of
res4/res5 removed and dilations 2 and 4 (``strides (1, 2, 1, 1)``, ``dilations (1, 1, 2, 4)``),
so res5 has stride 8. Hyper-parameters are :data:`SIAMFC` (the two reference configs agree; both
use an exemplar of 120 px where the SiamFC paper has 127, see ``exemplar_size``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from correlearn.eval.features import frame_to_tensor

# VFS default_config_base.py == VINCE end_task_tracking_solver.py (inference part).
SIAMFC = {
    "exemplar_size": 120,
    "instance_size": 255,
    "context": 0.5,
    "scale_num": 3,
    "scale_step": 1.0375,
    "scale_lr": 0.59,
    "scale_penalty": 0.9745,
    "window_influence": 0.176,
    "response_size": 17,
    "response_up": 16,
    "out_scale": 0.001,
}
RESNET_STRIDES = (1, 2, 1, 1)
RESNET_DILATIONS = (1, 1, 2, 4)


def xcorr(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Cross-correlate each exemplar with its search maps (the reference ``_fast_xcorr``).

    Args:
        z: (Nz, C, hz, wz) exemplar features.
        x: (Nx, C, hx, wx) search features, Nx a multiple of Nz (search i uses exemplar i % Nz
            grouping as in the reference: consecutive blocks of Nz).

    Returns:
        (Nx, 1, hx - hz + 1, wx - wz + 1).
    """
    nz = z.size(0)
    nx, c, h, w = x.shape
    out = F.conv2d(x.reshape(-1, nz * c, h, w), z, groups=nz)
    return out.reshape(nx, -1, out.size(-2), out.size(-1))


class SiamHead(nn.Module):
    """SiamFC head: optional 1x1 convs on exemplar and search features, then xcorr x out_scale.

    ``convs=True`` is VFS's ``SiamConvFC`` (``extra_conv: True``, one 1x1 conv per branch with
    ``channels`` outputs; VINCE's ``SiamFCTrackingModel`` is the same with 256 channels), the only
    part trained on frozen features; ``convs=False`` is the parameter-free ``SiamFC`` head.
    """

    def __init__(self, in_channels: int, channels: int, convs: bool, out_scale: float) -> None:
        super().__init__()
        self.out_scale = out_scale
        self.convs = convs
        if convs:
            self.z_conv = nn.Conv2d(in_channels, channels, 1)
            self.x_conv = nn.Conv2d(in_channels, channels, 1)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``z: (Nz, C, hz, wz)``, ``x: (Nx, C, hx, wx)`` -> responses (Nx, 1, h, w)."""
        if self.convs:
            z, x = self.z_conv(z), self.x_conv(x)
        return xcorr(z, x) * self.out_scale


def crop_and_resize(
    img: np.ndarray, center: np.ndarray, size: float, out_size: int, border: np.ndarray
) -> np.ndarray:
    """A square patch of side ``size`` around ``center`` resized to ``out_size``.

    Pixels outside the image take ``border`` (the image's mean colour, as the reference pads).
    One affine warp instead of the reference's crop + resize + pad; they agree up to the
    sub-pixel rounding of the crop corners.

    Args:
        img: (H, W, 3) uint8 RGB.
        center: (2,) ``(y, x)`` 0-based.
        size: patch side in image pixels (at least 2, as the reference clamps).
        out_size: output side.
        border: (3,) fill colour.

    Returns:
        (out_size, out_size, 3) uint8.
    """
    size = max(2.0, float(size))
    s = out_size / size
    y0, x0 = center[0] - size / 2, center[1] - size / 2
    m = np.array([[s, 0, -s * x0], [0, s, -s * y0]], dtype=np.float64)
    return cv2.warpAffine(
        img,
        m,
        (out_size, out_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(v) for v in border),
    )


@dataclass
class TrackerState:
    """What the tracker carries from frame to frame (0-based centre ``(y, x)``, size ``(h, w)``)."""

    center: np.ndarray
    target_sz: np.ndarray
    z_sz: float
    x_sz: float
    avg_color: np.ndarray
    kernel: torch.Tensor


class SiamFCTracker:
    """One-pass SiamFC tracker over a frozen feature function and a head.

    Args:
        features: ``fn(x: (B, 3, H, W)) -> (B, C, h, w)`` frozen features (res5, stride
            ``total_stride``).
        head: a :class:`SiamHead`.
        total_stride: input pixels per feature cell (8 for the protocol's dilated res5).
        params: :data:`SIAMFC` keys (all of them).
        device: where the network runs.
    """

    def __init__(self, features, head: SiamHead, total_stride: int, params: dict, device) -> None:
        self.features, self.head, self.p = features, head.eval(), dict(params)
        self.total_stride, self.device = total_stride, device
        up = self.p["response_up"] * self.p["response_size"]
        hann = np.outer(np.hanning(up), np.hanning(up))
        self.window = hann / hann.sum()
        n = self.p["scale_num"]
        self.scales = self.p["scale_step"] ** np.linspace(-(n // 2), n // 2, n)

    def _embed(self, patches: list[np.ndarray]) -> torch.Tensor:
        x = torch.cat([frame_to_tensor(p, self.device) for p in patches])
        with torch.inference_mode():
            return self.features(x)

    def init(self, img: np.ndarray, box: np.ndarray) -> TrackerState:
        """Exemplar of the first frame; ``box`` is 1-based ``x, y, w, h`` (OTB files)."""
        center = np.array([box[1] - 1 + (box[3] - 1) / 2, box[0] - 1 + (box[2] - 1) / 2])
        target_sz = np.array([box[3], box[2]], dtype=np.float64)
        context = self.p["context"] * target_sz.sum()
        z_sz = float(np.sqrt(np.prod(target_sz + context)))
        x_sz = z_sz * self.p["instance_size"] / self.p["exemplar_size"]
        avg = img.reshape(-1, 3).mean(axis=0)
        z = crop_and_resize(img, center, z_sz, self.p["exemplar_size"], avg)
        return TrackerState(center, target_sz, z_sz, x_sz, avg, self._embed([z]))

    def update(self, st: TrackerState, img: np.ndarray) -> np.ndarray:
        """Search the scale pyramid, move and rescale the target; returns a 1-based box."""
        p = self.p
        x = [crop_and_resize(img, st.center, st.x_sz * f, p["instance_size"], st.avg_color)
             for f in self.scales]  # fmt: skip
        with torch.inference_mode():
            resp = self.head(st.kernel, self._embed(x)).squeeze(1).float().cpu().numpy()
        up = p["response_up"] * p["response_size"]
        resp = np.stack([cv2.resize(r, (up, up), interpolation=cv2.INTER_CUBIC) for r in resp])
        mid = p["scale_num"] // 2
        resp[:mid] *= p["scale_penalty"]
        resp[mid + 1 :] *= p["scale_penalty"]
        scale_id = int(np.argmax(resp.max(axis=(1, 2))))
        r = resp[scale_id] - resp[scale_id].min()
        r = r / (r.sum() + 1e-16)
        r = (1 - p["window_influence"]) * r + p["window_influence"] * self.window
        loc = np.array(np.unravel_index(r.argmax(), r.shape), dtype=np.float64)
        disp = (loc - (up - 1) / 2) * self.total_stride / p["response_up"]
        st.center = st.center + disp * st.x_sz * self.scales[scale_id] / p["instance_size"]
        scale = (1 - p["scale_lr"]) + p["scale_lr"] * self.scales[scale_id]
        st.target_sz = st.target_sz * scale
        st.z_sz, st.x_sz = st.z_sz * scale, st.x_sz * scale
        c, t = st.center, st.target_sz
        return np.array([c[1] + 1 - (t[1] - 1) / 2, c[0] + 1 - (t[0] - 1) / 2, t[1], t[0]])

    def track(self, frames, first_box: np.ndarray, read) -> np.ndarray:
        """Boxes (T, 4) of a sequence; ``read(frame) -> (H, W, 3)`` uint8; row 0 = ``first_box``."""
        boxes = np.zeros((len(frames), 4))
        boxes[0] = first_box
        st = self.init(read(frames[0]), first_box)
        for t in range(1, len(frames)):
            boxes[t] = self.update(st, read(frames[t]))
        return boxes
