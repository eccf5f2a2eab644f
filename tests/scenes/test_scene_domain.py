"""SceneDomain: exact round trips, canonical order, layout-aware decoding, config, properties."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from molgen.domains import domain_class
from molgen.domains.scene import SceneDomain
from molgen.graph import DomainError, OutOfVocabularyError
from molgen.scenes.scene import Scene, SceneObject


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_round_trip_exact_on_real_and_generated(form, real_scenes, generated_scenes):
    scenes = real_scenes + generated_scenes
    domain = SceneDomain.fit(scenes, form=form)
    for scene in scenes:
        graph = domain.to_graph(scene)
        back = domain.from_graph(graph)
        assert back == domain.canonical(scene)
        assert domain.to_graph(back) == graph
        # the decoded layout reproduces the relations with CLEVR's rule
        assert Scene.from_positions(back.objects, np.asarray(back.positions)) == back


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_round_trip_with_unrelated_pairs(form, partial_scenes):
    domain = SceneDomain.fit(partial_scenes, form=form)
    assert not domain.total
    for scene in partial_scenes:
        assert domain.from_graph(domain.to_graph(scene)) == domain.canonical(scene)


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_canonical_order_ignores_object_numbering(form, generated_scenes, partial_scenes):
    domain = SceneDomain.fit(generated_scenes + partial_scenes, form=form, total=False)
    rng = np.random.default_rng(0)
    for scene in generated_scenes[:100] + partial_scenes:
        shuffled = scene.permuted(rng.permutation(scene.num_objects))
        assert domain.to_graph(shuffled) == domain.to_graph(scene)


def test_canonical_order_with_identical_unrelated_objects():
    cube = SceneObject("cube", "red", "metal", "large")
    sphere = SceneObject("sphere", "blue", "rubber", "small")
    # four identical cubes in a row with a sphere behind the middle ones: many ties to break
    scene = Scene.from_positions(
        [cube, cube, cube, cube, sphere], np.array([[0, 0], [0.1, 0], [0.5, 0], [0.6, 0], [0.3, 1]])
    )
    domain = SceneDomain.fit([scene], total=False)
    graphs = {
        domain.to_graph(scene.permuted(p)).edge_attr.tobytes()
        for p in np.random.default_rng(1).permuted(np.tile(np.arange(5), (30, 1)), axis=1)
    }
    assert len(graphs) == 1


@pytest.mark.parametrize("form", ["dense", "sparse"])
@pytest.mark.parametrize("partial", [False, True])
def test_from_scores_always_valid(form, partial, generated_scenes, partial_scenes):
    scenes = partial_scenes if partial else generated_scenes[:300]
    domain = SceneDomain.fit(scenes, form=form)
    assert domain.total is not partial
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 13))
        nodes = [rng.dirichlet(np.ones(k), size=n) for k in domain.vocab.node_sizes]
        edges = rng.dirichlet(np.full(domain.vocab.edge_size, 0.3), size=(n, n))
        scene = domain.from_scores(nodes, edges)
        assert scene.num_objects == n
        assert domain.problems(domain.to_graph(scene)) == []
        assert Scene.from_positions(scene.objects, np.asarray(scene.positions)) == scene


def test_from_scores_keeps_a_valid_argmax(generated_scenes):
    domain = SceneDomain.fit(generated_scenes, form="sparse")
    for scene in generated_scenes[:50]:
        graph = domain.to_graph(scene)
        nodes = [np.eye(k)[graph.x[:, f]] * 0.7 + 0.3 / k for f, k in enumerate(domain.vocab.node_sizes)]
        edges = np.eye(domain.vocab.edge_size)[np.triu(graph.dense_edges(), 1)] * 0.6 + 0.4 / domain.vocab.edge_size
        assert domain.from_scores(nodes, edges) == domain.canonical(scene)


def test_config_round_trip_and_registry(real_scenes):
    domain = SceneDomain.fit(real_scenes, form="sparse")
    config = json.loads(json.dumps(domain.to_config()))
    again = domain_class(config["name"]).from_config(config)
    assert isinstance(again, SceneDomain)
    assert (again.form, again.total, again.vocab.to_dict()) == ("sparse", True, domain.vocab.to_dict())
    assert again.to_graph(real_scenes[0]) == domain.to_graph(real_scenes[0])


def test_items_as_json_and_errors(real_scenes):
    domain = SceneDomain.fit(real_scenes)
    text = json.dumps(real_scenes[3].to_json())
    assert domain.to_graph(text) == domain.to_graph(real_scenes[3])
    with pytest.raises(DomainError, match="scene text is not JSON"):
        domain.to_graph("{")
    only_cubes = SceneDomain.fit(
        [Scene.from_positions([SceneObject("cube", "red", "metal", "large")] * 2, np.array([[0, 0], [1, 1]]))]
    )
    with pytest.raises(
        OutOfVocabularyError,
        match=r"object 0 in canonical order \(large brown rubber cylinder\) has shape='cylinder', which the vocabulary does not contain \(known: \['cube'\]\)",
    ):
        only_cubes.to_graph(real_scenes[0])
    partial = Scene.from_positions([SceneObject("cube", "red", "metal", "large")] * 2, np.array([[0, 0], [0.1, 1]]))
    with pytest.raises(DomainError, match="unrelated"):
        domain.to_graph(partial)


def test_properties_and_statistics(real_scenes):
    domain = SceneDomain.fit(real_scenes)
    scene = real_scenes[0]
    props = domain.properties(scene)
    assert props["num_objects"] == scene.num_objects
    assert props["cube"] + props["sphere"] + props["cylinder"] == scene.num_objects
    assert (
        sum(props[c] for c in ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"))
        == scene.num_objects
    )
    stats = domain.statistics(scene)
    n = scene.num_objects
    assert stats == {"x_related": n * (n - 1) / 2, "y_related": n * (n - 1) / 2, "x_depth": n, "y_depth": n}
    with pytest.raises(ValueError, match="not computed for scenes"):
        domain.properties(scene, ["QED"])


def test_scene_modules_do_not_import_rdkit_or_torch():
    code = (
        "import sys, molgen.scenes.scene, molgen.scenes.generator, molgen.scenes.io, molgen.scenes.validity, "
        "molgen.scenes.metrics, molgen.scenes.canonical; "
        "print(sorted(m for m in ('rdkit', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def _graph_in_given_order(domain: SceneDomain, scene: Scene):
    """The dense graph of ``scene`` with its objects in the scene's own order (not canonical)."""
    from molgen.graph import Graph

    n = scene.num_objects
    rx, ry = scene.matrix("x"), scene.matrix("y")
    i, j = np.triu_indices(n, 1)
    codes = 3 * np.where(rx[i, j], 1, np.where(rx[j, i], 2, 0)) + np.where(ry[i, j], 1, np.where(ry[j, i], 2, 0))
    x = np.array([o.codes() for o in scene.objects])
    return domain.label_graph(Graph(x=x, edge_index=np.stack([i, j], 1)[codes > 0], edge_attr=codes[codes > 0]))


def test_from_graph_gives_the_canonical_scene_whatever_the_node_order(real_scenes):
    fitted = SceneDomain.fit(real_scenes)
    vocab = dataclasses.replace(fitted.vocab, edge_values=list(range(1, 9)))  # codes a canonical order never uses
    domain = SceneDomain(vocab, total=True)
    rng = np.random.default_rng(0)
    decoded = []
    for scene in real_scenes[:50]:
        shuffled = scene.permuted(rng.permutation(scene.num_objects))
        back = domain.from_graph(_graph_in_given_order(domain, shuffled))
        assert back == domain.canonical(scene)
        decoded += [back, domain.from_graph(domain.to_graph(scene))]
    assert len(set(decoded)) == 50  # decoded scenes are hashable and deduplicate like canonical SMILES
