"""Content-addressed artifact store (docs/contracts.md, "Artifacts").

Layout: ``<root>/<stage>/<key>/`` holds a finished artifact and its ``manifest.json``. A stage writes
into ``<root>/<stage>/.partial-<key>/`` and the store renames that folder into place only when the
stage has finished, so a crash never leaves a folder that looks finished. The partial folder survives
a crash on purpose: resumable stages (training, selective search) continue from what it holds.
A lock file ``<root>/<stage>/.<key>.lock`` (``fcntl.flock``) keeps two writers of one key apart;
a stage that reads an artifact holds a shared lock on the same file for as long as it runs
(:meth:`ArtifactStore.hold`), so ``gc`` (which needs the exclusive lock) never removes an input in
use. The manifest lists every file with its size and SHA-256: a cache hit checks the sizes
(:meth:`ArtifactStore.verify`), ``correlearn artifacts verify`` the hashes too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from correlearn.artifact_ref import MANIFEST, ArtifactError, ArtifactRef
from correlearn.stage_names import stored_name

KEY_LENGTH = 16
# Bookkeeping of a running stage that a snapshot of its partial folder must not carry.
SNAPSHOT_SKIP = {MANIFEST, ".mlflow_run_id"}
# A partial folder's training state parked past a smaller budget (correlearn.budgets): no
# snapshot of that smaller call carries it.
PARKED = "parked"


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal text, hence equal keys."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def compute_key(stage: str, version: int, config: dict[str, Any], inputs: dict[str, str]) -> str:
    """Key of an artifact: hash of (stage name, stage version, canonical config, input keys).

    Args:
        stage: the stage name; a renamed stage is keyed by its first name (:func:`stored_name`).
        version: the stage's version number; bump it when the stage's code changes its output.
        config: the stage's resolved config section (plain JSON types).
        inputs: input name -> key of the input artifact.

    Returns:
        A 16-hex-digit key.
    """
    payload = canonical_json(
        {"stage": stored_name(stage), "version": int(version), "config": config, "inputs": inputs}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:KEY_LENGTH]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary sibling and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ArtifactStore:
    """The folder of finished and partial artifacts; see the module docstring for its layout."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        """Folder of a finished artifact (it may not exist)."""
        return self.root / stored_name(stage) / key

    def partial_path(self, stage: str, key: str) -> Path:
        """Folder a stage writes into before its artifact is committed."""
        return self.root / stored_name(stage) / f".partial-{key}"

    def exists(self, stage: str, key: str) -> bool:
        """Whether a finished artifact with this key exists (its manifest is the commit marker)."""
        return (self.path(stage, key) / MANIFEST).is_file()

    def ref(self, stage: str, key: str) -> ArtifactRef:
        """A reference to a finished artifact."""
        if not self.exists(stage, key):
            raise ArtifactError(f"no finished artifact {stage}/{key} under {self.root}")
        return ArtifactRef(stage, key, str(self.path(stage, key)))

    @contextlib.contextmanager
    def lock(
        self, stage: str, key: str, timeout_s: float | None = None, shared: bool = False
    ) -> Iterator[None]:
        """Hold the lock of one key; a second writer waits (or fails after ``timeout_s``).

        Args:
            stage: stage name.
            key: artifact key.
            timeout_s: give up with :class:`ArtifactError` after this long (None: wait).
            shared: a reader's lock: many readers at once, no writer (or ``gc``) meanwhile.
        """
        lock_path = self.root / stored_name(stage) / f".{key}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as fh:
            start = time.monotonic()
            while True:
                try:
                    fcntl.flock(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if timeout_s is not None and time.monotonic() - start >= timeout_s:
                        raise ArtifactError(
                            f"{stage}/{key} is being written or read by another process "
                            f"(lock {lock_path} held for over {timeout_s:.0f} s)"
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def hold(self, refs: dict[str, ArtifactRef]) -> Iterator[None]:
        """Hold a shared lock on each input artifact while a stage reads them.

        Raises:
            ArtifactError: an input disappeared before it could be held (removed by ``gc``).
        """
        with contextlib.ExitStack() as stack:
            for name, ref in sorted(refs.items()):
                stack.enter_context(self.lock(ref.stage, ref.key, shared=True))
                if not self.exists(ref.stage, ref.key):
                    raise ArtifactError(
                        f"input {name} ({ref.stage}/{ref.key}) was removed before the stage "
                        "started (gc?); run the stage again to recompute it"
                    )
            yield

    def begin(self, stage: str, key: str, keep_partial: bool) -> Path:
        """Prepare the partial folder: keep what a stopped run left when the stage can resume."""
        partial = self.partial_path(stage, key)
        if partial.exists() and not keep_partial:
            shutil.rmtree(partial)
        partial.mkdir(parents=True, exist_ok=True)
        return partial

    def commit(self, stage: str, key: str, manifest: dict[str, Any]) -> ArtifactRef:
        """Write the manifest (listing every file) and rename the partial folder into place."""
        partial = self.partial_path(stage, key)
        files = []
        for p in sorted(partial.rglob("*")):
            if p.is_file() and p.name != MANIFEST and not p.name.startswith(".lock"):
                files.append(
                    {
                        "path": str(p.relative_to(partial)),
                        "bytes": p.stat().st_size,
                        "sha256": file_sha256(p),
                    }
                )
        manifest = {**manifest, "files": files, "bytes": sum(f["bytes"] for f in files)}
        write_json_atomic(partial / MANIFEST, manifest)
        final = self.path(stage, key)
        if final.exists():
            # Only reachable with --force: the old artifact is replaced as a whole.
            trash = final.with_name(f".old-{key}-{os.getpid()}")
            os.rename(final, trash)
            os.rename(partial, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(partial, final)
        return ArtifactRef(stage, key, str(final))

    def snapshot(self, stage: str, src: Path, key: str, manifest: dict[str, Any]) -> ArtifactRef:
        """Commit a copy of folder ``src`` (a partial folder that lives on) as artifact ``key``.

        Files ending in ``.pt`` are hard-linked: they are only ever replaced by a rename
        (:func:`~correlearn.train.checkpoint.atomic_torch_save`), never rewritten in place, so
        the snapshot keeps its bytes when ``src`` moves on. Everything else is copied.
        """
        partial = self.begin(stage, key, keep_partial=False)
        for p in sorted(src.rglob("*")):
            rel = p.relative_to(src)
            if not p.is_file() or rel.name in SNAPSHOT_SKIP or rel.name.startswith(".lock"):
                continue
            if rel.parts[0] == PARKED:
                continue
            dst = partial / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                if p.suffix != ".pt":
                    raise OSError("copied")
                os.link(p, dst)
            except OSError:
                shutil.copy2(p, dst)
        return self.commit(stage, key, manifest)

    def verify(self, stage: str, key: str, content: bool = False) -> list[str]:
        """Problems of a finished artifact against its manifest (empty when it is intact).

        Args:
            stage: stage name.
            key: artifact key.
            content: compare SHA-256 hashes too (reads every byte), not only sizes.

        Returns:
            One line per problem, each naming the file.
        """
        folder = self.path(stage, key)
        try:
            files = self.manifest(stage, key).get("files", [])
        except ArtifactError as exc:
            return [str(exc)]
        problems = []
        for f in files:
            p = folder / f["path"]
            if not p.is_file():
                problems.append(f"{p}: missing (the manifest lists {f['bytes']} bytes)")
            elif p.stat().st_size != f["bytes"]:
                problems.append(f"{p}: {p.stat().st_size} bytes, the manifest says {f['bytes']}")
            elif content and f.get("sha256") and file_sha256(p) != f["sha256"]:
                problems.append(f"{p}: content differs from the manifest's SHA-256")
        return problems

    def manifest(self, stage: str, key: str) -> dict[str, Any]:
        """The manifest of a finished artifact."""
        path = self.path(stage, key) / MANIFEST
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ArtifactError(f"no manifest at {path}") from None
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{path}: corrupt manifest ({exc})") from None

    def list(self, stage: str | None = None) -> list[dict[str, Any]]:
        """Manifests of every finished artifact (of one stage), oldest first."""
        out = []
        stage_dirs = [self.root / stored_name(stage)] if stage else sorted(self.root.glob("*"))
        for sdir in stage_dirs:
            if not sdir.is_dir():
                continue
            for adir in sorted(sdir.iterdir()):
                if adir.name.startswith(".") or not (adir / MANIFEST).is_file():
                    continue
                out.append(self.manifest(sdir.name, adir.name))
        return sorted(out, key=lambda m: m.get("finished_at", ""))

    def find(self, key: str) -> tuple[str, str]:
        """Resolve a key or unique key prefix to (stage, key) across stages."""
        hits = [(m["stage"], m["key"]) for m in self.list() if m["key"].startswith(key)]
        if not hits:
            raise ArtifactError(f"no artifact with key {key!r} under {self.root}")
        if len(hits) > 1:
            raise ArtifactError(f"key prefix {key!r} is ambiguous: {hits}")
        return hits[0]
