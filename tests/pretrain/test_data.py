"""The pre-training data kinds: BYOL's decode switches keep old keys at their default; the reduced-size
decode gives the same crops (to a few grey levels) as the full decode, from the same random draws;
the decode on the training device gives the same batches on the CPU and builds them in-process."""

from pathlib import Path

import numpy as np
import pytest
import torch

from correlearn.config import key_material
from correlearn.methods.byol import BYOLConfig
from correlearn.pipeline import Pipeline
from correlearn.pretrain import METHODS
from correlearn.pretrain.configs import PretrainBYOLConfig
from correlearn.workspace import get_workspace
from stages import STAGES


def test_the_decode_switch_is_in_the_key_only_when_set():
    assert "decode" not in key_material(BYOLConfig())
    assert key_material(BYOLConfig(decode="reduced"))["decode"] == "reduced"
    assert key_material(BYOLConfig(decode="device"))["decode"] == "device"
    assert "decode" not in key_material(PretrainBYOLConfig())["method"]


def _byol_batches(tmp_path, make_davis, decodes, batch=4, **train):
    root = make_davis(tmp_path / "davis", n=3, masks=False)
    ws = get_workspace(tmp_path / "home")
    ws.artifacts.mkdir(parents=True)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\nimage_shards: {{dataset: d}}\n"
    )
    shards = Pipeline(cfg, STAGES, ws).run_stage("image_shards")
    spec = METHODS["byol"]
    batches, datas = {}, {}
    for decode in decodes:
        method = {"backbone": "resnet_test", "image_size": 64, "decode": decode}
        config = PretrainBYOLConfig.model_validate(
            {"method": method, "train": {"batch_size": batch, **train}}
        )
        datas[decode] = spec.data.open({"shards": Path(shards.path)}, config)
        rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
        batches[decode] = spec.batch(datas[decode], config, 0, rng, gen)
    return batches, datas


def test_reduced_decode_crops_match_the_full_decode(tmp_path, make_davis):
    batches, _ = _byol_batches(tmp_path, make_davis, ("full", "reduced"))
    full, reduced = batches["full"]["view1"], batches["reduced"]["view1"]
    assert full.shape == reduced.shape == (4, 3, 64, 64)
    diff = (full - reduced).abs().mean().item()  # normalised units: 1.0 is about 57 grey levels
    assert 0.0 < diff < 0.1, diff  # decoded at reduced size (not bit-equal), yet the same crops


def test_device_decode_on_the_cpu_gives_the_full_decode_batches_in_process(tmp_path, make_davis):
    batches, datas = _byol_batches(tmp_path, make_davis, ("full", "device"), device="cpu")
    assert datas["device"].in_process and not datas["full"].in_process
    assert datas["device"]["device"] == torch.device("cpu")
    for view in ("view1", "view2"):
        # torchvision's CPU decoder and OpenCV's are both libjpeg-turbo: the same pixels, so the
        # same draws give bit-equal views.
        assert torch.equal(batches["full"][view], batches["device"][view])


def test_device_decode_names_an_undecodable_image():
    from correlearn.data.decode import decode_on_device

    with pytest.raises(ValueError, match="cannot decode image"):
        decode_on_device([b"\xff\xd8\xff\xe0 not a jpeg"], "cpu")


def test_device_decode_trains_with_batches_built_in_the_training_process(
    tmp_path, make_davis, monkeypatch
):
    import correlearn.pretrain.job as job

    workers = []

    def spy(build, seed, start, num, num_workers, *args, **kwargs):
        workers.append(num_workers)
        return make_step_loader(build, seed, start, num, num_workers, *args, **kwargs)

    make_step_loader = job.make_step_loader
    monkeypatch.setattr(job, "make_step_loader", spy)
    root = make_davis(tmp_path / "davis", n=3, masks=False)
    ws = get_workspace(tmp_path / "home")
    ws.artifacts.mkdir(parents=True)
    cfg = tmp_path / "cfg.yaml"
    tiny = "backbone: resnet_test, proj_hidden_dim: 32, proj_dim: 16, pred_hidden_dim: 32"
    cfg.write_text(
        f"datasets:\n  d: {{root: {root}, layout: davis}}\nimage_shards: {{dataset: d}}\n"
        f"pretrain_byol:\n  method: {{{tiny}, image_size: 32, decode: device}}\n"
        "  train: {batch_size: 2, max_steps: 2, num_workers: 2, device: cpu}\n"
    )
    res = Pipeline(cfg, STAGES, ws).run_stage("pretrain_byol")
    assert res.manifest()["metadata"]["steps"] == 2
    assert workers == [0]  # num_workers: 2 asked for, but the batches are made on the device
