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
    exported = torch.load(tmp / "vfs.pth")  # VFS's pretrained layout: torchvision names
    assert set(exported) == {"state_dict", "meta"} and "conv1.weight" in exported["state_dict"]
    rc, out, _ = cli("import", tmp / "vfs.pth", "--json")
    assert _last_json(out)["format"] == "vfs" and "format: vfs (detected)" in out
    assert "formats vfs and openselfsup both fit this file; chose vfs" in out


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


def test_changed_masks_are_a_new_evaluation_not_a_cache_hit(env, cli, make_davis, tmp_path):
    import numpy as np
    from PIL import Image

    root = make_davis(tmp_path / "d", seqs=("rollerblade",), n=4)
    args = ["eval", "davis", "--checkpoint", env[0] / "r.pt", "--root", root]
    args += ["--set", "params.short_side=64", "--json"]
    rc, out, _ = cli(*args)
    first = _last_json(out)
    mask = sorted((root / "Annotations/480p/rollerblade").iterdir())[2]
    arr = np.asarray(Image.open(mask))
    Image.fromarray(np.roll(arr, 20, axis=1)).save(mask)  # the object moved: new ground truth
    rc2, out, err = cli(*args)
    second = _last_json(out)
    assert rc == rc2 == 0, err
    assert second["cache_hit"] is False and second["key"] != first["key"]


def _partials(home):
    return list(home.glob("artifacts/*/.partial-*"))


def test_a_broken_davis_folder_is_one_line_before_any_work(env, cli, make_davis, tmp_path):
    root = make_davis(tmp_path / "d", seqs=("rollerblade",), n=4)
    frame = sorted((root / "JPEGImages/480p/rollerblade").iterdir())[1]
    frame.write_bytes(frame.read_bytes()[:500])
    before = _partials(env[0] / "home")
    rc, out, err = cli("eval", "davis", "--checkpoint", env[0] / "r.pt", "--root", root)
    assert (
        rc == 2
        and err.strip() == f"error: {frame}: truncated frame (the file ends before its image does)"
    )
    assert _partials(env[0] / "home") == before


def test_nan_weights_are_refused_not_scored(env, cli, make_davis, tmp_path):
    state = build_backbone("resnet_test").export_state_dict()
    state["conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    root = make_davis(tmp_path / "d", seqs=("rollerblade",), n=4)
    rc, _, err = cli("eval", "davis", "--checkpoint", tmp_path / "nan.pt", "--root", root)
    assert rc == 2 and "hold NaN or Inf (first: conv1.weight)" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "protocol, needle",
    [
        ("pose", "expected a JHMDB folder"),
        ("parts", "expected a VIP folder"),
        ("svm", "expected a VOC2007 folder"),
        ("tracking", "pass --head-root DIR (a GOT-10k-layout folder) or --set head=none"),
    ],
)
def test_a_folder_of_the_wrong_layout_says_what_was_expected(env, cli, tmp_path, protocol, needle):
    (tmp_path / "x").mkdir()
    rc, _, err = cli("eval", protocol, "--checkpoint", env[0] / "r.pt", "--root", tmp_path)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_a_workspace_that_is_a_file_is_one_line(cli, tmp_path, monkeypatch):
    f = tmp_path / "home-file"
    f.write_text("x")
    monkeypatch.setenv("CORRELEARN_HOME", str(f))
    rc, _, err = cli("status")
    assert rc == 2 and err.strip() == f"error: CORRELEARN_HOME={f}: not a folder"
    assert f.read_text() == "x"


def test_a_text_file_or_a_folder_as_a_checkpoint_says_what_it_is(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    rc, _, err = cli("import", tmp_path / "notes.txt")
    assert rc == 2 and "notes.txt: not a torch checkpoint (it starts with b'hell'" in err
    rc, _, err = cli("eval", "davis", "--checkpoint", tmp_path, "--root", tmp_path)
    assert (
        rc == 2
        and err.strip()
        == f"error: {tmp_path}: is a folder; pass a checkpoint file or an artifact key"
    )


def test_knn_on_a_davis_folder_and_a_tiny_class_name_the_problem(env, cli, tmp_path):
    tmp, root, _ = env
    rc, _, err = cli("eval", "knn", "--checkpoint", tmp / "r.pt", "--root", root)
    assert rc == 2 and "is a DAVIS folder (JPEGImages, Annotations), not class folders" in err
    frames = sorted((root / "JPEGImages/480p/rollerblade").iterdir())
    for cls, n in (("cats", 4), ("dogs", 1)):
        (tmp_path / cls).mkdir()
        for f in frames[:n]:
            (tmp_path / cls / f.name).write_bytes(f.read_bytes())
    rc, _, err = cli("eval", "knn", "--checkpoint", tmp / "r.pt", "--root", tmp_path)
    assert rc == 2 and "class 'dogs' has 1 image(s): too few to split" in err
