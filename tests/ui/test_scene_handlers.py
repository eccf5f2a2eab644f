"""The page's scene tabs with the shipped scene model, without a browser: each tab's handler returns a summary, a
grid drawing every scene as a layout and as a graph, a table and a JSON-lines file; bad input is a message quoting
it escaped; the page builds with the domain switch, and with a scene model alone."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

gr = pytest.importorskip("gradio")

from molgen.scenes.constraints import Contains, parse_request
from molgen.scenes.io import scene_from_json
from molgen.ui.forms import Limits
from molgen.ui.scenes import EXAMPLE_PARTIAL

from .harness import REPO

HOSTILE = "<img src=x onerror=alert(1)>"
LIMITS = Limits(max_n=6, max_steps=20, max_repairs=2, max_calls=16, max_population=8, max_points=4, deadline=60)


@pytest.fixture(scope="module")
def scenes():
    import torch

    from molgen.pipeline import MolgenPipeline
    from molgen.ui.scenes import SceneService

    torch.set_num_threads(1)
    return SceneService(MolgenPipeline.from_pretrained(REPO / "checkpoints" / "clevr", device="cpu"), candidates=16)


def handlers(scenes):
    import app

    return app.SceneHandlers(scenes, LIMITS)


def _records(download) -> list[dict]:
    path = download.value["path"]  # the file Gradio serves (a copy in its cache)
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_design_tab_draws_satisfying_scenes_as_layouts_and_graphs(scenes):
    request = "2 red cubes; something left of a metal sphere"
    summary, grid, table, download = asyncio.run(handlers(scenes).design(request, 3, 0))
    assert "3 scenes" in summary and "3 satisfy" in summary
    assert grid.count('class="molgen-scene-layout"') == 3 and grid.count('class="molgen-scene-graph"') == 3
    assert list(table["satisfied"]) == [True] * 3
    for record in _records(download):
        assert all(c.check(scene_from_json(record["scene"])) for c in parse_request(request))


def test_complete_tab_rings_the_given_objects(scenes):
    summary, _, _, download = asyncio.run(handlers(scenes).complete(EXAMPLE_PARTIAL, "6 objects", 2, 0))
    assert "2 completions" in summary and "2 satisfy" in summary
    partial = scene_from_json(json.loads(EXAMPLE_PARTIAL))
    for record in _records(download):
        assert record["satisfied"] and Contains(partial).check(scene_from_json(record["scene"]))
        assert len(scene_from_json(record["scene"]).objects) == 6


def test_nearest_tab_draws_the_query_first(scenes):
    summary, grid, table, _ = asyncio.run(handlers(scenes).nearest("", 4, 0))
    assert "4 nearest scenes" in summary
    assert len(re.findall(r'class="molgen-scene"', grid)) == 5  # the query and its 4 neighbours
    assert list(table["latent distance"]) == sorted(table["latent distance"])


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        (lambda h: h.design(f"2 red {HOSTILE}", 2, 0), "unknown word"),
        (lambda h: h.complete(HOSTILE, "", 2, 0), "partial scene"),
        (lambda h: h.nearest(HOSTILE, 2, 0), "query scene"),
        (lambda h: h.design("a cube", 99, 0), "number of scenes"),
    ],
    ids=["request", "partial", "query", "count"],
)
def test_bad_input_is_a_message_quoting_it_escaped(scenes, call, shown):
    with pytest.raises(gr.Error) as error:
        asyncio.run(call(handlers(scenes)))
    text = error.value.message
    assert shown in text, text
    assert "<img" not in text


def test_the_page_builds_with_the_domain_switch_and_for_scenes_alone(scenes):
    import app
    from molgen.pipeline import MolgenPipeline
    from molgen.ui.service import DesignService

    both = app.build(DesignService(MolgenPipeline.from_pretrained(device="cpu")), LIMITS, scenes=scenes)
    alone = app.build(None, LIMITS, scenes=scenes)
    names = {d.get("api_name") for d in both.config["dependencies"]}
    assert {"generate", "scenes_design", "scenes_complete", "scenes_nearest"} <= names
    assert {d.get("api_name") for d in alone.config["dependencies"]} >= {"scenes_design"}
    assert "generate" not in {d.get("api_name") for d in alone.config["dependencies"]}
