"""bench/gpu.py without a GPU: the models build, one CPU step runs, and failures are reported."""

import gpu
import pytest
import workloads

FAST = "vfs_r18,cim_vit_s16"  # one ResNet and one ViT method: the CPU check of two models


def test_cpu_check_builds_and_steps(capsys):
    assert gpu.main(["--cpu", "--only", FAST, "--cpu-size", "32"]) == 0
    out = capsys.readouterr().out
    rows = [
        line
        for line in out.splitlines()
        if line.startswith("| VFS R18") or line.startswith("| CIM ViT-S/16")
    ]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[-1] == "ok"
        assert float(cells[3]) > 0  # FLOPs were counted
    assert "BYOL batches" in out and "CPU check passed" in out


def test_a_failing_model_is_reported_and_fails(monkeypatch, capsys):
    real = workloads.make_batch

    def broken(method, batch, gen):
        if type(method).__name__ == "VFS":
            raise RuntimeError("shape mismatch")
        return real(method, batch, gen)

    monkeypatch.setattr(gpu, "make_batch", broken)
    assert gpu.main(["--cpu", "--only", "vfs_r18,vfs_r50", "--cpu-size", "32"]) == 1
    out = capsys.readouterr().out
    assert "| VFS R18 | | | | FAILED: RuntimeError: shape mismatch |" in out
    assert "| VFS R50 | | | | FAILED: RuntimeError: shape mismatch |" in out
    assert "error: 2 model(s) failed" in out and "CPU check passed" not in out


def test_unknown_workload_is_a_one_line_error(capsys):
    assert gpu.main(["--only", "vfs_r18,resnet9000"]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"error: --only: unknown workloads ['resnet9000']; known: {sorted(workloads.WORKLOADS)}"
    ]


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA A100-SXM4-40GB", 312e12),
        ("NVIDIA A10", 125e12),
        ("Tesla T4", None),
    ],
)
def test_peak_table_matches_the_most_specific_name(name, peak):
    assert gpu.peak_flops(name) == peak
