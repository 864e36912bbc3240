import pytest
import torch

from correlearn.train import checkpoint as C
from correlearn.train import fit
from correlearn.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    read_run_id,
    save_checkpoint,
)

from .test_loop import configs
from .toys import ToyRegression, make_data_fn


def _state(step, run_id="r1"):
    return {"step": step, "run_id": run_id, "model": {"w": torch.full((3,), float(step))}}


def test_save_keeps_previous_and_sidecar(tmp_path):
    save_checkpoint(_state(1), tmp_path)
    save_checkpoint(_state(2, "r2"), tmp_path)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert load_checkpoint(tmp_path / "prev.pt")["step"] == 1
    assert read_run_id(tmp_path) == "r2"
    (tmp_path / "last.pt.json").unlink()
    assert read_run_id(tmp_path) == "r2"  # falls back to the checkpoint itself
    assert read_run_id(tmp_path / "nothing") is None
    (tmp_path / "last.pt").unlink()
    assert latest_checkpoint(tmp_path) == tmp_path / "prev.pt"


def test_crash_mid_write_leaves_last_valid(tmp_path, monkeypatch):
    save_checkpoint(_state(1), tmp_path)

    def crashing_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(C.torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(_state(2), tmp_path)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1
    assert not list(tmp_path.glob("*.tmp"))
    assert read_run_id(tmp_path) == "r1"


def test_corrupt_checkpoint_error_names_file(tmp_path):
    save_checkpoint(_state(1), tmp_path)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=str(last)):
        load_checkpoint(last)
    last.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="last.pt"):
        load_checkpoint(last)
    train, optim = configs(max_steps=2)
    with pytest.raises(CheckpointError, match=str(last)):
        fit(ToyRegression(), make_data_fn(), train, optim, tmp_path, total_steps=4, progress=False)


def test_not_a_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="x.pt"):
        load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "y.pt")
