"""Shared scene fixtures: the 500 real CLEVR validation scenes and 1,000 generated ones (drawn once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from molgen.scenes.generator import GeneratorConfig, generate_scenes
from molgen.scenes.io import read_clevr_scenes
from molgen.scenes.scene import Scene

REPO = Path(__file__).resolve().parents[2]
CLEVR = REPO / "data" / "clevr" / "CLEVR_val_scenes_500.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def real_scenes() -> list[Scene]:
    return read_clevr_scenes(CLEVR)


@pytest.fixture(scope="session")
def generated_scenes() -> list[Scene]:
    return generate_scenes(1000, seed=0)


@pytest.fixture(scope="session")
def partial_scenes() -> list[Scene]:
    """Scenes without CLEVR's 0.4 placement margin: some pairs fall within the relation margin and stay unrelated."""
    return generate_scenes(300, seed=1, config=GeneratorConfig(placement_margin=0.0))
