"""The held-out pretext metric of a training stage: its own task, on videos it never trains on.

A training stage with ``val.dataset`` set reads that DAVIS-layout (or frame-folder) dataset once,
has its method's held-out builder (:attr:`~correlearn.pretrain.spec.MethodSpec.heldout`) draw fixed
batches from it with a seeded RNG (the training views, pairs, crops and masks, frozen), and scores
the method on them with :meth:`~correlearn.methods.base.Method.pretext_metrics`: at step 0, every
``val.every`` steps (an MLflow curve), and at the end (the manifest), beside the untrained init at
``val.init_seeds`` (their spread is the noise floor) and the trivial predictors of
:meth:`~correlearn.methods.base.Method.pretext_baselines`.

Scoring runs in eval mode, without gradients, with the global RNGs forked, and restores every
module's training flag: it changes neither the weights, nor the BatchNorm statistics, nor the
random stream of training (a run with ``val.every`` trains bit-identical weights). With
``val.batch_norm: batch`` BatchNorm normalises each held-out batch by its own statistics, as the
loss sees it in training, and its running statistics are put back afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn
from tqdm.auto import tqdm

from correlearn.artifacts import write_json_atomic
from correlearn.config import IN_KEY_UNLESS_DEFAULT, NOT_IN_KEY, ConfigError, StrictModel
from correlearn.data.sources import DatasetSpec, list_videos
from correlearn.data.video_frames import read_video
from correlearn.pretrain.heldout_data import frame_box, memory_images, memory_videos
from correlearn.pretrain.spec import TrainingData
from correlearn.train import distributed as D
from correlearn.train.rng import isolated_rng, seed_everything


class HeldoutConfig(StrictModel):
    """``val:`` of a training stage: the held-out set of its pretext metric.

    Attributes:
        dataset: a DAVIS-layout or frame-folder dataset under ``datasets:`` that the stage does not
            train on (a sequence shared with the training data is an error); None: no metric.
        every: also score every this many steps (an MLflow curve); the end and step 0 always.
        max_short_side: frames are downscaled to this short side, as the training shards are.
        frame_step: image methods take every k-th frame of each held-out video as an image.
        max_images: at most this many held-out images, evenly spread over the videos.
        rounds: video methods draw every held-out video this many times (one batch per round).
        batch_size: images per forward batch of the image methods.
        seed: seed of the held-out draw (views, crops, exemplars, frame pairs, masks).
        init_seeds: the untrained init is scored at each of these seeds.
        batch_norm: what BatchNorm normalises the held-out batches with: ``running``, the running
            statistics (eval mode, as a downstream user runs the model); ``batch``, each held-out
            batch's own statistics, as the loss sees them in training. ``batch`` scores depend on
            the held-out batch size (``batch_size``).
    """

    dataset: str | None = None
    every: int | None = Field(None, ge=1, json_schema_extra=NOT_IN_KEY)
    max_short_side: int = Field(256, ge=16)
    frame_step: int = Field(3, ge=1)
    max_images: int = Field(128, ge=2)
    rounds: int = Field(8, ge=1)
    batch_size: int = Field(32, ge=1)
    seed: int = Field(0, ge=0)
    init_seeds: list[int] = Field(default_factory=lambda: [0, 1])
    batch_norm: Literal["running", "batch"] = Field(
        "running", json_schema_extra=IN_KEY_UNLESS_DEFAULT
    )


def open_heldout(dataset: DatasetSpec, base: Path, cfg: HeldoutConfig) -> TrainingData:
    """Read the held-out videos into memory: ``videos``, ``video_ids``, ``images``, ``boxes``, ``groups``.

    Images are every ``frame_step``-th frame, thinned evenly to ``max_images``; each carries the
    box of its DAVIS mask (the whole frame without one), the object an RoI metric looks at, and
    its video's position as its group (retrieval leaves same-video near-duplicates out).
    """
    items = list_videos(dataset, base)
    clips = []
    for item in tqdm(items, desc="held-out videos", leave=False, disable=len(items) < 8):
        frames = read_video(item, cfg.max_short_side, None, as_jpeg=False).frames
        clips.append((item, frames))
    videos = memory_videos([(it.key, frames, it.fps) for it, frames in clips])
    picks = [(v, t) for v, (_, fr) in enumerate(clips) for t in range(0, len(fr), cfg.frame_step)]
    keep = np.linspace(0, len(picks) - 1, min(cfg.max_images, len(picks))).round().astype(int)
    chosen = [picks[i] for i in sorted(set(keep.tolist()))]
    images = memory_images(
        [f"{clips[v][0].key}/{t:05d}" for v, t in chosen], [clips[v][1][t] for v, t in chosen]
    )
    boxes = [frame_box(clips[v][0], t, clips[v][1][t].shape[:2]) for v, t in chosen]
    return TrainingData(
        len(images),
        {
            "videos": videos,
            "video_ids": list(range(len(clips))),
            "images": images,
            "boxes": boxes,
            "groups": [v for v, _ in chosen],
        },
    )


def sequences_of(keys: list[str]) -> set[str]:
    """Item keys and the sequences they belong to.

    Frame items of DAVIS and frame-folder datasets are keyed ``<sequence>/<frame>`` and videos
    ``<sequence>`` (:mod:`correlearn.data.sources`), so this set holds every sequence a data set
    draws from, however it was keyed.
    """
    return set(keys) | {k.split("/", 1)[0] for k in keys}


def check_disjoint(heldout: TrainingData, training_keys: list[str], where: str) -> None:
    """Refuse a held-out set that shares an item or a sequence with the training data.

    Raises:
        ConfigError: ``where: held-out <key> is also a training item``.
    """
    held = sequences_of(list(heldout["videos"].keys) + list(heldout["images"].keys))
    shared = sorted(held & sequences_of(list(training_keys)))
    if shared:
        raise ConfigError(
            f"{where}: held-out {shared[0]!r} is also in the training data "
            f"({len(shared)} shared); the pretext metric must be scored on unseen sequences"
        )


INIT_FILE = "pretext_init.json"  # beside the curve: the inits' scores, computed once


@dataclass
class HeldoutEval:
    """Fixed held-out batches and the scores of a method on them.

    Attributes:
        batches: the held-out batches (CPU tensors), drawn once.
        curve: ``(step, scores)`` of every scoring so far.
    """

    batches: list[dict[str, Any]]
    curve: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    path: Path | None = None
    batch_norm: str = "running"

    def resume(self, path: Path, step: int) -> HeldoutEval:
        """Keep the curve in ``path`` (JSON), continuing its points up to ``step``."""
        self.path = path
        if path.is_file():
            points = json.loads(path.read_text())
            self.curve = [(p["step"], p["scores"]) for p in points if p["step"] <= step]
        return self

    @classmethod
    def draw(cls, build: Callable, data: TrainingData, cfg: Any) -> HeldoutEval:
        """Draw the batches with ``build(data, cfg, rng)`` from an RNG seeded by ``cfg.val.seed``."""
        with isolated_rng():
            batches = build(data, cfg, np.random.default_rng(cfg.val.seed))
        tensors = [{k: v for k, v in b.items() if torch.is_tensor(v)} for b in batches]
        return cls(tensors, batch_norm=cfg.val.batch_norm)

    def _on(self, method: nn.Module) -> list[dict[str, torch.Tensor]]:
        device = next(method.parameters()).device
        return [D.to_device(b, device) for b in self.batches]

    def score(self, method: nn.Module) -> dict[str, float]:
        """``method.pretext_metrics`` in eval mode; training flags and RNG streams untouched.

        Under ``batch_norm="batch"`` the BatchNorm layers use batch statistics, and their running
        statistics are restored afterwards.
        """
        modes = {m: m.training for m in method.modules()}
        method.eval()
        try:
            with isolated_rng(), torch.no_grad(), _batch_statistics(method, self.batch_norm):
                return {k: float(v) for k, v in method.pretext_metrics(self._on(method)).items()}
        finally:
            for m, mode in modes.items():
                m.training = mode

    def log_step(self, method: nn.Module, step: int, log: Callable | None) -> dict[str, float]:
        """Score at ``step``, keep it on the curve and log it as ``pretext/<name>``."""
        if self.curve and self.curve[-1][0] == step:
            return self.curve[-1][1]
        scores = self.score(method)
        self.curve = [p for p in self.curve if p[0] < step] + [(step, scores)]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, [{"step": s, "scores": v} for s, v in self.curve])
        if log is not None:
            log({f"pretext/{k}": v for k, v in scores.items()}, step)
        return scores

    def report(self, method: nn.Module, build: Callable[[], nn.Module], cfg: Any, step: int):
        """The manifest's ``pretext``: learned at ``step``, the inits and the trivial predictors."""
        learned = self.log_step(method, step, None)
        inits = self._init_scores(build, cfg.val.init_seeds, next(method.parameters()).device)
        with torch.no_grad():
            trivial = method.pretext_baselines(self._on(method))
        return {
            "metric": method.pretext_metric,
            "higher_is_better": method.pretext_higher_is_better,
            "dataset": cfg.val.dataset,
            "step": step,
            "items": _items(self.batches),
            "learned": learned,
            "init": inits,
            "trivial": {k: {m: float(v) for m, v in s.items()} for k, s in trivial.items()},
            "curve": [{"step": s, **v} for s, v in self.curve],
        }

    def adopt_step0_as_init(
        self, method: nn.Module, build: Callable[[], nn.Module], seed: int
    ) -> bool:
        """Keep the step-0 score as the init score of ``seed`` when ``method`` is that init.

        A training stage usually builds its model at the training seed, so at step 0 it holds
        the very weights of the init at that seed: a build and a comparison of every tensor
        spare scoring the same weights twice (on ORL's 388 frames, seconds).

        Returns:
            Whether ``seed``'s init score is on record now (adopted here or before); False when
            there is no step-0 score or the weights differ, and :meth:`report` scores it.
        """
        cache = self._init_cache()
        if cache is None or not self.curve or self.curve[0][0] != 0:
            return False
        done = _read_inits(cache)
        if str(seed) not in done:
            init, now = _built_at(build, seed).state_dict(), method.state_dict()
            if init.keys() != now.keys():
                return False
            if not all(torch.equal(init[k], now[k].to(init[k].device)) for k in init):
                return False
            done[str(seed)] = self.curve[0][1]
            write_json_atomic(cache, done)
        return True

    def _init_cache(self) -> Path | None:
        return self.path.with_name(INIT_FILE) if self.path is not None else None

    def _init_scores(self, build: Callable[[], nn.Module], seeds: list[int], device) -> dict:
        """The untrained init's scores per seed, kept beside the curve.

        Every budget call of one schedule (one key: the same config and held-out set) reuses
        them instead of rebuilding and rescoring the init.
        """
        cache = self._init_cache()
        done = _read_inits(cache)
        inits = {}
        for seed in seeds:
            if str(seed) not in done:
                done[str(seed)] = self.score(_built_at(build, seed).to(device))
                if cache is not None:
                    write_json_atomic(cache, done)
            inits[str(seed)] = done[str(seed)]
        return inits


def _read_inits(cache: Path | None) -> dict:
    return json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}


def _built_at(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """The untrained init at ``seed``, built without moving the caller's RNG streams."""
    with isolated_rng():
        seed_everything(seed)
        return build()


_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@contextmanager
def _batch_statistics(method: nn.Module, mode: str):
    """Under ``mode == "batch"``: BatchNorm in training mode, its buffers restored on exit."""
    layers = [m for m in method.modules() if isinstance(m, _BATCH_NORMS)] if mode == "batch" else []
    saved = [[b.clone() for b in m.buffers()] for m in layers]
    for m in layers:
        m.train()
    try:
        yield
    finally:
        for m, buffers in zip(layers, saved, strict=True):
            for b, old in zip(m.buffers(), buffers, strict=True):
                b.copy_(old)


def _items(batches: list[dict[str, torch.Tensor]]) -> int:
    """Held-out samples scored: the first dimension of each batch's first tensor."""
    return int(sum(next(iter(b.values())).shape[0] for b in batches))
