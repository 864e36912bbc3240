"""The layering contracts (pyproject.toml, ``[tool.importlinter]``) hold, and they do bite."""

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
]


def _lint(cwd: Path, config: Path | None = None) -> subprocess.CompletedProcess:
    args = ["--config", str(config)] if config else []
    return subprocess.run([*LINT, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_repository_keeps_every_contract():
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" not in proc.stdout.lower().replace("0 broken", "")


def _toy_tree(root: Path, back_import: str | None) -> Path:
    """The four top-level packages with one module each, and optionally one forbidden import."""
    for pkg in ("app", "flows", "stages", "correlearn", "correlearn/methods"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    for name in ("byol", "cim", "vfs", "siammae"):
        (root / "correlearn/methods" / f"{name}.py").write_text("")
    (root / "correlearn/core.py").write_text("")
    (root / "stages/a.py").write_text("import correlearn.core\n")
    (root / "stages/b.py").write_text("import correlearn.core\n")
    (root / "flows/f.py").write_text("import stages.a\n")
    (root / "app/cli.py").write_text("import flows.f\n")
    if back_import:
        module, target = back_import.split(" -> ")
        path = root / (module.replace(".", "/") + ".py")
        path.write_text(path.read_text() + f"import {target}\n")
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    config = root / ".importlinter"
    lines = ["[importlinter]", "root_packages =", *[f"    {p}" for p in contracts["root_packages"]]]
    for i, c in enumerate(contracts["contracts"]):
        lines += [f"[importlinter:contract:{i}]", f"name = {c['name']}", f"type = {c['type']}"]
        for key in ("layers", "modules", "ancestors"):
            if key in c:
                lines += [f"{key} =", *[f"    {v}" for v in c[key]]]
    config.write_text("\n".join(lines) + "\n")
    return config


def test_the_contracts_catch_a_back_import_and_a_stage_importing_a_stage(tmp_path):
    assert _lint(tmp_path / "ok", _toy_tree(tmp_path / "ok", None)).returncode == 0
    for i, bad in enumerate(
        [
            "correlearn.core -> stages.a",
            "stages.a -> flows.f",
            "stages.b -> stages.a",
            "correlearn.methods.cim -> correlearn.methods.vfs",
        ]  # fmt: skip
    ):
        root = tmp_path / f"bad{i}"
        proc = _lint(root, _toy_tree(root, bad))
        assert proc.returncode != 0 and "BROKEN" in proc.stdout, bad
