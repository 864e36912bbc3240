"""Writing an exported checkpoint: atomic, never over an existing file unless asked, one error."""

import errno

import pytest
import torch

from correlearn.checkpoints import CheckpointError, write_checkpoint_file
from correlearn.checkpoints import files as F


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "x.pth"
    write_checkpoint_file({"a": torch.ones(3)}, out)

    def full(obj, f):
        f.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(F.torch, "save", full)
    with pytest.raises(CheckpointError, match="cannot write .No space left on device"):
        write_checkpoint_file({"a": torch.zeros(3)}, out, overwrite=True)
    assert torch.equal(torch.load(out)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]


def test_an_existing_file_needs_overwrite(tmp_path):
    out = tmp_path / "x.pth"
    write_checkpoint_file({"a": torch.ones(1)}, out)
    with pytest.raises(CheckpointError, match="exists; pass --overwrite"):
        write_checkpoint_file({"a": torch.zeros(1)}, out)
    write_checkpoint_file({"a": torch.zeros(1)}, out, overwrite=True)
    assert torch.load(out)["a"].item() == 0.0


def test_a_folder_or_an_unwritable_place_is_one_error(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        write_checkpoint_file({}, tmp_path)
    with pytest.raises(CheckpointError, match="cannot write"):
        write_checkpoint_file({}, "/proc/correlearn-test.pth")


def test_torch_zip_writer_failing_on_a_full_disk_is_one_error(tmp_path, monkeypatch):
    """torch reports a full disk mid-archive as a RuntimeError, not an OSError."""
    out = tmp_path / "x.pth"
    write_checkpoint_file({"a": torch.ones(3)}, out)

    def full(obj, f):
        f.write(b"partial bytes")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 10 vs 4")

    monkeypatch.setattr(F.torch, "save", full)
    usage = F.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(F.shutil, "disk_usage", lambda p: usage._replace(free=4096))
    with pytest.raises(CheckpointError, match=r"x.pth: cannot write \(No space left on device\)"):
        write_checkpoint_file({"a": torch.zeros(3)}, out, overwrite=True)
    assert torch.equal(torch.load(out)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["x.pth"]
