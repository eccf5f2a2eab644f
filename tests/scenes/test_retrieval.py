"""Retrieval by latent similarity (molgen.retrieval and MolgenPipeline.nearest) on the clevr model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molgen.records import Latents
from molgen.retrieval import latent_distances, nearest
from molgen.scenes.generator import generate_scenes

from .conftest import REPO


@pytest.fixture(scope="module")
def pipe():
    from molgen.pipeline import MolgenPipeline

    torch.set_num_threads(1)
    return MolgenPipeline.from_pretrained(REPO / "checkpoints" / "clevr", device="cpu")


def _latents(*token_sets: list[list[float]]) -> Latents:
    n = max(len(t) for t in token_sets)
    z = torch.zeros(len(token_sets), n, 2)
    mask = torch.zeros(len(token_sets), n, dtype=torch.bool)
    for b, tokens in enumerate(token_sets):
        z[b, : len(tokens)] = torch.tensor(tokens)
        mask[b, : len(tokens)] = True
    return Latents(z, mask)


def test_set_distance_is_a_matching_with_a_cost_per_unmatched_token():
    a = _latents([[0.0, 0.0], [1.0, 0.0]])
    b = _latents([[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    d = latent_distances(a, b, "set", gap=3.0, scale=np.ones(2))
    assert d.shape == (1, 3)
    assert d[0, 0] == 0.0  # the same tokens in another order
    assert d[0, 1] == pytest.approx(1.0)  # one token moved by 1
    assert d[0, 2] == pytest.approx(3.0)  # one token more
    assert latent_distances(b, a, "set", gap=3.0, scale=np.ones(2))[:, 0] == pytest.approx(d[0])


def test_mean_distance_counts_the_difference_in_sizes():
    a = _latents([[0.0, 0.0], [2.0, 0.0]])
    b = _latents([[1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]])
    d = latent_distances(a, b, "mean", gap=0.5, scale=np.ones(2))
    assert d[0].tolist() == pytest.approx([0.5, 0.0])


def test_bad_arguments_are_named():
    a = _latents([[0.0, 0.0]])
    with pytest.raises(ValueError, match="metric='cosine'"):
        latent_distances(a, a, "cosine")
    with pytest.raises(ValueError, match="k=0"):
        nearest(a, a, k=0)


def test_a_scene_is_its_own_nearest_neighbour(pipe):
    candidates = generate_scenes(40, seed=21)
    queries = [candidates[k] for k in (3, 17, 30)]
    for metric in ("set", "mean"):
        hits = pipe.nearest(queries, candidates, k=3, metric=metric)
        assert [row[0].index for row in hits] == [3, 17, 30]
        assert all(row[0].distance == pytest.approx(0.0) for row in hits)
        assert all(row[0].item == candidates[row[0].index] for row in hits)
        assert all(row[0].distance <= row[1].distance <= row[2].distance for row in hits)


def test_a_scene_with_one_object_changed_is_nearer_than_unrelated_ones(pipe):
    from dataclasses import replace

    candidates = generate_scenes(40, seed=22)
    base = candidates[5]
    objects = list(base.objects)
    objects[0] = replace(objects[0], color="red" if objects[0].color != "red" else "blue")
    changed = replace(base, objects=tuple(objects))
    hits = pipe.nearest([changed], candidates, k=1)
    assert hits[0][0].index == 5


def test_latents_are_accepted_and_items_are_then_absent(pipe):
    scenes = generate_scenes(10, seed=23)
    latents = pipe.encode(scenes)
    hits = pipe.nearest(latents, latents, k=2)
    assert [row[0].index for row in hits] == list(range(10))
    assert hits[0][0].item is None
