"""``correlearn eval | import | export`` and ``stage run --input`` on a tiny DAVIS copy, in-process."""

import json

import pytest
import torch

from app.cli import main
from correlearn.models import build_backbone


@pytest.fixture(scope="module")
def env(tmp_path_factory, make_davis):
    tmp = tmp_path_factory.mktemp("cli_ckpt")
    root = make_davis(tmp / "davis", n=6)
    torch.manual_seed(0)
    torch.save(build_backbone("resnet_test").export_state_dict(), tmp / "r.pt")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\n"
        "eval_knn: {dataset: d, image_size: 32, split: temporal, k: 3}\n"
    )
    return tmp, root, cfg


@pytest.fixture
def cli(env, monkeypatch, capsys):
    tmp = env[0]
    monkeypatch.setenv("CORRELEARN_HOME", str(tmp / "home"))
    monkeypatch.chdir(tmp)

    def run(*args):
        rc = main([str(a) for a in args])
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def _last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_eval_davis_of_a_file_prints_jf_then_is_a_cache_hit(env, cli):
    tmp, root, _ = env
    args = ["eval", "davis", "--checkpoint", tmp / "r.pt", "--root", root]
    args += ["--set", "params.short_side=64", "--json"]
    rc, out, err = cli(*args)
    assert rc == 0, err
    first = _last_json(out)
    assert "format: torchvision (detected)" in out and "| J&F | J | F |" in out
    assert first["cache_hit"] is False and 0.0 <= first["metrics"]["JF_mean"] <= 1.0
    assert first["checkpoint"]["stage"] == "import_checkpoint"
    rc, out, _ = cli(*args)
    second = _last_json(out)
    assert rc == 0 and second["cache_hit"] is True and second["key"] == first["key"]
    assert "[cache hit] import_checkpoint" in out and "[cache hit] eval_label_propagation" in out
    assert second["metrics"] == first["metrics"]


def test_import_is_content_addressed_and_export_reimports(env, cli):
    tmp = env[0]
    (tmp / "copy.pt").write_bytes((tmp / "r.pt").read_bytes())
    rc, out, _ = cli("import", tmp / "r.pt", "--json")
    a = _last_json(out)
    rc2, out2, _ = cli("import", tmp / "copy.pt", "--json")
    b = _last_json(out2)
    assert rc == rc2 == 0 and a["key"] == b["key"] and b["cache_hit"] is True
    rc, out, err = cli("export", a["key"][:8], "--format", "vfs", "--out", tmp / "vfs.pth")
    assert rc == 0, err
    assert "backbone.conv1.conv.weight" in torch.load(tmp / "vfs.pth")["state_dict"]
    rc, out, _ = cli("import", tmp / "vfs.pth", "--json")
    assert _last_json(out)["format"] == "vfs" and "format: vfs (detected)" in out


def test_stage_run_takes_an_input_artifact(env, cli):
    tmp, _, cfg = env
    _, out, _ = cli("import", tmp / "r.pt", "--json")
    key = _last_json(out)["key"]
    rc, out, err = cli(
        "stage", "run", "eval_knn", "--config", cfg, "--input", f"checkpoint={key[:6]}", "--json"
    )
    assert rc == 0, err
    manifest = json.loads(
        (tmp / "home/artifacts/eval_knn" / _last_json(out)["key"] / "manifest.json").read_text()
    )
    assert manifest["inputs"]["checkpoint"] == {"stage": "import_checkpoint", "key": key}


@pytest.mark.parametrize(
    "given, message",
    [
        ("ckpt=abc", "--input ckpt: stage eval_knn has no such input (inputs: checkpoint)"),
        ("checkpoint=ffffffff", "--input checkpoint=ffffffff: no artifact with key 'ffffffff'"),
        ("checkpoint", "--input 'checkpoint': expected NAME=KEY_OR_PREFIX"),
    ],
)
def test_bad_inputs_are_one_line(env, cli, given, message):
    rc, _, err = cli("stage", "run", "eval_knn", "--config", env[2], "--input", given)
    assert rc == 2 and err.strip().splitlines() == [err.strip()] and message in err


def test_an_input_of_the_wrong_kind_is_refused(env, cli):
    tmp, root, _ = env
    rc, out, _ = cli("eval", "davis", "--checkpoint", tmp / "r.pt", "--root", root,
                     "--set", "params.short_side=64", "--json")  # fmt: skip
    not_a_ckpt = _last_json(out)["key"]
    rc, _, err = cli(
        "stage", "run", "eval_knn", "--config", env[2], "--input", f"checkpoint={not_a_ckpt}"
    )
    assert rc == 2 and f"eval_label_propagation/{not_a_ckpt} is not a checkpoint" in err
    rc, _, err = cli("eval", "knn", "--checkpoint", not_a_ckpt, "--root", root)
    assert rc == 2 and "is not a checkpoint" in err
    rc, _, err = cli("eval", "davis", "--checkpoint", "missing.pt", "--root", root)
    assert rc == 2 and err.strip() == "error: missing.pt: no such file"


def test_export_refuses_an_existing_file_without_overwrite(env, cli):
    tmp = env[0]
    _, out, _ = cli("import", tmp / "r.pt", "--json")
    key = _last_json(out)["key"][:8]
    target = tmp / "exists.pth"
    target.write_bytes(b"keep me")
    rc, _, err = cli("export", key, "--format", "vfs", "--out", target)
    assert rc == 2 and err.strip().startswith("error: ") and len(err.strip().splitlines()) == 1
    assert target.read_bytes() == b"keep me"
    rc, _, err = cli("export", key, "--format", "vfs", "--out", target, "--overwrite")
    assert rc == 0, err
    assert "state_dict" in torch.load(target)
