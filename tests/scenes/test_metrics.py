"""Scene metrics behave sensibly: isomorphism-aware uniqueness and novelty, MMDs small between halves of the real
scenes and larger against corrupted scenes, triplet distances, edit distance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from molgen.scenes import metrics
from molgen.scenes.generator import GeneratorConfig, generate_scenes
from molgen.scenes.scene import Scene, SceneObject


@pytest.fixture(scope="module")
def halves(real_scenes):
    order = np.random.default_rng(0).permutation(len(real_scenes))
    return [real_scenes[i] for i in order[:250]], [real_scenes[i] for i in order[250:]]


def _recolour(scene: Scene, color: str) -> Scene:
    objects = [dataclasses.replace(o, color=color) for o in scene.objects]
    return Scene.from_positions(objects, np.asarray(scene.positions))


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_uniqueness_and_novelty_up_to_isomorphism(form, real_scenes, generated_scenes):
    assert metrics.uniqueness(real_scenes, form) == 1.0
    rng = np.random.default_rng(0)
    shuffled = [s.permuted(rng.permutation(s.num_objects)) for s in real_scenes[:100]]
    assert metrics.uniqueness(real_scenes[:100] + shuffled, form) == 0.5
    assert metrics.novelty(shuffled, real_scenes, form) == 0.0
    assert metrics.novelty(generated_scenes[:200], real_scenes, form) > 0.95
    assert metrics.wl_hash(shuffled[0], form) == metrics.wl_hash(real_scenes[0], form)


def test_hash_collisions_are_resolved_by_isomorphism():
    seen = metrics.Deduplicator()
    cube = SceneObject("cube", "red", "metal", "large")
    # same labels and arcs per node, different structure: WL cannot always tell them apart, the isomorphism test can
    a = Scene(objects=(cube,) * 3, right=frozenset({(0, 1), (1, 2), (0, 2)}), behind=frozenset())
    b = Scene(objects=(cube,) * 3, right=frozenset({(0, 1), (1, 2), (0, 2)}), behind=frozenset({(0, 1)}))
    assert seen.add(a) and seen.add(b) and not seen.add(a.permuted([2, 0, 1]))
    assert len(seen) == 2


def test_mmd_small_between_halves_and_larger_when_corrupted(halves):
    first, second = halves
    base = metrics.histogram_mmds(first, second)
    assert max(base.values()) < 0.01
    red = metrics.histogram_mmds([_recolour(s, "red") for s in first], second)
    assert red["color"] > 20 * base["color"]
    small = generate_scenes(250, seed=2, config=GeneratorConfig(min_objects=3, max_objects=4))
    crowded = metrics.histogram_mmds(small, second)
    assert crowded["node_count"] > 10 * base["node_count"]
    assert crowded["degree"] > 10 * base["degree"]


def test_mmd_of_identical_sets_is_zero(halves):
    assert all(abs(v) < 1e-12 for v in metrics.histogram_mmds(halves[0], halves[0], form="sparse").values())


def test_triplets(halves):
    first, second = halves
    same = metrics.triplet_metrics(first, first)
    assert same == {"triplet_tv": 0.0, "novel_triplets": 0.0}
    base = metrics.triplet_metrics(first, second, attributes=("shape", "color"))
    red = metrics.triplet_metrics([_recolour(s, "red") for s in first], second, attributes=("shape", "color"))
    assert base["triplet_tv"] < 0.3 and red["triplet_tv"] > 3 * base["triplet_tv"]
    assert metrics.triplet_metrics(first, second, attributes=("shape",))["triplet_tv"] < 0.05
    counts = metrics.triplet_counts(first[:1])
    n = first[0].num_objects
    assert sum(counts.values()) == 4 * n * (n - 1) // 2  # every pair, both axes, both directions of each
    assert {rel for _, rel, _ in counts} == {"left", "right", "front", "behind"}


def test_validity_and_edit_distance(real_scenes):
    assert metrics.validity([real_scenes[0], None, real_scenes[1], None]) == 0.5
    a = real_scenes[0]
    assert metrics.graph_edit_distance(a, a.permuted(list(range(a.num_objects))[::-1])) == 0.0
    changed = Scene(
        objects=(dataclasses.replace(a.objects[0], color="cyan"), *a.objects[1:]), right=a.right, behind=a.behind
    )
    assert metrics.graph_edit_distance(a, changed, timeout=10) == 1.0
