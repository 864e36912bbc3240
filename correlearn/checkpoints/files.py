"""Read a checkpoint file safely: its content hash and its tensors, never arbitrary code.

``torch.load(..., weights_only=True)`` is the only loader: it rebuilds tensors and plain containers
and refuses any other pickled global (``os.system``, a model class). The one global allowed besides
is ``argparse.Namespace``, because MAE, CropMAE, CIM, DINO and CRW save their training ``args`` in
the checkpoint; a Namespace is a plain attribute bag and runs no code when unpickled.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint file cannot be imported; the message is one line naming the file."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the import's content address)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _why_refused(exc: Exception) -> str:
    text = str(exc)
    glob = re.search(r"GLOBAL ([\w.]+)", text)
    if glob:
        return (
            f"refused: the pickle asks for {glob.group(1)}, and weights_only=True loads only "
            "tensors and plain containers (a file that runs code is not a checkpoint)"
        )
    op = re.search(r"Unsupported operand (\d+)", text)
    if op:
        return f"refused: not a torch checkpoint (pickle opcode {op.group(1)} is not allowed)"
    if "zip archive" in text or "EOF" in text or "truncated" in text.lower():
        return "truncated or corrupt file (torch cannot read it to the end)"
    if isinstance(exc, OSError):  # a cut zip archive can fail as a bad seek: [Errno 22]
        return f"truncated or corrupt file (torch cannot read it: {text[:120]})"
    return f"cannot load ({text.splitlines()[0][:200] if text else type(exc).__name__})"


def load_checkpoint_file(path: str | Path) -> Any:
    """Load a checkpoint with ``weights_only=True`` (plus ``argparse.Namespace``) on CPU.

    Raises:
        CheckpointError: the file is missing, truncated, or its pickle asks for code.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; pass a checkpoint file or an artifact key")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file")
    with path.open("rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive; files of torch < 1.6 are a pickle (protocol byte 0x80).
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        raise CheckpointError(
            f"{path}: not a torch checkpoint (it starts with {head!r}, neither a torch.save zip "
            "archive nor a pickle)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pickle-protocol notes on older files are noise here
            with torch.serialization.safe_globals([argparse.Namespace]):
                return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for one bad file
        raise CheckpointError(f"{path}: {_why_refused(exc)}") from None


def is_state_dict(obj: Any) -> bool:
    """Whether ``obj`` is a mapping of string keys with at least one tensor value."""
    return (
        isinstance(obj, Mapping)
        and all(isinstance(k, str) for k in obj)
        and any(isinstance(v, torch.Tensor) for v in obj.values())
    )


def write_checkpoint_file(obj: Any, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``obj`` with ``torch.save`` so that a failure leaves the old file (or none) intact.

    The bytes go to a temporary file beside ``path``, are flushed to disk and renamed over it; a
    failed write (full disk, read-only folder) removes the temporary file and is one error.

    Raises:
        CheckpointError: ``path`` exists and ``overwrite`` is False, is a folder, or cannot be
            written.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path}: exists; pass --overwrite to replace it")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        # torch's zip writer reports a full disk as a RuntimeError ("unexpected pos ...").
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:160]
        if _disk_full(path.parent):  # asked before the temporary file frees its space
            why = "No space left on device"
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: cannot write ({why})") from None
    return path


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False
