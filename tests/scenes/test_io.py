"""Readers for CLEVR scene JSON and sg2im / Visual Genome scene-graph JSON, and the JSON-lines writer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molgen.graph import DomainError
from molgen.scenes.io import (
    SceneGraphRecord,
    read_clevr_scenes,
    read_jsonl,
    read_scene_graphs,
    record_to_scene,
    scene_from_json,
    write_jsonl,
)
from molgen.scenes.scene import SceneObject
from tests.scenes.conftest import FIXTURES


def test_clevr_reader_on_fixture():
    scenes = read_clevr_scenes(FIXTURES / "clevr_scenes.json")
    assert len(scenes) == 2
    first = scenes[0]
    assert first.num_objects == 5
    assert first.objects[0] == SceneObject("cylinder", "brown", "rubber", "large")
    data = json.loads((FIXTURES / "clevr_scenes.json").read_text())["scenes"][0]
    assert first.relationships() == {name: data["relationships"][name] for name in first.relationships()}
    right = np.array(data["directions"]["right"])
    assert np.isclose(first.positions[0][0], np.array(data["objects"][0]["3d_coords"]) @ right)


def test_clevr_reader_names_the_scene_at_fault(tmp_path):
    data = json.loads((FIXTURES / "clevr_scenes.json").read_text())
    data["scenes"][1]["objects"][2]["color"] = "pink"
    data["scenes"][0]["relationships"]["left"][1] = []  # was [0, 2]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"scenes": [data["scenes"][1]]}))
    with pytest.raises(DomainError, match=r"scene 1: object color='pink' is not one of"):
        read_clevr_scenes(path)
    path.write_text(json.dumps({"scenes": [data["scenes"][0]]}))
    with pytest.raises(DomainError, match="scene 0: right/left are not converses"):
        read_clevr_scenes(path)


def test_sg2im_reader_and_conversion():
    records = read_scene_graphs(FIXTURES / "sg2im_scene_graphs.json")
    assert [r.names for r in records][1] == ["small yellow shiny ball", "large cyan matte block"]
    assert records[0].triples[0] == (0, "left of", 1)
    scene = record_to_scene(records[0])
    assert scene.objects[1] == SceneObject("sphere", "blue", "rubber", "small")
    # 0 left of 1 left of 2: closed to 0 < 1 < 2 on x; 2 behind 0 and 1 in front of 0 on y
    assert scene.right == {(0, 1), (1, 2), (0, 2)}
    assert scene.behind == {(0, 2), (1, 0), (1, 2)}
    second = record_to_scene(records[1])
    assert second.objects == (
        SceneObject("sphere", "yellow", "metal", "small"),
        SceneObject("cube", "cyan", "rubber", "large"),
    )
    assert second.right == {(0, 1)} and second.behind == {(1, 0)}


def test_visual_genome_reader_and_conversion():
    records = read_scene_graphs(FIXTURES / "vg_scene_graphs.json")
    assert [r.image_id for r in records] == [1, 2]
    assert records[0].triples == [(0, "left of", 1), (1, "LEFT OF", 2), (2, "behind", 0)]
    assert records[0].attributes[2] == ["purple", "large", "shiny"]
    scene = record_to_scene(records[0])
    assert scene.objects[2] == SceneObject("cylinder", "purple", "metal", "large")
    assert scene.right == {(0, 1), (1, 2), (0, 2)} and scene.behind == {(0, 2)}
    with pytest.raises(DomainError, match=r"object 0 \('tall man'\) has no shape"):
        record_to_scene(records[1])


def test_conversion_errors_name_the_problem():
    record = SceneGraphRecord(["red metal large cube", "blue rubber small sphere"], [[], []], [(0, "riding", 1)])
    with pytest.raises(DomainError, match="predicate 'riding'"):
        record_to_scene(record)
    record.triples = [(0, "left of", 1), (1, "left of", 0)]
    with pytest.raises(DomainError, match="left/right relations contradict"):
        record_to_scene(record)
    record.names[0] = "red blue metal large cube"
    with pytest.raises(DomainError, match=r"several \(blue, red\) color"):
        record_to_scene(record)


def test_jsonl_round_trip(tmp_path, generated_scenes, real_scenes):
    scenes = generated_scenes[:20] + real_scenes[:20]
    path = tmp_path / "scenes.jsonl"
    assert write_jsonl(scenes, path) == 40
    back = read_jsonl(path)
    assert back == scenes
    assert all(np.allclose(a.positions, b.positions, atol=1e-6) for a, b in zip(back, scenes, strict=True))
    with path.open("a") as f:
        f.write("{not json\n")
    with pytest.raises(DomainError, match="line 41 is not JSON"):
        read_jsonl(path)


def test_scene_json_without_relationships_uses_positions(generated_scenes):
    data = generated_scenes[0].to_json()
    del data["relationships"]
    assert scene_from_json(data) == generated_scenes[0]
    with pytest.raises(DomainError, match="an object has no 'size'"):
        scene_from_json({"objects": [{"shape": "cube", "color": "red", "material": "metal"}], "relationships": None})
