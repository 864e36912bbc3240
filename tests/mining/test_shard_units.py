"""The per-shard units: only the units without a file are computed, in order."""

from types import SimpleNamespace

from correlearn.mining.shard_units import compute_pending, shard_units, unit_call
from correlearn.stage import UnitMap


def test_compute_pending_skips_done_units_and_reports_them(tmp_path):
    ran, lines = [], []

    def run_unit(call, unit):
        ran.append(unit)
        path = tmp_path / f"{unit}.part"
        path.write_text(unit)
        return path

    units = UnitMap(
        names=lambda call: ["s0", "s1", "s2"],
        done_file=lambda call, unit: call.partial / f"{unit}.part",
        run_unit=run_unit,
    )
    (tmp_path / "s1.part").write_text("mapped before")
    ctx = SimpleNamespace(
        spec=SimpleNamespace(name="toy"), config=None, resolved={}, inputs={},
        out_dir=tmp_path, base_dir=tmp_path, info=lines.append,
    )  # fmt: skip
    assert unit_call(ctx).partial == tmp_path and unit_call(ctx).stage == "toy"
    assert compute_pending(ctx, units, verb="proposed") == (["s0", "s1", "s2"], ["s1"])
    assert ran == ["s0", "s2"] and (tmp_path / "s1.part").read_text() == "mapped before"
    assert lines[0] == "1/3 shard(s) already proposed; skipping them"
    assert compute_pending(ctx, units)[1] == ["s0", "s1", "s2"] and ran == ["s0", "s2"]


def test_shard_units_name_each_shard_file_in_the_partial_folder(tmp_path):
    units = shard_units(lambda shard: f"boxes-{shard}.parquet", lambda call, shard: None)
    call = SimpleNamespace(partial=tmp_path)
    assert units.done_file(call, "shard-000001") == tmp_path / "boxes-shard-000001.parquet"
