"""Suite-wide settings."""

import os
import tempfile

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


DAVIS_MINI = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "davis-mini"


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
