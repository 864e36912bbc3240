"""Body of one process of the 2-process gloo test (importable by torch.multiprocessing.spawn)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from correlearn.train import OptimConfig, TrainConfig, fit
from correlearn.train import distributed as D

from .toys import ToyEMA, make_data_fn


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        # Every rank is a client of the store the test process hosts (torchrun's topology).
        TORCHELASTIC_USE_AGENT_STORE="True",
    )
    t0 = time.time()
    torch.set_num_threads(1)
    # A generous timeout: on 2 loaded CI cores a rank can wait minutes for its peer.
    info = D.init_distributed(device="cpu", timeout_minutes=10)
    assert info.world_size == world and D.get_rank() == rank and D.is_main() == (rank == 0)
    torch.manual_seed(rank)  # different inits: DDP must broadcast rank 0's weights
    method = ToyEMA(bn=True, dropout=0.1)
    data = make_data_fn(seed=D.rank_seed(0), batch=8)
    first = next(iter(data(0)))["x"]
    train = TrainConfig(batch_size=8, epochs=1, device="cpu", log_every=1, ckpt_every=2)
    optim = OptimConfig(name="sgd", base_lr=0.5, warmup_steps=0)
    logs = []
    res = fit(
        method,
        data,
        train,
        optim,
        Path(out) / "run",
        total_steps=3,
        log_fn=lambda m, s: logs.append(s),
        progress=False,
    )
    # Parameters (online and EMA target); BN running stats are per-rank until DDP's next
    # forward broadcasts rank 0's.
    flat = torch.cat([p.detach().flatten() for p in method.parameters()])
    torch.save(
        {
            "params": flat,
            "first_x": first,
            "logs": logs,
            "step": res.step,
            "history": res.loss_history,
            "seconds": time.time() - t0,
        },
        Path(out) / f"rank{rank}.pt",
    )
    # On the success path only: a rank that raised must not wait at the teardown barrier.
    D.destroy_distributed()
