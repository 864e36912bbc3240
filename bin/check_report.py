#!/usr/bin/env python3
"""Render a run report in headless Chromium and check it (``make check-report``).

Takes the newest ``$CORRELEARN_HOME/reports/*.html`` (or the file given), then:

1. ``--dump-dom``: the rendered DOM must hold the report's section ids
   (:data:`correlearn.report.SECTION_IDS`: ``summary``, ``stages``, ``jf``, ``loss-curves``,
   ``pictures``) and at least ``--min-images`` embedded images;
2. ``--screenshot`` (1280 px wide): the picture must not be blank (enough distinct colours and
   contrast).

``--save PATH`` copies the screenshot (e.g. ``docs/report.png``, shown in docs/operate.md). Exit
status 0 when every check passes, 1 otherwise, 2 when no report or no Chromium is found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from correlearn.report import SECTION_IDS as REQUIRED_IDS

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.images = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "img" and (a.get("src") or "").startswith("data:image/png;base64,"):
            self.images += 1


def newest_report(home: Path) -> Path | None:
    """The newest timestamped report under ``home/reports`` (``latest-*`` are copies)."""
    reports = [p for p in (home / "reports").glob("*.html") if not p.name.startswith("latest-")]
    return max(reports, key=lambda p: p.stat().st_mtime, default=None)


def find_browser() -> str | None:
    """The first Chromium-like executable on PATH (``$CHROMIUM`` wins)."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def _chromium(browser: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def blank_stats(png: Path) -> tuple[int, float]:
    """(distinct colours, grey-level standard deviation) of a screenshot."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"))
    colours = len(np.unique(rgb.reshape(-1, 3)[::7], axis=0))
    return colours, float(rgb.mean(axis=2).std())


def check(
    report: Path, browser: str, screenshot: Path, min_images: int = 1, timeout: float = 180.0
) -> list[str]:
    """Render ``report``; returns the failed checks (empty: all passed)."""
    url = report.resolve().as_uri()
    problems = []
    dom = _chromium(browser, ["--dump-dom", url], timeout)
    parser = _Ids()
    parser.feed(dom.stdout)
    missing = [i for i in REQUIRED_IDS if i not in parser.ids]
    if dom.returncode != 0 or missing:
        problems.append(f"DOM: missing section ids {missing} (chromium exit {dom.returncode})")
    if parser.images < min_images:
        problems.append(f"DOM: {parser.images} embedded images, expected >= {min_images}")
    shot = _chromium(
        browser, [f"--screenshot={screenshot}", "--window-size=1280,2000", url], timeout
    )
    if not screenshot.is_file():
        problems.append(f"no screenshot (chromium exit {shot.returncode}): {shot.stderr[-500:]}")
        return problems
    colours, std = blank_stats(screenshot)
    if colours < 16 or std < 8.0:
        problems.append(f"screenshot looks blank: {colours} colours, std {std:.1f}")
    print(
        f"{report.name}: ids {sorted(parser.ids & set(REQUIRED_IDS) | parser.ids & {'demo-table'})}, "
        f"{parser.images} images; screenshot {screenshot} ({colours} colours, std {std:.1f})"
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line: ``check_report.py [REPORT] [--save PATH] [--min-images N]``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", nargs="?", help="an HTML report (default: the newest one)")
    ap.add_argument("--save", help="copy the screenshot here (e.g. docs/report.png)")
    ap.add_argument("--min-images", type=int, default=1)
    args = ap.parse_args(argv)
    home = Path(os.environ.get("CORRELEARN_HOME") or ".correlearn").expanduser().resolve()
    report = Path(args.report) if args.report else newest_report(home)
    if report is None or not report.is_file():
        print(f"no report under {home / 'reports'}: run a flow first", file=sys.stderr)
        return 2
    browser = find_browser()
    if browser is None:
        print("no Chromium found: apt-get install chromium (or set CHROMIUM)", file=sys.stderr)
        return 2
    screenshot = report.with_suffix(".png")
    problems = check(report, browser, screenshot, args.min_images)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    if args.save and screenshot.is_file():
        from PIL import Image

        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        with Image.open(screenshot) as im:  # palette PNG: a third of the size, for the docs
            im.convert("RGB").quantize(256).save(args.save, optimize=True)
        print(f"saved {args.save}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
