"""Constraint requests: parsing, and checks on scenes (molgen.scenes.constraints)."""

from __future__ import annotations

import numpy as np
import pytest

from molgen.scenes.constraints import Contains, Count, ObjectPattern, Relation, parse_request, unmet
from molgen.scenes.scene import Scene, SceneObject


def _scene() -> Scene:
    """Left to right: a red cube (front), a metal sphere (back), a red cube (middle); CLEVR's margin rule."""
    objects = [
        SceneObject("cube", "red", "rubber", "large"),
        SceneObject("sphere", "blue", "metal", "small"),
        SceneObject("cube", "red", "metal", "small"),
    ]
    return Scene.from_positions(objects, np.array([[-2.0, -1.0], [0.0, 2.0], [2.0, 0.5]]))


@pytest.mark.parametrize(
    ("text", "described"),
    [
        ("2 red cubes; something left of a metal sphere", ["exactly 2 red cubes", "something left of a metal sphere"]),
        ("at least 3 metal objects, no cylinders and 6 objects", ["at least 3 metal objects", "no cylinders", "exactly 6 objects"]),
        ("one big shiny ball", ["exactly 1 large metal sphere"]),
        ("a red cube behind a cylinder", ["a red cube behind a cylinder"]),
        ("red cube", ["at least 1 red cube"]),
        ("At most two small things", ["at most 2 small objects"]),
        ("something to the right of a blue thing", ["something right of a blue object"]),
        ("exactly 0 grey blocks", ["no gray cubes"]),
    ],
)
def test_requests_parse(text, described):
    assert [c.describe() for c in parse_request(text)] == described


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 red cubez", "unknown word 'cubez'"),
        ("at least cubes", "a number must follow 'at least'"),
        ("2 red cubes left of a sphere", "without a count"),
        ("  ", "nothing asked for"),
        ("red blue cube", "two colors"),
        ("a cube left of a sphere behind a cylinder", "one relation per clause"),
    ],
)
def test_bad_requests_name_the_clause(text, message):
    with pytest.raises(ValueError, match=message):
        parse_request(text)


def test_counts_and_relations_are_checked_on_the_scene():
    scene = _scene()
    assert Count(ObjectPattern(shape="cube", color="red"), 2, 2).check(scene)
    assert not Count(ObjectPattern(shape="cube", color="red"), 3, None).check(scene)
    assert Count(ObjectPattern(), 3, 3).check(scene)
    assert Count(ObjectPattern(shape="cylinder"), 0, 0).check(scene)
    sphere = ObjectPattern(shape="sphere", material="metal")
    assert Relation(ObjectPattern(), "left", sphere).pairs(scene) == [(0, 1)]
    assert Relation(ObjectPattern(), "right", sphere).pairs(scene) == [(2, 1)]
    assert Relation(ObjectPattern(color="red"), "front", sphere).pairs(scene) == [(0, 1), (2, 1)]
    assert not Relation(ObjectPattern(), "behind", sphere).check(scene)
    assert unmet(scene, parse_request("2 red cubes; something behind a metal sphere")) == ["something behind a metal sphere"]


def test_containment_keeps_attributes_and_relations():
    scene = _scene()
    part = Scene.from_positions(scene.objects[:2], np.asarray(scene.positions)[:2])
    assert Contains(part).embedding(scene) == {0: 0, 1: 1}
    flipped = Scene.from_positions(scene.objects[:2], np.array([[2.0, -1.0], [0.0, 2.0]]))  # the cube now right of the sphere
    assert not Contains(flipped).check(scene)
    recoloured = Scene.from_positions([SceneObject("cube", "green", "rubber", "large"), scene.objects[1]], np.asarray(scene.positions)[:2])
    assert not Contains(recoloured).check(scene)
