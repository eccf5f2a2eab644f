"""The package's layout promises: inference never loads training code, the tokenizer and the prior never import
RDKit, modules import one another without cycles, and ``molgen`` declares its public API."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    """Top-level names of every module loaded after running ``code`` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("code", ["import molgen.pipeline", "import molgen; molgen.Designer; molgen.MolgenPipeline", "import app"])
def test_inference_loads_no_training_code(code):
    loaded = _modules_after(code)
    training = sorted(m for m in loaded if m.split(".")[0] in ("lightning", "pytorch_lightning") or m.endswith(".training") or m == "molgen.training")
    assert not training, f"{code!r} loads training code: {training}"


@pytest.mark.parametrize("package", ["molgen.tokenizer.model", "molgen.prior", "molgen.sampling.discrete", "molgen.sampling.flow", "molgen.sampling.masked"])
def test_tokenizer_prior_and_samplers_never_import_rdkit(package):
    loaded = _modules_after(f"import {package}")
    assert not any(m.split(".")[0] == "rdkit" for m in loaded), f"{package} imports RDKit; chemistry belongs to the domain"


def _imports() -> dict[str, set[str]]:
    """molgen module -> molgen modules it imports at module level (not inside functions)."""
    paths = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p for p in (REPO / "molgen").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        found = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("molgen"):
                # ``from package import submodule`` depends on the submodule, not on the package's own __init__
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("molgen")}
        graph[name] = found - {name}
    return graph


def test_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        if state.get(module) == 1:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
        if state.get(module) == 2 or module not in graph:
            return
        state[module] = 1
        for target in sorted(graph[module]):
            visit(target, path + [module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])


def test_public_api():
    import molgen

    for name in ("MolgenPipeline", "SamplingConfig", "DecodedMolecule", "Latents", "Designer", "DesignResult", "OptimizationResult",
                 "Filters", "Target", "objectives", "DEFAULT_MODEL"):  # fmt: skip
        assert name in molgen.__all__ and getattr(molgen, name) is not None
    assert (molgen.DEFAULT_MODEL / "prior" / "config.json").exists()
    with pytest.raises(AttributeError, match="no attribute"):
        molgen.NoSuchThing  # noqa: B018
