"""The example notebook runs top to bottom on the tiny model (cells executed in order in one namespace, as a
kernel would; no Jupyter needed)."""

from __future__ import annotations

import contextlib
import io
import json
import os

from ..conftest import REPO

NOTEBOOK = REPO / "examples" / "latent_optimization.ipynb"


def run_notebook(path, env: dict[str, str]) -> list[str]:
    """Execute every code cell of ``path``; returns each cell's printed output. A failing cell raises
    AssertionError naming the cell and the error."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    namespace: dict = {"__name__": "__main__"}
    outputs = []
    old_env, old_cwd = {k: os.environ.get(k) for k in env}, os.getcwd()
    os.environ.update(env)
    os.chdir(REPO)
    try:
        for k, cell in enumerate(cells):
            source = "".join(cell["source"])
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer):
                    exec(compile(source, f"{path.name} cell {k}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{path.name}: code cell {k} failed: {type(exc).__name__}: {exc}\n{source}") from exc
            outputs.append(buffer.getvalue())
    finally:
        os.chdir(old_cwd)
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return outputs


def test_latent_optimization_notebook_runs(tiny_model):
    outputs = run_notebook(NOTEBOOK, {"MOLGEN_MODEL": str(tiny_model), "MOLGEN_N": "8", "MOLGEN_CALLS": "24"})
    text = "".join(outputs)
    assert "objective calls, " in text and "by operator:" in text and "penalized logP" in text and "strength 0.8" in text
