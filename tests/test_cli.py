"""The CLI contract on real frames: --json last lines, cache hits, artifacts list/show, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env_cfg(tmp_path_factory, make_davis):
    tmp = tmp_path_factory.mktemp("cli")
    root = make_davis(tmp / "davis", n=12)
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\n"
        "image_shards: {dataset: d, max_short_side: 64, frame_step: 4}\n"
        "video_shards: {dataset: d, max_short_side: 64}\n"
    )
    env = {**os.environ, "CORRELEARN_HOME": str(tmp / "home")}
    return env, cfg


def _cli(env, *args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout + proc.stderr)
    return proc


def test_stage_run_json_and_cache_hit(env_cfg):
    env, cfg = env_cfg
    first = json.loads(
        _cli(
            env, "stage", "run", "image_shards", "--config", str(cfg), "--json"
        ).stdout.splitlines()[-1]
    )
    assert set(first) == {"stage", "key", "cache_hit", "path"} and first["cache_hit"] is False
    out = _cli(env, "stage", "run", "image_shards", "--config", str(cfg), "--json").stdout
    second = json.loads(out.splitlines()[-1])
    assert second == {**first, "cache_hit": True}
    assert "[cache hit] image_shards" in out
    listing = _cli(env, "artifacts", "list", "--stage", "image_shards").stdout
    assert first["key"] in listing
    shown = _cli(env, "artifacts", "show", first["key"][:8]).stdout
    assert '"stage": "image_shards"' in shown


def test_flow_run_json_then_all_cache_hits(env_cfg):
    env, cfg = env_cfg
    out = _cli(env, "flow", "run", "data", "--config", str(cfg), "--json").stdout
    res = json.loads(out.splitlines()[-1])
    assert res["flow"] == "data"
    assert [s["stage"] for s in res["stages"]] == ["image_shards", "video_shards", "frame_index"]
    assert res["stages"][0]["cache_hit"] is True  # built by the stage test above
    again = json.loads(
        _cli(env, "flow", "run", "data", "--config", str(cfg), "--json").stdout.splitlines()[-1]
    )
    assert all(s["cache_hit"] for s in again["stages"])
    forced = _cli(
        env, "flow", "run", "data", "--config", str(cfg), "--force", "video_shards", "--json"
    )
    stages = json.loads(forced.stdout.splitlines()[-1])["stages"]
    assert [s["cache_hit"] for s in stages] == [True, False, False]  # forced stage and descendant


def test_errors_name_the_problem(env_cfg, tmp_path):
    env, cfg = env_cfg
    p = _cli(
        env,
        "stage",
        "run",
        "image_shards",
        "--config",
        str(cfg),
        "--set",
        "image_shards.shard_sz=3",
        check=False,
    )
    assert p.returncode == 2 and "error: --set: image_shards.shard_sz: unknown key" in p.stderr
    p = _cli(
        env, "stage", "run", "image_shards", "--config", str(tmp_path / "none.yaml"), check=False
    )
    assert p.returncode == 2 and "none.yaml" in p.stderr
    p = _cli(env, "artifacts", "show", "ffffffffff", check=False)
    assert p.returncode == 2 and "no artifact" in p.stderr


# --- issue 11 item 7: every expected failure is one `error:` line and exit code 2 -------------


def _main(capsys, *argv):
    from app import cli

    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def test_a_missing_dataset_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CORRELEARN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"datasets:\n  d: {{root: {tmp_path / 'gone'}, layout: davis}}\n"
                   "image_shards: {dataset: d}\n")  # fmt: skip
    code, err = _main(capsys, "stage", "run", "image_shards", "--config", str(cfg))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: dataset 'd': root ") and "gone" in err


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("correlearn.data.sources", "DataError"),
        ("correlearn.train.checkpoint", "CheckpointError"),
        ("correlearn.models.io", "BackboneLoadError"),
    ],
)
def test_expected_errors_are_one_line_and_v_shows_the_traceback(monkeypatch, capsys, module, name):
    import importlib

    from app import commands

    exc_type = getattr(importlib.import_module(module), name)

    def fails(args):
        raise exc_type("/x/train/last.pt: corrupt")

    monkeypatch.setattr(commands, "stage_list", fails)
    code, err = _main(capsys, "stage", "list")
    assert (code, err) == (2, "error: /x/train/last.pt: corrupt\n")
    code, err = _main(capsys, "-v", "stage", "list")
    assert code == 2 and "Traceback" in err and err.endswith("error: /x/train/last.pt: corrupt\n")


def test_a_dead_prefect_server_fails_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CORRELEARN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    code, err = _main(capsys, "flow", "run", "data", "--config", str(cfg))
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: PREFECT_API_URL=http://127.0.0.1:9/api does not answer")
    assert not any((tmp_path / "home" / "artifacts").iterdir())


def test_prefect_failed_to_reach_api_mid_run_is_one_line(monkeypatch, capsys):
    from app import commands

    def fails(args):
        raise RuntimeError("Failed to reach API at http://127.0.0.1:4200/api/")

    monkeypatch.setattr(commands, "stage_list", fails)
    code, err = _main(capsys, "stage", "list")
    assert (code, err) == (2, "error: Failed to reach API at http://127.0.0.1:4200/api/\n")


def test_an_interrupted_process_ends_even_when_a_thread_would_keep_it_alive():
    """Shutdown after a signal joins non-daemon threads; the CLI bounds that wait."""
    import time

    code = (
        "import threading, time\n"
        "from app.cli import exit_within\n"
        "threading.Thread(target=time.sleep, args=(120,)).start()\n"
        "exit_within(1.0, 130)\n"
    )
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=REPO)  # fmt: skip
    assert p.returncode == 130 and time.monotonic() - t0 < 30, p.stderr
