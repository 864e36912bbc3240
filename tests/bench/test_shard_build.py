"""bench/shard_build.py at a tiny size: every row is built, read back and printed."""

import pytest
import shard_build


def _rows(out: str, first: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first}"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_tiny_run_prints_the_three_tables(shared_davis, capsys):
    shard_build.main(["--root", str(shared_davis), "--images", "6", "--videos", "1",
                      "--workers", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert "CPU cores; load average" in out
    builds = _rows(out, "build")
    assert [r[0] for r in builds] == list(shard_build.IMAGE_ROWS)  # the first build table
    layouts = _rows(out, "layout")
    assert [r[0] for r in layouts] == [n.removeprefix("videos, ") for n in shard_build.VIDEO_ROWS]
    assert layouts[0][1].endswith("(1.00x)") and layouts[0][3].endswith("(1.00x)")
    # The encoded layout stores far fewer bytes than JPEG frames at their full size.
    ratio = float(layouts[2][1].split("(")[1].rstrip("x)"))
    assert ratio < 0.5


def test_a_missing_root_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        shard_build.main(["--root", str(tmp_path / "nope")])
    assert capsys.readouterr().out.startswith(f"error: --root: {tmp_path / 'nope'}")
