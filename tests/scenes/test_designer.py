"""Constrained requests and completion on the clevr model (molgen.scenes.designer): behaviour, not figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molgen.scenes.constraints import parse_request
from molgen.scenes.designer import SceneDesigner
from molgen.scenes.scene import Scene

from .conftest import REPO


@pytest.fixture(scope="module")
def designer():
    from molgen.pipeline import MolgenPipeline

    torch.set_num_threads(1)
    return SceneDesigner(MolgenPipeline.from_pretrained(REPO / "checkpoints" / "clevr", device="cpu"), candidates=16)


@pytest.mark.parametrize(
    "request_text",
    [
        "2 red cubes; something left of a metal sphere",
        "no metal objects; 5 objects",
        "at least 3 cylinders, no spheres",
        "a large cyan cube behind a small yellow sphere; exactly 1 yellow object",
        "10 objects; exactly 6 small objects",  # drawn objects past the count are redrawn (repairs)
    ],
)
def test_requests_are_satisfied_on_the_decoded_scene(designer, request_text):
    out = designer.generate(request_text, n=3, seed=0)
    assert len(out) == 3
    for designed in out:
        assert designed.satisfied and designed.unmet == []
        assert all(c.check(designed.scene) for c in parse_request(request_text))  # checked again, here
    assert [d.drawn for d in out] == sorted({d.drawn for d in out})  # distinct candidates, in drawing order


def test_completion_keeps_the_given_objects_exactly(designer, real_scenes):
    scene = real_scenes[1]
    keep = [0, 2, 3]
    partial = Scene.from_positions([scene.objects[i] for i in keep], np.asarray(scene.positions)[keep])
    out = designer.complete(partial, "8 objects", n=2, seed=1)
    for designed in out:
        assert designed.satisfied and designed.scene.num_objects == 8
        assert sorted(designed.given) == [0, 1, 2]
        for p, s in designed.given.items():  # each given object, with its attributes ...
            assert designed.scene.objects[s] == partial.objects[p]
        for axis in ("x", "y"):  # ... and its relations to the other given ones
            ours = designed.scene.matrix(axis)
            theirs = partial.matrix(axis)
            for p, s in designed.given.items():
                for q, t in designed.given.items():
                    assert ours[s, t] == theirs[p, q]


def test_the_same_seed_gives_the_same_scenes(designer):
    a = designer.generate("a metal sphere", n=2, seed=5)
    b = designer.generate("a metal sphere", n=2, seed=5)
    assert [d.scene for d in a] == [d.scene for d in b]


def test_impossible_requests_come_back_marked(designer):
    small = SceneDesigner(designer.pipe, candidates=4, rounds=1)
    out = small.generate("exactly 2 red cubes; no red objects", n=1)
    assert len(out) == 1 and not out[0].satisfied
    assert out[0].unmet  # names what it misses
    with pytest.raises(ValueError, match="at most 18"):
        designer.generate("at least 20 objects")


def test_repairs_redraw_objects_past_a_count(designer):
    strict = SceneDesigner(designer.pipe, candidates=16, rounds=1, repairs=8)
    loose = SceneDesigner(designer.pipe, candidates=16, rounds=1, repairs=0)
    request = "exactly 4 metal objects; 10 objects"
    share = [sum(d.satisfied for d in d_.generate(request, n=16, seed=2)) / 16 for d_ in (strict, loose)]
    assert share[0] > share[1] and share[0] >= 0.75, share


def test_a_molecule_model_is_refused():
    from molgen.pipeline import MolgenPipeline

    with pytest.raises(ValueError, match="scene model"):
        SceneDesigner(MolgenPipeline.from_pretrained(device="cpu"))
