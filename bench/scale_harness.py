"""The measuring harness of ``bench/scale.py``: one fresh process per point, slopes, tables.

Every point runs in a fresh child process, forked from a ``forkserver`` that has only imported the
heavy modules (:data:`PRELOAD`; a child then starts in a fraction of a second instead of the
seconds a torch import takes on a busy CPU) and shares no memory with the parent or with the other
points. The job's set-up (imports, data, models) runs first and is not timed;
then the child resets its peak-RSS counter (``/proc/self/clear_refs`` 5, Linux) and times the
job's timed part. It reports the wall time, the peak RSS of the timed part (``VmHWM``), its growth
over the RSS at the start of the timed part, the peak RSS of its own worker processes
(``RUSAGE_CHILDREN``: selective-search pool, data-loader workers) and the 1-minute load average.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue as queue_mod
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Imported once by the fork server, inherited by every child (imports only: no threads started).
PRELOAD = ["numpy", "cv2", "faiss", "torch", "torchvision", "pyarrow.parquet"]

#: A job builds its inputs (untimed) and returns the callable that is timed.
Job = Callable[..., Callable[[], Any]]


@dataclass
class Point:
    """One measured size of one row.

    Attributes:
        n: the size (images, frames or vectors).
        seconds: wall time of the timed part.
        peak_mib: peak RSS of the child during the timed part.
        growth_mib: ``peak_mib`` minus the RSS when the timed part started.
        workers_mib: largest peak RSS of the child's own worker processes (0: none).
        load1: 1-minute load average when the point finished.
        extra: what the timed callable returned.
    """

    n: int
    seconds: float
    peak_mib: float
    growth_mib: float
    workers_mib: float
    load1: float
    extra: Any = None


@dataclass
class Row:
    """One line of a table: a name and its points (all sizes), with an optional note."""

    name: str
    points: list[Point]
    note: str = ""
    memory: bool = True  # False: a breakdown line that shares its parent row's process
    seconds: list[float] = field(default_factory=list)  # overrides the points' seconds

    def secs(self) -> list[float]:
        """The seconds of each point (the override when given)."""
        return self.seconds or [p.seconds for p in self.points]


def _status_kib(name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> int:
    """Reset this process's peak RSS to its current RSS (Linux); returns the RSS in KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # not Linux, or not allowed: the peak then includes the set-up
        pass
    return _status_kib("VmRSS")


def set_threads(threads: int) -> None:
    """Intra-op threads of torch, FAISS and OpenCV, for whichever of them is imported."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(threads)


def _child(job: Job, args: tuple, threads: int, out: mp.Queue) -> None:
    # The child inherits "forkserver" as its default start method; a process started from the
    # shell (the CLI, a flow) has the platform default, which the stage's data-loader workers use.
    mp.set_start_method(None, force=True)
    try:
        timed = job(*args)
        set_threads(threads)
        gc.collect()
        rss0 = _reset_peak()
        t0 = time.perf_counter()
        extra = timed()
        sec = time.perf_counter() - t0
        peak = max(_status_kib("VmHWM"), rss0)
        workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out.put(("ok", (sec, peak / 1024, (peak - rss0) / 1024, workers / 1024), extra))
    except BaseException:  # noqa: BLE001 - the parent re-raises it with the child's traceback
        out.put(("error", traceback.format_exc(), None))


def in_child(job: Job, n: int, *args: Any, threads: int = 1) -> Point:
    """Run ``job(n, *args)`` in a fresh process and time the callable it returns.

    Args:
        job: a module-level function (picklable by name) returning the timed callable.
        n: the size; the first argument of ``job``.
        *args: further arguments of ``job``.
        threads: torch / FAISS / OpenCV threads in the child.

    Returns:
        The measured point.

    Raises:
        RuntimeError: the job failed (with the child's traceback) or the child died.
    """
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # no effect once the server runs: the same list anyway
    out = ctx.Queue()
    proc = ctx.Process(target=_child, args=(job, (n, *args), threads, out))
    proc.start()
    while True:
        try:
            status, payload, extra = out.get(timeout=5)
            break
        except queue_mod.Empty:
            if not proc.is_alive():
                msg = f"{job.__name__}({n}): child died, exit code {proc.exitcode}"
                raise RuntimeError(msg) from None
    proc.join()
    if status == "error":
        raise RuntimeError(f"{job.__name__}({n}) failed in its child:\n{payload}")
    sec, peak, growth, workers = payload
    return Point(n, sec, peak, growth, workers, os.getloadavg()[0], extra)


def baseline_job(_n: int):
    """Nothing: the RSS of a child with only the preloaded modules (its peak is the baseline)."""
    return lambda: None


def fitted_slope(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(sizes): 1 is linear, 2 quadratic."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def linear_fit(sizes: list[int], seconds: list[float]) -> str:
    """``seconds ~ a + b * size`` by least squares, as ``"a s + b ms"`` (b per item)."""
    b, a = np.polyfit(np.asarray(sizes, dtype=float), seconds, 1)
    ms = b * 1e3
    return f"{a:.2f} s + {ms:,.0f} ms" if abs(ms) >= 100 else f"{a:.2f} s + {ms:.3g} ms"


def baseline_mib() -> float:
    """RSS of a child that has only the preloaded modules (what every peak below includes)."""
    return in_child(baseline_job, 0).peak_mib


def load_line() -> str:
    """The load average and core count, for the figures' context."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min), {os.cpu_count()} CPU cores"


def _join(values: list[float], fmt: str) -> str:
    return " / ".join(format(v, fmt) for v in values)


def print_table(title: str, rows: list[Row]) -> None:
    """One markdown table: sizes, seconds, memory, load and both slopes of each row.

    Args:
        title: the heading line (settings of the family).
        rows: the rows, each with three (or more) points.
    """
    print(f"\n### {title}\n")
    print(
        "| stage | sizes | seconds | peak RSS MiB | growth MiB | load (1 min) "
        "| slope | slope 4x->16x | a + b x item |"
    )
    print("|---|---|---|---|---|---|---:|---:|---:|")
    for r in rows:
        ns, secs = [p.n for p in r.points], r.secs()
        mem = r.memory
        print(
            f"| {r.name} | {_join(ns, ',')} | {_join(secs, '.2f')} "
            f"| {_join([p.peak_mib for p in r.points], ',.0f') if mem else '-'} "
            f"| {_join([p.growth_mib for p in r.points], ',.0f') if mem else '-'} "
            f"| {_join([p.load1 for p in r.points], '.1f') if mem else '-'} "
            f"| {fitted_slope(ns, secs):.2f} | {fitted_slope(ns[-2:], secs[-2:]):.2f} "
            f"| {linear_fit(ns, secs)} |"
        )
    for r in rows:
        if r.note:
            print(f"- {r.name}: {r.note}")
    print(f"- {load_line()} after the table")
