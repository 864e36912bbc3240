"""Suite-wide settings."""

import os
import tempfile
from pathlib import Path

# Before any test module imports Prefect: a private Prefect home (hermetic, nothing written to
# ~/.prefect), analytics off, and no INFO lines from the ephemeral server at interpreter exit,
# when pytest has already closed the streams they would go to.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="correlearn-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "ERROR")
# A fresh Prefect database is migrated on first start: more than the default 20 s on 2 busy cores.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One intra-op thread for the whole suite: the nets are tiny and CI has 2 shared cores, where
    spinning threads make each op several times slower. Subprocesses (torchrun, the CLI) keep
    their own defaults."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


REPO = Path(__file__).resolve().parents[1]
DAVIS_MINI = REPO / "data" / "davis-mini"
#: Data shared next to the checkout (``<repo>/../shared/data``), never an absolute path.
SHARED_DATA = REPO.parent / "shared" / "data"


def require_data(path: Path, what: str) -> Path:
    """``path`` when it exists; otherwise skip the test, or fail it when ``CI`` is true.

    A local checkout without the shared data still runs the rest of the suite; CI must never
    turn a test into a silent skip because its data went missing.

    Args:
        path: the file or folder the test reads.
        what: a few words naming the data for the message.

    Returns:
        ``path``.
    """
    if path.exists():
        return path
    msg = f"{what} not found at {path}"
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{msg} (CI=true: missing test data is a failure, not a skip)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_davis() -> Path:
    """Root of the DAVIS-2016 train split in ``<repo>/../shared/data`` (skip, or fail under CI)."""
    root = SHARED_DATA / "davis2016-train"
    require_data(root / "JPEGImages" / "480p", "DAVIS-2016 train frames")
    return root


@pytest.fixture(scope="session")
def data_required():
    """The :func:`require_data` helper, for tests that read other files."""
    return require_data


@pytest.fixture(scope="session")
def make_davis():
    """A factory copying the first ``n`` frames (and masks) of DAVIS sequences into a folder.

    ``make_davis(root, seqs, n, masks=True) -> root`` writes the DAVIS layout
    (``JPEGImages/480p/<seq>``, ``Annotations/480p/<seq>``) from the embedded ``data/davis-mini``.
    """
    import shutil

    def make(root, seqs=("dog-agility", "rollerblade"), n=6, masks=True):
        parts = (
            (("JPEGImages", "jpg"), ("Annotations", "png")) if masks else (("JPEGImages", "jpg"),)
        )
        for seq in seqs:
            for sub, ext in parts:
                dst = root / sub / "480p" / seq
                dst.mkdir(parents=True)
                for f in sorted((DAVIS_MINI / sub / "480p" / seq).glob(f"*.{ext}"))[:n]:
                    shutil.copy(f, dst / f.name)
        return root

    return make


@pytest.fixture(scope="session")
def workspace_template(tmp_path_factory):
    """A workspace with artifacts and MLflow flow runs (tests/workspace_fixtures.py), built once."""
    from tests.workspace_fixtures import build_template

    return build_template(tmp_path_factory.mktemp("ws"))


@pytest.fixture
def ws(workspace_template, tmp_path, monkeypatch):
    """A private copy of :func:`workspace_template`, active as ``CORRELEARN_HOME``."""
    from tests.workspace_fixtures import copy_workspace

    return copy_workspace(workspace_template, tmp_path, monkeypatch)
