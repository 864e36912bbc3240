"""The missing-data helper of tests/conftest.py: skip locally, fail under CI, never silently."""

import pytest


def test_present_data_is_returned(data_required, tmp_path):
    assert data_required(tmp_path, "a folder") == tmp_path


def test_missing_data_skips_locally_and_fails_under_ci(data_required, tmp_path, monkeypatch):
    missing = tmp_path / "davis2016-train"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="DAVIS frames not found"):
        data_required(missing, "DAVIS frames")
    for value in ("true", "TRUE", "1"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="CI=true"):
            data_required(missing, "DAVIS frames")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        data_required(missing, "DAVIS frames")


def test_shared_davis_is_found_next_to_the_checkout(shared_davis, request):
    repo = request.config.rootpath
    assert shared_davis == repo.parent / "shared" / "data" / "davis2016-train"
    assert (shared_davis / "JPEGImages" / "480p" / "bear").is_dir()
