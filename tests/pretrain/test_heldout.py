"""The held-out pretext metric of a training stage: disjointness, opening, and scoring that leaves
training untouched (weights, BatchNorm statistics, training flags, RNG streams)."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from correlearn.config import ConfigError
from correlearn.data.sources import DatasetSpec, list_videos
from correlearn.methods.byol import BYOL, BYOLConfig
from correlearn.pretrain.configs import PretrainBYOLConfig
from correlearn.pretrain.data import byol_heldout
from correlearn.pretrain.heldout import (
    HeldoutConfig,
    HeldoutEval,
    check_disjoint,
    open_heldout,
    sequences_of,
)
from correlearn.pretrain.heldout_data import MemoryImages, MemoryVideos, memory_videos
from correlearn.pretrain.spec import TrainingData
from correlearn.train import OptimConfig, TrainConfig, fit
from correlearn.train.rng import get_rng_state

DATA = Path(__file__).resolve().parents[2] / "data"


def _frames(n, seed=0, h=12, w=16):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _heldout(video_keys=("bear", "boat"), image_keys=("bear/00000", "boat/00003")):
    videos = memory_videos([(k, _frames(3, i), 24.0) for i, k in enumerate(video_keys)])
    images = MemoryImages(list(image_keys), _frames(len(image_keys)))
    return TrainingData(len(images), {"videos": videos, "images": images})


def test_memory_readers():
    videos = _heldout()["videos"]
    assert isinstance(videos, MemoryVideos) and len(videos) == 2
    assert videos.n_frames.tolist() == [3, 3] and videos.fps.tolist() == [24.0, 24.0]
    clip = videos.frames(1, [2, 0])
    assert clip.shape == (2, 12, 16, 3) and np.array_equal(clip[0], videos.clips[1][2])
    assert _heldout()["images"][1]["key"] == "boat/00003"


def test_sequences_of_keys():
    assert sequences_of(["bear/00005", "dog"]) == {"bear/00005", "bear", "dog"}


@pytest.mark.parametrize("training", [["camel/00001", "bear/00005"], ["dog", "bear"]])
def test_check_disjoint_refuses_a_shared_sequence(training):
    # The held-out video "bear" as a training image "bear/00005", or as a training video "bear".
    with pytest.raises(ConfigError, match="'bear'"):
        check_disjoint(_heldout(), training, "pretrain_byol")


def test_check_disjoint_refuses_a_shared_image_sequence():
    # A held-out image of "bear" (without its video) against a training video "bear".
    heldout = _heldout(video_keys=("boat",), image_keys=("bear/00000",))
    with pytest.raises(ConfigError, match="'bear'"):
        check_disjoint(heldout, ["bear"], "pretrain_byol")


def test_check_disjoint_passes_disjoint_sets():
    check_disjoint(_heldout(), ["camel/00001", "dog", "bearded/00000", "boat-2"], "x")
    check_disjoint(_heldout(), [], "x")


@pytest.fixture(scope="module")
def davis_heldout():
    spec = DatasetSpec(name="h", root=str(DATA / "davis-heldout"), layout="davis")
    return open_heldout(spec, DATA, HeldoutConfig(max_short_side=64, max_images=8))


def test_open_heldout_on_the_embedded_davis_set(davis_heldout):
    data = davis_heldout
    videos, images, boxes = data["videos"], data["images"], data["boxes"]
    assert len(videos) == 6 and data["video_ids"] == list(range(6))
    assert videos.keys == sorted(videos.keys) and "elephant" in videos.keys
    assert all(min(videos.clips[v][0].shape[:2]) == 64 for v in range(6))
    assert 2 <= len(images) <= 8 and data.num_samples == len(images)
    assert len(boxes) == len(data["groups"]) == len(images)
    for i in range(len(images)):
        key, img = images[i]["key"], images[i]["image"]
        video, frame = key.split("/")
        assert videos.keys[data["groups"][i]] == video
        assert np.array_equal(img, videos.clips[data["groups"][i]][int(frame)])
        h, w = img.shape[:2]
        box = boxes[i]
        assert box.shape == (1, 4)
        x0, y0, x1, y1 = box[0]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        # Every frame of the set is annotated: the box is the object's, not the whole frame.
        assert (x1 - x0) * (y1 - y0) < 0.95 * w * h
    # The demo's training videos share no sequence with it.
    mini = list_videos(DatasetSpec(name="m", root=str(DATA / "davis-mini"), layout="davis"))
    check_disjoint(data, [v.key for v in mini], "demo")
    with pytest.raises(ConfigError):
        check_disjoint(data, [f"{videos.keys[0]}/00000"], "demo")


def _byol_cfg():
    return BYOLConfig(
        backbone="resnet_test", proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32, image_size=32
    )


class _NoisyBYOL(BYOL):
    """BYOL whose training step draws noise from the global RNG and whose metric draws from all
    three global RNGs, so that a scoring which leaks its draws shifts the training stream."""

    def training_step(self, batch):
        noisy = batch["view1"] + 0.1 * torch.randn_like(batch["view1"])
        return super().training_step({**batch, "view1": noisy})

    def pretext_metrics(self, batches):
        torch.rand(3)
        np.random.rand(3)
        random.random()
        self.scored_in_train_mode = any(m.training for m in self.modules())
        return super().pretext_metrics(batches)


def _heldout_eval(batch_norm="running"):
    val = HeldoutConfig(batch_size=3, batch_norm=batch_norm)
    cfg = PretrainBYOLConfig(method=_byol_cfg(), val=val)
    arrays = _frames(5, seed=7, h=40, w=48)
    images = MemoryImages([f"v{i // 2}/{i:05d}" for i in range(5)], arrays)
    data = TrainingData(5, {"images": images, "groups": [0, 0, 1, 1, 2]})
    heldout = HeldoutEval.draw(byol_heldout, data, cfg)
    assert [b["view1"].shape for b in heldout.batches] == [(3, 3, 32, 32), (2, 3, 32, 32)]
    assert torch.cat([b["group"] for b in heldout.batches]).tolist() == [0, 0, 1, 1, 2]
    return heldout


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _rng_states():
    s = get_rng_state()
    return s["python"], s["numpy"]["keys"], s["numpy"]["pos"], s["torch"]


@pytest.mark.parametrize("batch_norm", ["running", "batch"])
def test_score_changes_nothing(batch_norm):
    heldout = _heldout_eval(batch_norm)
    torch.manual_seed(0)
    model = _NoisyBYOL(_byol_cfg()).train()
    model.target_backbone.eval()  # a mixed state: each module's flag is restored, not reset
    flags = {name: m.training for name, m in model.named_modules()}
    # Give the BatchNorms non-default statistics, as a trained model has.
    model.training_step({"view1": torch.randn(4, 3, 32, 32), "view2": torch.randn(4, 3, 32, 32)})
    before = _state(model)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    rng = _rng_states()
    scores = heldout.score(model)
    assert set(scores) == {"retrieval_top1"} and 0.0 <= scores["retrieval_top1"] <= 1.0
    # Only the BatchNorm layers normalise with batch statistics under "batch".
    assert model.scored_in_train_mode is (batch_norm == "batch")
    after = _rng_states()
    assert after[0] == rng[0] and after[2] == rng[2]
    assert torch.equal(after[1], rng[1]) and torch.equal(after[3], rng[3])
    assert {name: m.training for name, m in model.named_modules()} == flags
    state = model.state_dict()
    assert before.keys() == state.keys()
    assert all(torch.equal(before[k], state[k]) for k in before), [
        k for k in before if not torch.equal(before[k], state[k])
    ]
    assert heldout.score(model) == scores  # fixed batches: the same score again


def _train_data_fn(start):
    step = start
    while True:
        g = torch.Generator().manual_seed(1000 + step)
        yield {
            "view1": torch.randn(4, 3, 32, 32, generator=g),
            "view2": torch.randn(4, 3, 32, 32, generator=g),
        }
        step += 1


def _fit(workdir, evaluate=None):
    train = TrainConfig(
        batch_size=4,
        epochs=1,
        steps_per_epoch=4,
        seed=5,
        device="cpu",
        amp="off",
        ckpt_every=100,
        log_every=100,
        num_workers=0,
    )
    optim = OptimConfig(name="sgd", base_lr=2.0, warmup_steps=1, exclude_bias_norm=False)
    torch.manual_seed(0)
    model = _NoisyBYOL(_byol_cfg())
    init = _state(model)
    fit(
        model,
        _train_data_fn,
        train,
        optim,
        workdir,
        total_steps=4,
        progress=False,
        evaluate=evaluate,
    )
    return model, init


def test_training_is_bit_identical_with_and_without_evaluation(tmp_path):
    heldout = _heldout_eval()
    plain, init = _fit(tmp_path / "plain")
    calls = []

    def evaluate(method, step):
        assert method.training  # the loop's mode, restored after every scoring
        calls.append((step, heldout.score(method)["retrieval_top1"]))

    scored, _ = _fit(tmp_path / "scored", (evaluate, 1))
    assert [s for s, _ in calls] == [0, 1, 2, 3, 4]  # step 0, every step, the end once
    a, b = plain.state_dict(), scored.state_dict()
    assert any(not torch.equal(init[k], a[k]) for k in a if a[k].is_floating_point())
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_evaluation_cadence(tmp_path):
    steps = []
    _fit(tmp_path / "every3", (lambda m, step: steps.append(step), 3))
    assert steps == [0, 3, 4]
    steps.clear()
    _fit(tmp_path / "ends", (lambda m, step: steps.append(step), None))
    assert steps == [0, 4]


def test_the_inits_are_scored_once_per_schedule(tmp_path):
    """A later budget call of the same schedule reads the inits' scores instead of rebuilding."""
    from types import SimpleNamespace

    from correlearn.methods.byol import BYOL

    built = []

    def build():
        built.append(1)
        return BYOL(_byol_cfg())

    cfg = SimpleNamespace(val=SimpleNamespace(init_seeds=[0, 1], dataset="held"))
    first = _heldout_eval().resume(tmp_path / "curve.json", 0)
    model = BYOL(_byol_cfg())
    a = first.report(model, build, cfg, 2)
    assert len(built) == 2
    again = _heldout_eval().resume(tmp_path / "curve.json", 2)
    b = again.report(model, build, cfg, 4)
    assert len(built) == 2 and b["init"] == a["init"]
    cfg.val.init_seeds = [0, 1, 2]  # a new seed is scored, the others are reused
    again.report(model, build, cfg, 4)
    assert len(built) == 3


def test_the_step0_score_is_the_init_score_only_for_the_same_weights(tmp_path):
    from types import SimpleNamespace

    from correlearn.methods.byol import BYOL
    from correlearn.train.rng import seed_everything

    scored = []

    class _Counted(BYOL):
        def pretext_metrics(self, batches):
            scored.append(1)
            return super().pretext_metrics(batches)

    def build():
        return _Counted(_byol_cfg())

    cfg = SimpleNamespace(val=SimpleNamespace(init_seeds=[0, 1], dataset="held"))
    seed_everything(0)
    model = build()  # the training model at step 0: the init at seed 0
    held = _heldout_eval().resume(tmp_path / "curve.json", 0)
    held.log_step(model, 0, None)
    assert held.adopt_step0_as_init(model, build, 0)
    assert not held.adopt_step0_as_init(model, build, 1)  # other weights: scored on its own
    report = held.report(model, build, cfg, 0)
    # step 0 once, init 1 once, the report's learned score is step 0's: no rescoring of seed 0.
    assert len(scored) == 2
    assert report["init"]["0"] == report["learned"] == held.curve[0][1]
    seed_everything(1)
    assert report["init"]["1"] == HeldoutEval(held.batches).score(build())
