"""Shared fixtures for the molgen test suite.

The suite must stay light: it shares a 2-core machine with training jobs, so torch runs on one thread and
every model trained here is tiny. Outcomes must not depend on how busy the machine is: training runs take
:data:`STEP_COUNTED` (a fixed seed and a number of steps; nothing bounded or checkpointed by the clock), and
hypothesis draws its examples from a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from hypothesis import settings

torch.set_num_threads(1)

# Fuzzing tests draw the same examples on every run and machine (a fixed seed), so the suite's outcome is the same
# each time; a failing example is printed with the code to reproduce it.
settings.register_profile("molgen", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("molgen")

REPO = Path(__file__).resolve().parents[1]
MOSES = REPO / "data" / "moses"

STEP_COUNTED = {"seed": 0, "max_time": None, "checkpoint_steps": 1_000_000}
"""Training settings (``molgen.training.TrainSettings`` fields) for a test's training run: a fixed seed, no time budget, and
checkpoints counted in steps rather than minutes (here only the one at the end), so a run is its ``max_steps`` steps
on any machine under any load."""


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Keep torch on one thread for the whole session (some code under test calls set_num_threads)."""
    torch.set_num_threads(1)
    yield


def _moses_sample(split: str, n: int, seed: int = 0) -> list[str]:
    """``n`` SMILES drawn (without replacement, fixed seed) from ``data/moses/<split>.csv.gz``."""
    path = MOSES / f"{split}.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return pd.read_csv(path)["SMILES"].sample(n, random_state=seed).tolist()


@pytest.fixture(scope="session")
def moses_sample():
    """``moses_sample(split, n, seed)``: n SMILES from a MOSES split (skips the test if the data is absent)."""
    return _moses_sample


@pytest.fixture(scope="session")
def moses_test_3000() -> list[str]:
    """3000 real molecules from the MOSES test set (seed 0)."""
    return _moses_sample("test", 3000, seed=0)
