"""Every `from gid.… import name` in the scripts that no test runs (benchmarks/, docs/) still resolves.

The benchmarks are run by hand, so a module that moves (as `write_random_bundle` moved to
`gid.testing.bundles`) breaks them silently; this reads their imports without running them.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("docs/*.py")])


def gid_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of each ``from gid.… import name`` anywhere in ``path``, functions included."""
    return [(node.module, alias.name) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gid"
            for alias in node.names]


def resolves(module: str, name: str) -> bool:
    try:
        imported = importlib.import_module(module)
    except ImportError:
        return False
    if hasattr(imported, name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


def test_finds_the_scripts_and_their_imports():
    assert len(SCRIPTS) >= 10
    assert sum(len(gid_imports(path)) for path in SCRIPTS) >= 30


def test_a_moved_name_is_caught(tmp_path):
    script = tmp_path / "old.py"
    script.write_text("def f():\n    from gid.pipeline.motion_pipeline import write_random_bundle\n")
    assert [resolves(m, n) for m, n in gid_imports(script)] == [False]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_imports_resolve(path):
    missing = [f"from {module} import {name}" for module, name in gid_imports(path) if not resolves(module, name)]
    assert not missing, f"{path.relative_to(ROOT)}: {missing}"
