"""Size figures of the code: modules, the largest files and functions, functions over a limit.

Usage: ``python bin/code_stats.py [--top N]``; reads ``correlearn/ stages/ flows/ app/`` (those present).
For the before/after of a refactor; pair it with the ``duplicates`` tool for repeated blocks.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "correlearn", "stages", "flows")


def functions(path: Path) -> list[tuple[int, str]]:
    """(lines, qualified name) of every function and method in ``path``."""
    tree = ast.parse(path.read_text())
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                out.append((child.end_lineno - child.lineno + 1, f"{prefix}{child.name}"))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--file-limit", type=int, default=300)
    ap.add_argument("--function-limit", type=int, default=60)
    args = ap.parse_args()
    files = [p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py")]
    sizes = sorted(
        ((len(p.read_text().splitlines()), p.relative_to(ROOT)) for p in files), reverse=True
    )
    funcs = sorted(
        ((n, f"{p.relative_to(ROOT)}:{name}") for p in files for n, name in functions(p)),
        reverse=True,
    )
    print(f"modules: {len(files)}  lines: {sum(n for n, _ in sizes)}  functions: {len(funcs)}")
    print(f"files over {args.file_limit} lines: {sum(n > args.file_limit for n, _ in sizes)}")
    print(
        f"functions over {args.function_limit} lines: {sum(n > args.function_limit for n, _ in funcs)}"
    )
    print("largest files:")
    for n, p in sizes[: args.top]:
        print(f"  {n:5d}  {p}")
    print("largest functions:")
    for n, name in funcs[: args.top]:
        print(f"  {n:5d}  {name}")


if __name__ == "__main__":
    main()
