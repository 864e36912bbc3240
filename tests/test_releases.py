"""The release table: loading and validation, the hash check and ours-vs-published."""

import hashlib
from pathlib import Path

import pytest
import yaml

from app.cli_checkpoints import PRESET_PROTOCOLS, PRESETS, PROTOCOLS
from correlearn.checkpoints import FORMATS
from correlearn.releases import (
    DENSE_PROTOCOLS,
    PROTOCOL_METRICS,
    Release,
    ReleaseError,
    check_file,
    compare,
    find_release,
    load_releases,
)

TABLE = Path(__file__).resolve().parents[1] / "data_specs" / "releases.yaml"
ENTRY = {
    "name": "r",
    "format": "vfs",
    "backbone": "resnet_test",
    "protocol": "davis",
    "preset": "vfs_resnet",
    "dataset": "DAVIS 2017",
    "split": "val",
    "published": {"JF_mean": 60.0},
    "source": "a table",
}


def _write(tmp_path, *entries, **top):
    path = tmp_path / "releases.yaml"
    path.write_text(yaml.safe_dump({"releases": list(entries), **top}))
    return path


def test_the_shipped_table_loads_and_every_entry_validates():
    raw = yaml.safe_load(TABLE.read_text())["releases"]
    table = load_releases(TABLE)
    assert list(table) == [e["name"] for e in raw]  # none dropped, none merged, file order
    for entry in raw:
        assert Release.model_validate(entry) == table[entry["name"]]
    for r in table.values():
        # Only hashes the authors publish: none gives a full SHA-256; a prefix is the file name's.
        assert r.sha256 is None
        assert r.sha256_prefix is None or r.file.endswith(f"-{r.sha256_prefix}.pth")


def test_the_table_checks_against_what_the_cli_and_the_importer_know():
    assert set(PROTOCOL_METRICS) == set(PROTOCOLS)
    assert set(DENSE_PROTOCOLS) == set(PRESET_PROTOCOLS)
    for r in load_releases(TABLE).values():
        assert r.format in FORMATS and (r.preset is None or r.preset in PRESETS)


@pytest.mark.parametrize(
    "change, where, problem",
    [
        ({"typo": 1}, "r.typo", "unknown key"),
        ({"format": "caffe"}, "r.format", "unknown format 'caffe'"),
        ({"protocol": "kitti"}, "r.protocol", "unknown protocol 'kitti'"),
        ({"backbone": "resnet9"}, "r.backbone", "unknown backbone 'resnet9'"),
        ({"preset": "crw"}, "r", "preset: 'crw' is not a preset of protocol davis"),
        ({"preset": None}, "r", "preset: None is not a preset of protocol davis"),
        ({"protocol": "svm", "published": {"mAP": 1.0}}, "r", "protocol svm takes no preset"),
        ({"published": {"JF": 60.0}}, "r", "published: JF not a metric of davis"),
        ({"sha256": "ab12"}, "r.sha256", "at least 64 characters"),
        ({"sha256_prefix": "XYZ12345"}, "r.sha256_prefix", "should match pattern"),
        ({"name": "list"}, "list.name", "'list' is the command"),
    ],
)
def test_a_bad_entry_is_an_error_naming_the_entry_and_key(tmp_path, change, where, problem):
    path = _write(tmp_path, {**ENTRY, **change})
    with pytest.raises(ReleaseError) as exc:
        load_releases(path)
    assert str(exc.value).startswith(f"{path}: {where}: ") and problem in str(exc.value)


def test_a_repeated_name_or_an_unknown_top_level_key_is_an_error(tmp_path):
    with pytest.raises(ReleaseError, match="r: name given twice"):
        load_releases(_write(tmp_path, ENTRY, ENTRY))
    with pytest.raises(ReleaseError, match="models: unknown key"):
        load_releases(_write(tmp_path, ENTRY, models=[]))
    with pytest.raises(ReleaseError, match="releases: must be a non-empty list"):
        load_releases(_write(tmp_path))


def test_an_unknown_name_lists_the_known_ones(tmp_path):
    table = load_releases(_write(tmp_path, ENTRY, {**ENTRY, "name": "s"}))
    with pytest.raises(ReleaseError, match=r"no release 'x'; known: r, s$"):
        find_release(table, "x", "t.yaml")
    assert find_release(table, "s", "t.yaml").name == "s"


def test_check_file_takes_the_full_hash_else_the_prefix(tmp_path):
    f = tmp_path / "w-1234.pth"
    f.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert check_file(Release(**ENTRY), f) is None  # nothing published, nothing checked
    assert check_file(Release(**ENTRY, sha256=digest), f) == digest
    assert check_file(Release(**ENTRY, sha256_prefix=digest[:8]), f) == digest
    other = "0" * 64 if digest[0] != "0" else "1" * 64
    with pytest.raises(ReleaseError) as exc:
        check_file(Release(**ENTRY, sha256=other), f)
    assert str(exc.value) == f"{f}: sha256 {digest} does not match release r (expected {other})"
    with pytest.raises(ReleaseError, match=rf"\(expected {other[:8]}\.\.\.\)$"):
        check_file(Release(**ENTRY, sha256_prefix=other[:8]), f)
    with pytest.raises(ReleaseError, match="no such file"):
        check_file(Release(**ENTRY), tmp_path / "missing.pth")


def test_compare_scales_davis_fractions_to_percent_and_keeps_the_table_order():
    release = Release(**{**ENTRY, "published": {"F_mean": 70.0, "JF_mean": 60.0}})
    rows = compare(release, {"JF_mean": 0.625, "J_mean": 0.6, "per_sequence": {}})
    assert [r.metric for r in rows] == ["F_mean", "JF_mean"]
    assert rows[0].ours is None and rows[0].difference is None  # not written by the evaluation
    assert rows[1].ours == pytest.approx(62.5) and rows[1].difference == pytest.approx(2.5)
    track = Release(**{**ENTRY, "protocol": "tracking", "preset": None,
                       "published": {"precision": 70.0}})  # fmt: skip
    assert compare(track, {"precision": 68.5})[0].difference == pytest.approx(-1.5)
