import torch

from correlearn.train import OptimConfig, TrainConfig, export_backbone, fit, read_run_id
from correlearn.train.checkpoint import load_checkpoint
from correlearn.train.schedules import ema_tau
from correlearn.train.session import TrainingSession

from .toys import ToyEMA, ToyRegression, make_data_fn


def configs(**train_kw):
    train = dict(batch_size=16, epochs=1, seed=3, device="cpu", ckpt_every=4, log_every=1)
    train.update(train_kw)
    optim = OptimConfig(name="adamw", base_lr=0.05, warmup_steps=3, clip_grad=5.0)
    return TrainConfig(**train), optim


def _params(m):
    return torch.cat([p.detach().flatten() for p in m.state_dict().values()])


def test_loss_falls_on_toy_regression(tmp_path):
    torch.manual_seed(0)
    train, _ = configs(ckpt_every=1000, log_every=10, batch_size=32)
    optim = OptimConfig(name="sgd", base_lr=0.4, warmup_steps=0, exclude_bias_norm=False)
    method = ToyRegression(dropout=0.0, mask=0.0, bn=True)
    res = fit(
        method, make_data_fn(batch=32), train, optim, tmp_path, total_steps=60, progress=False
    )
    losses = [v for _, v in res.loss_history]
    assert len(losses) == 60 and res.step == 60 and not res.stopped_on_budget
    assert sum(losses[-5:]) / 5 < 0.2 * sum(losses[:5]) / 5
    assert res.lr == 0.4 * 32 / 256 and res.stop_reason == "completed"
    assert set(res.last_losses) == {"loss", "mse", "scale"}


def test_resume_is_exact(tmp_path):
    """10 steps straight == 6 steps, stop, resume to 10 (dropout + masking + polluting data_fn)."""
    train, optim = configs()
    torch.manual_seed(0)
    straight = ToyEMA(dropout=0.3, mask=0.3)
    data = make_data_fn(seed=1, pollute=True)
    r1 = fit(straight, data, train, optim, tmp_path / "a", total_steps=10, progress=False)

    torch.manual_seed(0)
    first = ToyEMA(dropout=0.3, mask=0.3)
    cut = train.model_copy(update={"max_steps": 6})
    r2a = fit(first, data, cut, optim, tmp_path / "b", total_steps=10, progress=False)
    assert r2a.step == 6 and r2a.stopped_on_budget and r2a.stop_reason == "max_steps"

    torch.manual_seed(123)  # a fresh process would build the model anew; weights come from disk
    resumed = ToyEMA(dropout=0.3, mask=0.3)
    r2b = fit(resumed, data, train, optim, tmp_path / "b", total_steps=10, progress=False)
    assert r2b.step == 10 and not r2b.stopped_on_budget
    assert [s for s, _ in r2b.loss_history] == list(range(10))
    assert r2b.loss_history == r1.loss_history  # bitwise
    assert torch.equal(_params(resumed), _params(straight))
    assert resumed.taus == straight.taus[6:]


def test_run_id_stored_and_kept(tmp_path):
    train, optim = configs(max_steps=2)
    data = make_data_fn()
    fit(
        ToyRegression(),
        data,
        train,
        optim,
        tmp_path,
        run_id="abc123",
        total_steps=4,
        progress=False,
    )
    assert read_run_id(tmp_path) == "abc123"
    fit(
        ToyRegression(),
        data,
        train.model_copy(update={"max_steps": 3}),
        optim,
        tmp_path,
        total_steps=4,
        progress=False,
    )
    assert read_run_id(tmp_path) == "abc123"
    assert load_checkpoint(tmp_path / "last.pt")["run_id"] == "abc123"


def test_budget_stop_by_minutes_saves_checkpoint(tmp_path):
    train, optim = configs(max_minutes=1e-9, ckpt_every=1000)
    res = fit(
        ToyRegression(), make_data_fn(), train, optim, tmp_path, total_steps=50, progress=False
    )
    assert res.step == 1 and res.stopped_on_budget and res.stop_reason == "max_minutes"
    assert res.checkpoint == tmp_path / "last.pt"
    ckpt = load_checkpoint(res.checkpoint)
    assert ckpt["step"] == 1 and ckpt["stop_reason"] == "max_minutes"
    more = fit(
        ToyRegression(),
        make_data_fn(),
        train.model_copy(update={"max_minutes": None, "max_steps": 5}),
        optim,
        tmp_path,
        total_steps=50,
        progress=False,
    )
    assert more.step == 5 and [s for s, _ in more.loss_history] == list(range(5))


