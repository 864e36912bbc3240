"""Training through the stage runner: budgets continue one schedule (issue 11 item 3), and a
resumed run logs each step to MLflow once (item 13)."""

import json
from pathlib import Path

import pytest
import torch

from correlearn.config import StrictModel
from correlearn.pipeline import Pipeline
from correlearn.pretrain.spec import DataKind, MethodSpec, TrainingData
from correlearn.pretrain.stage import pretrain_stage
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.workspace import get_workspace

from .toys import ToyRegression

BUILT: list[int] = []  # steps whose batch was built, to see where a call started
CRASH_AT: list[int] = []


class ToyMethodCfg(StrictModel):
    backbone: str = "toy"
    backbone_kwargs: dict = {}


class ToyFitCfg(StrictModel):
    method: ToyMethodCfg = ToyMethodCfg()
    train: TrainConfig = TrainConfig(
        batch_size=16, epochs=1, steps_per_epoch=12, seed=3, device="cpu", ckpt_every=5,
        log_every=1, num_workers=0,
    )  # fmt: skip
    optim: OptimConfig = OptimConfig(name="adamw", base_lr=0.05, warmup_steps=3)


W = torch.linspace(-1, 1, 8)


def _batch(data, cfg, step, rng, gen):
    if step in CRASH_AT:
        CRASH_AT.clear()
        raise RuntimeError("simulated kill -9")
    BUILT.append(step)
    x = torch.randn(16, 8, generator=gen)
    return {"x": x, "y": x @ W + 0.01 * torch.randn(16, generator=gen)}


# A method outside the registry: 192 synthetic samples per epoch, no input artifacts.
SYNTHETIC = DataKind("synthetic", {}, lambda paths, cfg: TrainingData(16 * 12))
TOY = MethodSpec(
    "toy", ToyFitCfg, lambda cfg: ToyRegression(), SYNTHETIC, _batch, 1, "toy regression"
)
REG = {"fit": pretrain_stage(TOY, name="fit")}


def _pipe(root: Path, tracker=False) -> Pipeline:
    ws = get_workspace(root / "home")
    ws.artifacts.mkdir(parents=True, exist_ok=True)
    ws.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    cfg = root / "p.yaml"
    cfg.write_text("fit: {}\n")
    from correlearn.tracking import Tracker

    return Pipeline(cfg, REG, ws, tracker=Tracker(ws) if tracker else None)


def _weights(res) -> dict:
    ref = getattr(res, "ref", res)
    return torch.load(Path(ref.path) / "backbone.pt", weights_only=True)


def _manifest(res) -> dict:
    ref = getattr(res, "ref", res)
    return json.loads((Path(ref.path) / "manifest.json").read_text())


def _steps(n):
    return {"train": {"max_steps": n}}


def test_raising_a_budget_continues_the_schedule_bitwise(tmp_path):
    BUILT.clear()
    p = _pipe(tmp_path / "a")
    r4 = p.run_stage("fit", overrides=_steps(4))
    r8 = p.run_stage("fit", overrides=_steps(8))
    assert BUILT == list(range(8))  # the second call continued at step 4, not from zero
    full = p.run_stage("fit")
    assert BUILT == list(range(12))
    m4, m8, mf = _manifest(r4), _manifest(r8), _manifest(full)
    assert (m4["stopped_at_step"], m8["stopped_at_step"], mf["stopped_at_step"]) == (4, 8, 12)
    assert m4["schedule_key"] == m8["schedule_key"] == mf["schedule_key"] == full.ref.key
    assert len({r4.ref.key, r8.ref.key, full.ref.key}) == 3  # three evaluable checkpoints
    assert m4["metadata"]["stopped_on_budget"] and not mf["metadata"]["stopped_on_budget"]

    straight = _pipe(tmp_path / "b").run_stage("fit")
    assert straight.ref.key == full.ref.key
    for k, v in _weights(straight).items():
        assert torch.equal(v, _weights(full)[k]), k
    # the earlier snapshots are intact (their checkpoints are not overwritten by later steps)
    assert p.store.verify("fit", r4.ref.key, content=True) == []
    assert not torch.equal(_weights(r4)["backbone.fc.weight"], _weights(r8)["backbone.fc.weight"])

    BUILT.clear()
    again = [p.run_stage("fit", overrides=_steps(n)) for n in (4, 8, 12, 100)]
    assert [r.cache_hit for r in again] == [True] * 4 and BUILT == []
    assert [r.ref.key for r in again] == [r4.ref.key, r8.ref.key, full.ref.key, full.ref.key]


def test_a_smaller_budget_after_a_larger_one_starts_from_the_best_snapshot(tmp_path):
    BUILT.clear()
    p = _pipe(tmp_path)
    r3 = p.run_stage("fit", overrides=_steps(3))
    p.run_stage("fit", overrides=_steps(9))
    BUILT.clear()
    r6 = p.run_stage("fit", overrides=_steps(6))
    assert BUILT == [3, 4, 5] and r6.ref.key != r3.ref.key
    ref6 = _pipe(tmp_path / "b").run_stage("fit", overrides=_steps(6))
    assert torch.equal(_weights(r6)["backbone.fc.weight"], _weights(ref6)["backbone.fc.weight"])


def test_a_smaller_budget_never_deletes_the_furthest_checkpoint(tmp_path):
    # Interrupted at step 7 (checkpoint at 5), then a call with a budget of 2, then the full run.
    BUILT.clear()
    p = _pipe(tmp_path)
    CRASH_AT[:] = [7]
    with pytest.raises(RuntimeError, match="simulated kill"):
        p.run_stage("fit")
    r2 = p.run_stage("fit", overrides=_steps(2))
    assert _manifest(r2)["stopped_at_step"] == 2
    assert not (Path(r2.ref.path) / "parked").exists()  # the snapshot carries only its own state
    BUILT.clear()
    full = p.run_stage("fit")
    assert BUILT == list(range(5, 12))  # continued from the kept step 5, not from step 2
    straight = _pipe(tmp_path / "b").run_stage("fit")
    for k, v in _weights(straight).items():
        assert torch.equal(v, _weights(full)[k]), k
    assert not (Path(full.ref.path) / "parked").exists()


def test_a_time_budget_is_answered_by_what_it_produced(tmp_path):
    BUILT.clear()
    p = _pipe(tmp_path)
    tiny = {"train": {"max_minutes": 1e-9}}
    r = p.run_stage("fit", overrides=tiny)
    assert _manifest(r)["stopped_at_step"] == 1 and BUILT == [0]
    assert p.run_stage("fit", overrides=tiny).ref == r.ref and BUILT == [0]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_resumed_run_logs_each_step_once(tmp_path):
    # item 13: steps between the last checkpoint (5) and the kill (8) were logged twice.
    p = _pipe(tmp_path, tracker=True)
    CRASH_AT[:] = [8]
    with pytest.raises(RuntimeError, match="simulated kill"):
        p.run_stage("fit")
    r = p.run_stage("fit")
    run_id = _manifest(r)["mlflow_run_id"]
    steps = [m.step for m in p.tracker.client.get_metric_history(run_id, "loss")]
    assert sorted(steps) == list(range(12))
