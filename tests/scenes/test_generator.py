"""The procedural CLEVR-style generator: seeded, CLEVR's placement rules, CLEVR's relation rule."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from molgen.scenes.generator import CLEVR_BEHIND, CLEVR_RIGHT, GeneratorConfig, generate_scene, generate_scenes
from molgen.scenes.scene import ATTRIBUTES, Scene


def _same(a: list[Scene], b: list[Scene]) -> bool:
    return a == b and all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b, strict=True))


def test_same_seed_same_scenes_and_scene_k_independent_of_batch():
    assert _same(generate_scenes(20, seed=5), generate_scenes(20, seed=5))
    assert _same(generate_scenes(4, seed=5, start=3), generate_scenes(7, seed=5)[3:])
    assert generate_scenes(20, seed=5) != generate_scenes(20, seed=6)


def test_object_counts_and_attributes_cover_clevr(generated_scenes):
    counts = Counter(s.num_objects for s in generated_scenes)
    assert set(counts) == set(range(3, 11))
    for name, values in ATTRIBUTES.items():
        seen = Counter(getattr(o, name) for s in generated_scenes for o in s.objects)
        shares = np.array([seen[v] for v in values]) / sum(seen.values())
        assert np.allclose(shares, 1 / len(values), atol=0.03), (name, shares)


def test_placement_rules_and_relations(generated_scenes):
    for scene in generated_scenes[:200]:
        p = np.asarray(scene.positions)
        n = scene.num_objects
        for i in range(n):
            for j in range(i + 1, n):
                d = p[j] - p[i]
                # CLEVR keeps objects 0.4 apart along each camera axis, so every pair is related on both axes
                assert abs(d[0]) >= 0.4 and abs(d[1]) >= 0.4
                radius = {"small": 0.35, "large": 0.7}
                ri, rj = (
                    radius[o.size] / (math.sqrt(2) if o.shape == "cube" else 1)
                    for o in (scene.objects[i], scene.objects[j])
                )
                assert math.hypot(*d) - ri - rj >= 0.25
        assert Scene.from_positions(scene.objects, p) == scene
        full = scene.matrix("x") | scene.matrix("x").T
        assert full.sum() == n * (n - 1)


def test_camera_axes_are_orthonormal():
    right, behind = np.array(CLEVR_RIGHT), np.array(CLEVR_BEHIND)
    assert np.isclose(right @ right, 1) and np.isclose(behind @ behind, 1) and abs(right @ behind) < 1e-6


def test_without_placement_margin_some_pairs_stay_unrelated(partial_scenes):
    unrelated = sum(int((~(s.matrix("x") | s.matrix("x").T)).sum() - s.num_objects) for s in partial_scenes)
    assert unrelated > 0
    assert generate_scene(1, 0, GeneratorConfig(placement_margin=0.0)) == partial_scenes[0]
