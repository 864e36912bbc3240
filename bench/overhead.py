"""Framework overhead: a training step through our loop against a bare PyTorch loop, per method.

Both loops train the same method (a copy of the same initial weights) on the same batch, with the
same optimiser (``build_optimizer`` of the method's recipe):

- ours: :func:`correlearn.train.loop.fit` exactly as the training stages call it: per-step lr
  schedule, autocast context (fp32 on CPU), loss scalars kept on the device, EMA update with the
  cosine tau, window flush every ``log_every`` (20) steps with the metrics sent to a real MLflow
  store (sqlite, as ``correlearn`` uses it), the progress bar, budget and signal checks,
  ``isolated_rng`` around every batch fetch, and checkpoints at the default cadence
  (``ckpt_every`` 1000: the final checkpoint is timed and amortised over 1000 steps).
- bare: ``loss = method.training_step(batch)["loss"]; zero_grad; backward; step;
  momentum_update(tau)``: what any reference code does at the least.

The step time is the interval between two batch fetches (the data function stamps the clock, so
both loops are timed at the same point of the step); the mean over a round includes the flushes.
Rounds alternate ours and bare, so the machine's changing load hits both alike; the overhead is
the median over rounds of (ours - bare) / bare, by wall clock and by process CPU time (which a
loaded machine disturbs less).

On a shared machine that direct difference of two ~0.5 s steps is noisy (a few percent either
way). The loop's own cost does not depend on the model (a few scalars per loss, the lr of each
param group, the flush, the bar), so it is also measured directly: the same two loops around a
probe model (one 8x8 linear layer with an EMA copy, two named losses) whose step costs almost
nothing, over many steps. Its per-step difference in milliseconds, divided by each method's bare
step time, is the "loop cost" column: the overhead with the noise of the big model taken out.

    python bench/overhead.py [--methods byol,orl,cim,vfs,siammae] [--steps 10] [--rounds 3]
                             [--size 64] [--batch 4] [--log mlflow|none]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from correlearn.methods.base import Method
from correlearn.train.checkpoint import seed_everything
from correlearn.train.config import OptimConfig, TrainConfig
from correlearn.train.loop import fit
from correlearn.train.optim import build_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import WORKLOADS, build, make_batch, optim_config, tiny_overrides  # noqa: E402

# One small workload per method: the paper's architecture family at CPU size.
CPU_WORKLOADS = {
    "byol": ("byol_r50", {"backbone": "resnet18", "proj_hidden_dim": 1024}),
    "orl": ("orl_r50", {"backbone": "resnet18", "proj_hidden_dim": 1024}),
    "cim": ("cim_vit_s16", {}),
    "vfs": ("vfs_r18", {"sampler": {"kind": "distant", "n": 4}}),
    "siammae": ("siammae_vit_s16", {"decoder_dim": 256, "decoder_depth": 2, "decoder_heads": 8}),
}


class Stamps:
    """Clock readings (wall, process CPU) at every batch fetch of a data function."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def data_fn(self, batch: dict[str, torch.Tensor]):
        def fn(start: int):
            while True:
                self.wall.append(time.perf_counter())
                self.cpu.append(time.process_time())
                yield batch

        return fn

    def per_step(self, skip: int) -> tuple[float, float]:
        """Mean (wall, CPU) seconds per step after ``skip`` warm-up steps."""
        w, c = self.wall[skip:], self.cpu[skip:]
        n = len(w) - 1
        return (w[-1] - w[0]) / n, (c[-1] - c[0]) / n


class Probe(Method):
    """A near-zero-cost method: one linear layer, an EMA copy, two named losses."""

    base_tau = 0.99

    def __init__(self) -> None:
        super().__init__()
        self.backbone = torch.nn.Linear(8, 8)
        self.target = copy.deepcopy(self.backbone).requires_grad_(False)

    def training_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["x"]
        loss = (self.backbone(x) - self.target(x)).square().mean() + self.backbone(x).mean()
        return {"loss": loss, "loss_aux": loss.detach()}

    def ema_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return [(self.backbone, self.target)]


def loop_cost_ms(args, log_fn) -> float:
    """Per-step wall ms that ``fit`` adds to the bare loop around :class:`Probe` (median)."""
    batch = {"x": torch.randn(args.batch, 8, generator=torch.Generator().manual_seed(0))}
    sub = argparse.Namespace(**{**vars(args), "steps": args.probe_steps, "warmup": 20})
    diffs = []
    for _ in range(args.rounds):
        seed_everything(0)
        b_wall, _ = bare(Probe(), batch, None, sub)
        seed_everything(0)
        o_wall, _, _ = ours(Probe(), batch, None, sub, log_fn)
        diffs.append((o_wall - b_wall) * 1e3)
    return statistics.median(diffs)


