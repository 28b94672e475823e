"""The core packages never import streamlit: pages wire widgets to them, nothing more."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import config

CORE = ("scanner", "llm", "store", "auth", "reporting", "monitor", "feeds", "workers")
ROOT = config.PROJECT_ROOT


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_core_module_imports_streamlit() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for pkg in CORE
        for p in sorted((ROOT / pkg).rglob("*.py"))
        if "streamlit" in _imports(p)
    ]
    assert offenders == []


def test_importing_every_core_module_loads_no_streamlit() -> None:
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for pkg in CORE
        for p in sorted((ROOT / pkg).rglob("*.py"))
        if p.name != "__main__.py"
    ] + ["config", "services"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('streamlit' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
