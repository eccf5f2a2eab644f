"""Every third-party package that molgen imports (lazily or not) is declared in pyproject.toml.

CI (.ci/run) installs the package on a clean machine with ``pip install -e .[dev]``, so an undeclared import
works here and breaks there.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> list[str]:
    modules: set[str] = set()
    for path in (REPO / "molgen").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return sorted(m for m in modules if m not in sys.stdlib_module_names and m not in ("molgen", "__future__"))


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


@functools.cache
def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_normalise(re.split(r"[<>=!~;\[ ]", dep.strip())[0]) for dep in project["dependencies"]}


MODULES = _imported_top_level_modules()

def test_imports_were_found():
    assert {"torch", "rdkit", "numpy"} <= set(MODULES)


@pytest.mark.parametrize(
    "module", MODULES
)
def test_imported_package_is_declared(module):
    distributions = _distributions().get(module, [])
    assert distributions, f"{module} is imported by molgen but not installed"
    assert any(_normalise(d) in _declared() for d in distributions), (
        f"molgen imports {module} (distribution {distributions}) but pyproject.toml does not declare it"
    )
