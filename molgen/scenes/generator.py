"""A seeded procedural generator of CLEVR-style scenes (no rendering).

It follows the placement rules described for CLEVR (Johnson et al., 2017) and visible in its released scenes:

1. the number of objects is uniform in ``min_objects..max_objects`` (3..10);
2. each object's size (small: radius 0.35, large: 0.7; a cube's radius is divided by sqrt 2), shape, colour and
   material are uniform draws;
3. its ground position is uniform in the square [-3, 3]^2 of world coordinates and is redrawn until it is at least
   ``min_dist`` (0.25) from every earlier object (distance between centres minus both radii) and at least
   ``placement_margin`` (0.4) from every earlier object along each camera axis, which keeps spatial relations
   unambiguous; after ``max_retries`` (50) failed draws for one object the whole scene starts again;
4. relations come from the camera-frame positions with the 0.2 margin rule of :mod:`molgen.scenes.scene`.

The camera axes are those of the CLEVR v1.0 validation scenes (``directions["right"]`` and ``["behind"]``, the same
in every one of them). CLEVR's renderer also rejects scenes in which an object is mostly hidden behind others (a
pixel count per object); with no renderer that check is not reproduced, so generated scenes have slightly more
objects near each other along the line of sight than real ones.

Scene ``k`` of seed ``s`` is drawn from its own random stream (``numpy.random.default_rng([s, k])``), so it does
not depend on how many scenes are drawn or in which batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from molgen.scenes.scene import COLORS, MATERIALS, RELATION_MARGIN, SHAPES, SIZES, Scene, SceneObject

__all__ = ["CLEVR_BEHIND", "CLEVR_RIGHT", "GeneratorConfig", "generate_scene", "generate_scenes", "world_to_camera"]

CLEVR_RIGHT = (0.6563112735748291, 0.7544902563095093)
"""Unit ground-plane vector of the camera's "right" in world coordinates (CLEVR v1.0 validation scenes)."""
CLEVR_BEHIND = (-0.754490315914154, 0.6563112735748291)
"""Unit ground-plane vector of the camera's "behind" (away from the camera)."""

_RADIUS = {"small": 0.35, "large": 0.7}


@dataclass(frozen=True)
class GeneratorConfig:
    """Placement settings (CLEVR's defaults). Lengths are in scene units.

    ``placement_margin=0`` switches the axis-separation rule off, so that some pairs fall within the relation
    margin and stay unrelated (partial instead of total axis orders).
    """

    min_objects: int = 3
    max_objects: int = 10
    extent: float = 3.0
    min_dist: float = 0.25
    placement_margin: float = 0.4
    relation_margin: float = RELATION_MARGIN
    max_retries: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"object counts {self.min_objects}..{self.max_objects}: need 1 <= min <= max")

    def to_dict(self) -> dict:
        return asdict(self)


def world_to_camera(
    xy: np.ndarray, right: tuple[float, float] = CLEVR_RIGHT, behind: tuple[float, float] = CLEVR_BEHIND
) -> np.ndarray:
    """(N, 2) world ground coordinates -> (N, 2) camera-frame coordinates (x along right, y along behind)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return np.stack([xy @ np.asarray(right), xy @ np.asarray(behind)], axis=1)


def _place(rng: np.random.Generator, n: int, config: GeneratorConfig) -> tuple[list[SceneObject], np.ndarray] | None:
    """One attempt at placing ``n`` objects; None when some object found no place in ``max_retries`` draws."""
    objects: list[SceneObject] = []
    world: list[tuple[float, float]] = []
    radii: list[float] = []
    right, behind = np.asarray(CLEVR_RIGHT), np.asarray(CLEVR_BEHIND)
    for _ in range(n):
        size = SIZES[rng.integers(len(SIZES))]
        radius = _RADIUS[size]
        for _attempt in range(config.max_retries):
            x, y = rng.uniform(-config.extent, config.extent, size=2)
            ok = True
            for (xx, yy), rr in zip(world, radii, strict=True):
                d = np.array([x - xx, y - yy])
                if math.hypot(*d) - radius - rr < config.min_dist:
                    ok = False
                    break
                if abs(d @ right) < config.placement_margin or abs(d @ behind) < config.placement_margin:
                    ok = False
                    break
            if ok:
                break
        else:
            return None
        shape = SHAPES[rng.integers(len(SHAPES))]
        color = COLORS[rng.integers(len(COLORS))]
        material = MATERIALS[rng.integers(len(MATERIALS))]
        objects.append(SceneObject(shape, color, material, size))
        world.append((float(x), float(y)))
        radii.append(radius / math.sqrt(2) if shape == "cube" else radius)
    return objects, np.array(world)


def generate_scene(seed: int, index: int = 0, config: GeneratorConfig | None = None) -> Scene:
    """Scene ``index`` of ``seed``: objects, camera-frame positions and the relations CLEVR's rule derives."""
    config = config or GeneratorConfig()
    rng = np.random.default_rng([seed, index])
    n = int(rng.integers(config.min_objects, config.max_objects + 1))
    while True:  # CLEVR starts the whole scene again when an object cannot be placed
        placed = _place(rng, n, config)
        if placed is not None:
            objects, world = placed
            return Scene.from_positions(objects, world_to_camera(world), config.relation_margin)


def generate_scenes(n: int, seed: int = 0, config: GeneratorConfig | None = None, start: int = 0) -> list[Scene]:
    """Scenes ``start .. start + n - 1`` of ``seed``."""
    return [generate_scene(seed, start + k, config) for k in range(n)]
