import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from correlearn.train.checkpoint import load_checkpoint
from correlearn.train.distributed import get_rank, get_world_size, is_main, torchrun_command

from .dist_worker import worker


def test_single_process_defaults():
    assert get_rank() == 0 and get_world_size() == 1 and is_main()


def test_torchrun_command_lines():
    cmd = torchrun_command(["-m", "app.cli", "run", "x"], nproc=4, python="py")
    assert cmd[:3] == ["py", "-m", "torch.distributed.run"]
    assert cmd[3:5] == ["--nproc_per_node", "4"] and "--standalone" in cmd
    assert cmd[-4:] == ["-m", "app.cli", "run", "x"]
    multi = torchrun_command(
        ["train.py"], nproc=8, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=1234
    )
    assert multi[0] == sys.executable and "--standalone" not in multi
    for a, b in [
        ("--nnodes", "2"),
        ("--node_rank", "1"),
        ("--master_addr", "10.0.0.1"),
        ("--master_port", "1234"),
    ]:
        assert multi[multi.index(a) + 1] == b
    assert multi[-1] == "train.py"


def test_two_process_gloo_keeps_ranks_in_sync(tmp_path):
    # This process hosts the rendezvous store, as torchrun's agent does, so that it outlives
    # both ranks: a store hosted by rank 0 dies when rank 0 exits first, and a peer still tearing
    # down its gloo group then aborts (SIGABRT). Port 0: the store binds a free port itself.
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    # spawn, not fork: earlier tests leave Prefect, MLflow and Dask threads running in this
    # process, and a forked child of a multi-threaded process can die on a lock held by one.
    mp.start_processes(worker, args=(2, store.port, str(tmp_path)), nprocs=2, start_method="spawn")
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert not torch.equal(r0["first_x"], r1["first_x"])  # each rank saw its own data
    assert torch.allclose(r0["params"], r1["params"], atol=1e-6, rtol=0)  # DDP kept them equal
    assert r0["step"] == r1["step"] == 3
    assert r0["logs"] == [0, 1, 2] and r1["logs"] == []  # only rank 0 logs
    assert r0["history"] == r1["history"]  # logged losses are means over ranks
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["step"] == 3 and ckpt["world_size"] == 2 and len(ckpt["rng_per_rank"]) == 2