def mlflow_logger(root: Path):
    """``log_fn`` writing metrics to an MLflow sqlite store, as the training stages do."""
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root}/mlflow.db")
    exp = client.create_experiment("overhead", artifact_location=str(root / "art"))
    run_id = client.create_run(exp).info.run_id

    def log_fn(metrics: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        client.log_batch(run_id, metrics=items)

    return log_fn


def ours(method, batch, work, args, log_fn) -> tuple[float, float, float]:
    """Mean (wall, CPU) s/step through ``fit`` and the final checkpoint's wall seconds."""
    stamps = Stamps()
    steps = args.steps + args.warmup + 1
    cfg = TrainConfig(batch_size=args.batch, epochs=1, device="cpu", seed=0)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):
        fit(method, stamps.data_fn(batch), cfg, _optim(work), tmp, log_fn,
            total_steps=steps, progress=True)  # fmt: skip
        t_end = time.perf_counter()
    wall, cpu = stamps.per_step(args.warmup)
    # The last interval (last fetch -> return) is one step, a flush and the final checkpoint.
    ckpt = max(0.0, t_end - stamps.wall[-1] - wall)
    return wall, cpu, ckpt


def bare(method, batch, work, args) -> tuple[float, float]:
    """Mean (wall, CPU) s/step of the plain forward / backward / step / EMA loop."""
    stamps = Stamps()
    opt, _ = build_optimizer(method, _optim(work), args.batch, 1)
    has_ema = bool(method.ema_pairs())
    method.train()
    batches = stamps.data_fn(batch)(0)
    for _ in range(args.steps + args.warmup + 1):
        b = next(batches)
        loss = method.training_step(b)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if has_ema:
            method.momentum_update(0.996)
    next(batches)
    return stamps.per_step(args.warmup)


def measure(name: str, args, log_fn) -> dict[str, float]:
    key, extra = CPU_WORKLOADS[name]
    work = WORKLOADS[key]
    seed_everything(0)
    base = build(work, {**tiny_overrides(work, args.size), **extra})
    batch = make_batch(base, args.batch, torch.Generator().manual_seed(0))
    rows = []
    for _ in range(args.rounds):
        seed_everything(0)
        b_wall, b_cpu = bare(copy.deepcopy(base), batch, work, args)
        seed_everything(0)
        o_wall, o_cpu, ckpt = ours(copy.deepcopy(base), batch, work, args, log_fn)
        rows.append((o_wall, b_wall, o_cpu, b_cpu, ckpt))
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    o_wall, b_wall, o_cpu, b_cpu, ckpt = med
    amort = ckpt / TrainConfig().ckpt_every
    return {
        "ours_ms": o_wall * 1e3,
        "bare_ms": b_wall * 1e3,
        "wall_pct": statistics.median((r[0] - r[1]) / r[1] for r in rows) * 100,
        "cpu_pct": statistics.median((r[2] - r[3]) / r[3] for r in rows) * 100,
        "ckpt_s": ckpt,
        "amort_pct": amort / b_wall * 100,
        "label": f"{work.method} ({base.cfg.backbone})",
    }


def _optim(work):
    # The probe has no recipe: plain SGD.
    return optim_config(work) if work is not None else OptimConfig(name="sgd", warmup_epochs=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(CPU_WORKLOADS))
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="image side (px)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--probe-steps", type=int, default=400, help="timed steps of the probe")
    ap.add_argument("--log", choices=("mlflow", "none"), default="mlflow")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(names) - set(CPU_WORKLOADS))
    if unknown:
        print(f"error: --methods: unknown {unknown}; known: {sorted(CPU_WORKLOADS)}")
        raise SystemExit(2)
    with tempfile.TemporaryDirectory() as tmp:
        log_fn = mlflow_logger(Path(tmp)) if args.log == "mlflow" else None
        cost_ms = loop_cost_ms(args, log_fn)
        results = [measure(n, args, log_fn) for n in names]
    print(
        f"\nFramework overhead, CPU, {args.threads} thread(s), batch {args.batch}, {args.size} px, "
        f"{args.steps} steps x {args.rounds} rounds (median), logging: {args.log}\n"
    )
    print(f"loop cost (probe model, {args.probe_steps} steps): {cost_ms:.3f} ms/step\n")
    print("| method | bare ms/step | ours ms/step | direct wall | direct CPU | loop cost | "
          "final ckpt s | ckpt / 1000 steps |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['label']} | {r['bare_ms']:.1f} | {r['ours_ms']:.1f} | {r['wall_pct']:+.1f}% | "
            f"{r['cpu_pct']:+.1f}% | {cost_ms / r['bare_ms'] * 100:+.2f}% | {r['ckpt_s']:.2f} | "
            f"{r['amort_pct']:+.2f}% |"
        )


if __name__ == "__main__":
    main()
