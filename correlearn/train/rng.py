"""The global random streams of a training process: seeding, capture, restore and isolation.

Randomness inside a model (dropout, masking) draws from the python, numpy and torch global RNGs.
A checkpoint stores their states in a form ``torch.load(weights_only=True)`` accepts
(:func:`get_rng_state`), so a resumed run continues the exact stream of an uninterrupted one
(:func:`set_rng_state`); :func:`isolated_rng` keeps a data pipeline from shifting that stream.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """Capture the global RNG states in a ``weights_only``-loadable form."""
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states captured by :func:`get_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    keys = npst["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        # A run resumed on fewer devices restores the ones it has.
        for i, s in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)


@contextlib.contextmanager
def isolated_rng() -> Iterator[None]:
    """Undo on exit whatever the body draws from the python, numpy and torch CPU global RNGs.

    The loop fetches batches inside it, so a data pipeline that draws from the global RNGs (e.g. a
    DataLoader picking worker seeds when its iterator starts) cannot shift the model's random stream
    between an uninterrupted and a resumed run.
    """
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(py)
    np.random.set_state(npy)