def test_ema_hook_gets_scheduled_tau_and_logging(tmp_path):
    train, optim = configs(log_every=3)
    method = ToyEMA(base_tau=0.99)
    logs = []
    fit(
        method,
        make_data_fn(),
        train,
        optim,
        tmp_path,
        total_steps=7,
        log_fn=lambda m, s: logs.append((s, m)),
        progress=False,
    )
    assert method.taus == [ema_tau(s, 7, 0.99) for s in range(7)]
    assert [s for s, _ in logs] == [
        2,
        3,
        5,
        6,
    ]  # every 3 steps, at the step-4 checkpoint, at the end
    metrics = logs[-1][1]
    assert {"loss", "mse", "lr", "tau", "img_per_s", "grad_norm", "epoch"} <= set(metrics)
    assert metrics["tau"] == ema_tau(6, 7, 0.99)


def test_no_ema_and_export_backbone(tmp_path):
    method = ToyRegression()
    train, optim = configs()
    logs = []
    fit(
        method,
        make_data_fn(),
        train,
        optim,
        tmp_path,
        total_steps=2,
        log_fn=lambda m, s: logs.append(m),
        progress=True,
    )
    assert "tau" not in logs[-1]
    path = export_backbone(method, tmp_path / "backbone.pt")
    sd = torch.load(path, weights_only=True)
    assert set(sd) == {"backbone.fc.weight", "backbone.fc.bias"}
    assert torch.equal(sd["backbone.fc.weight"], method.backbone.fc.weight)


def test_data_fn_exhaustion_is_clear(tmp_path):
    import pytest

    train, optim = configs()
    with pytest.raises(RuntimeError, match="ran out of batches at step 3"):
        fit(
            ToyRegression(),
            make_data_fn(limit=3),
            train,
            optim,
            tmp_path,
            total_steps=5,
            progress=False,
        )


def test_autocast_modes_run_on_cpu(tmp_path):
    for amp in ("bf16", "fp16"):
        train, optim = configs(amp=amp, max_steps=3)
        res = fit(
            ToyEMA(), make_data_fn(), train, optim, tmp_path / amp, total_steps=6, progress=False
        )
        assert res.step == 3
        ckpt = load_checkpoint(res.checkpoint)
        assert bool(ckpt["scaler"]) == (amp == "fp16")  # the GradScaler state is saved with fp16
    train = train.model_copy(update={"max_steps": None})
    resumed = fit(
        ToyEMA(), make_data_fn(), train, optim, tmp_path / "fp16", total_steps=6, progress=False
    )
    assert resumed.step == 6 and len(resumed.loss_history) == 6


def _signalling_data_fn(sig, at_steps, seed=1, times=1):
    import os

    inner = make_data_fn(seed=seed)

    def data_fn(start):
        for step, batch in enumerate(inner(start), start):
            if step in at_steps:
                for _ in range(times):
                    os.kill(os.getpid(), sig)
            yield batch

    return data_fn


def test_ctrl_c_stops_at_a_step_boundary_with_a_checkpoint(tmp_path):
    # issue 11 item 2: only SIGTERM was handled; Ctrl-C lost every step since the last checkpoint.
    import signal

    train, optim = configs(ckpt_every=1000)
    data = _signalling_data_fn(signal.SIGINT, {5})
    res = fit(ToyRegression(), data, train, optim, tmp_path, total_steps=20, progress=False)
    assert res.stop_reason == "signal" and res.stopped_on_budget
    assert load_checkpoint(tmp_path / "last.pt")["step"] == res.step == 6


def test_second_ctrl_c_aborts_at_once(tmp_path):
    import signal

    import pytest

    train, optim = configs(ckpt_every=1000)
    data = _signalling_data_fn(signal.SIGINT, {3}, times=2)
    with pytest.raises(KeyboardInterrupt):
        fit(ToyRegression(), data, train, optim, tmp_path, total_steps=20, progress=False)


def test_lr_zero_runs_forward_passes_that_end_where_full_steps_do(tmp_path, monkeypatch):
    # The BN-calibrated baseline trains at lr 0: forward passes only, same weights and statistics.
    optim = OptimConfig(name="adamw", base_lr=0.0, min_lr=0.0, warmup_steps=0, clip_grad=1.0)
    train, _ = configs()
    init = TrainingSession.__init__

    def without_shortcut(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.forward_only = False

    ends, grads = {}, {}
    for full_steps in (False, True):
        if full_steps:
            monkeypatch.setattr(TrainingSession, "__init__", without_shortcut)
        torch.manual_seed(0)
        method = ToyEMA(bn=True)
        start = {k: v.clone() for k, v in method.state_dict().items()}
        workdir = tmp_path / str(full_steps)
        fit(method, make_data_fn(), train, optim, workdir, total_steps=6, progress=False)
        ends[full_steps] = method.state_dict()
        grads[full_steps] = any(p.grad is not None for p in method.parameters())
    assert grads == {False: False, True: True}  # the shortcut ran no backward pass
    moved = [k for k in start if not torch.equal(start[k], ends[False][k])]
    assert "backbone.norm.running_mean" in moved and "target.norm.running_var" in moved
    assert not [k for k in moved if k.endswith(("weight", "bias"))]
    assert all(torch.equal(ends[False][k], ends[True][k]) for k in start)
