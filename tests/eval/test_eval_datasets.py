"""Evaluation dataset specs: lookup, layout check, and a key that follows the files read."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from correlearn.config import ConfigError
from correlearn.data.sources import DataError
from correlearn.eval.eval_datasets import get_eval_dataset, resolve_source, source_of


def _pipe(tmp_path: Path, root: str) -> SimpleNamespace:
    raw = {"datasets": {"v": {"root": root, "layout": "vip"}}}
    return SimpleNamespace(raw=raw, config_path=tmp_path / "cfg.yaml", base_dir=tmp_path)


def test_lookup_checks_the_name_and_the_layout(tmp_path):
    pipe = _pipe(tmp_path, "vip")
    assert get_eval_dataset(pipe, "v", "vip").root == "vip"
    with pytest.raises(ConfigError, match="datasets.w is not defined"):
        get_eval_dataset(pipe, "w", "vip")
    with pytest.raises(ConfigError, match="but this stage reads 'otb'"):
        get_eval_dataset(pipe, "v", "otb")
    with pytest.raises(DataError, match="does not exist"):
        resolve_source(pipe, "v", "vip", lambda spec, root: [])


def test_the_fingerprint_follows_the_files_and_the_run_gets_the_source_back(tmp_path):
    (tmp_path / "vip").mkdir()
    f = tmp_path / "vip" / "a.png"
    f.write_bytes(b"12")
    pipe = _pipe(tmp_path, "vip")  # relative to the config's folder
    first = resolve_source(pipe, "v", "vip", lambda spec, root: [root / "a.png"])["source"]
    assert first["root"] == str(tmp_path / "vip") and first["files"] == 1
    f.write_bytes(b"123")
    again = resolve_source(pipe, "v", "vip", lambda spec, root: [root / "a.png"])["source"]
    assert again["fingerprint"] != first["fingerprint"]
    ctx = SimpleNamespace(resolved={"source": again}, base_dir=tmp_path)
    spec, root = source_of(ctx)
    assert spec.name == "v" and root == tmp_path / "vip"
