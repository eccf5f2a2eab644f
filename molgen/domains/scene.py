"""The scene-graph domain: CLEVR-style :class:`~molgen.scenes.scene.Scene` <-> :class:`~molgen.graph.Graph`.

Nodes are objects in canonical order (:mod:`molgen.scenes.canonical`: left to right, then front to back, with
ties broken so that isomorphic scenes give the same graph); node fields are shape, colour, material and size (raw
value: the index of the value in CLEVR's list, :data:`~molgen.scenes.scene.ATTRIBUTES`).

Edges. :class:`~molgen.graph.Graph` stores each unordered pair once (``i < j``) with one label, so a pair's label
says how the later object ``j`` stands relative to ``i`` on both axes: raw value ``3 * x + y`` with ``x`` 1 when
``j`` is right of ``i``, 2 when it is left, 0 when neither, and ``y`` likewise for behind (1) / in front (2)
(:func:`~molgen.scenes.validity.edge_code`). Raw 0 (unrelated on both axes) is no edge. Because the canonical
order sorts objects by how many objects are left of them, ``x`` of a canonical graph is never 2; graphs from a
decoder may say anything, and :mod:`molgen.scenes.validity` reads every code.

Two forms (``SceneDomain(form=...)``, saved in ``domain.json``):

- ``"dense"``: every related pair is an edge (each axis relation is transitively closed);
- ``"sparse"``: per axis, only the transitive reduction (pairs not implied through another object), so that a
  model must produce consistent, acyclic chains; the decoder closes them again.

``total`` (fitted from data: true when every training scene relates every pair on both axes, as real CLEVR
does) makes a graph with an unrelated pair invalid and makes :meth:`SceneDomain.from_scores` produce total orders.

A decoded scene carries a layout (positions that reproduce its relations with CLEVR's margin rule, one of many);
scenes compare equal by objects and relations, never by positions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from molgen.graph import DomainError, Graph, OutOfVocabularyError, Vocabulary
from molgen.scenes.canonical import canonical_order
from molgen.scenes.io import scene_from_json
from molgen.scenes.scene import (
    ATTRIBUTES,
    RELATION_MARGIN,
    Scene,
    SceneObject,
    closure,
    is_acyclic,
    is_semiorder,
    layout,
    reduction,
    total_order_pairs,
)
from molgen.scenes.validity import FORMS, axis_matrices, decode_edge_code, graph_problems

__all__ = ["EDGE_FIELD", "NODE_FIELDS", "SceneDomain", "as_scene", "scene_to_raw_graph"]

NODE_FIELDS = list(ATTRIBUTES)
_UNRELATED, _AFTER, _BEFORE = 0, 1, 2  # an axis part of an edge code (molgen.scenes.validity.edge_code)
EDGE_FIELD = "relation"


def as_scene(item: Scene | dict | str) -> Scene:
    """A :class:`Scene` from a scene, its JSON dict (:meth:`Scene.to_json`) or JSON text."""
    if isinstance(item, Scene):
        return item
    if isinstance(item, str):
        try:
            item = json.loads(item)
        except json.JSONDecodeError as exc:
            raise DomainError(f"scene text is not JSON: {exc.msg} at character {exc.pos}") from None
    if isinstance(item, dict):
        return scene_from_json(item)
    raise DomainError(f"expected a Scene, a scene JSON dict or JSON text, got {type(item).__name__}")


def _closed(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Closed x and y relations of a scene; DomainError if an axis has a cycle or a self-relation."""
    out = []
    for axis, name in (("x", "left/right"), ("y", "front/behind")):
        r = scene.matrix(axis)
        if not is_acyclic(r):
            raise DomainError(f"scene: the {name} relations have a cycle; no layout can realise them")
        out.append(closure(r))
    return out[0], out[1]


def scene_to_raw_graph(scene: Scene, form: str = "dense") -> tuple[Graph, Scene]:
    """Raw graph (attribute codes, edge codes) of a scene in canonical order, and the canonical scene it encodes
    (objects reordered, relations transitively closed, positions kept).

    Raises :class:`DomainError` when an axis relation is cyclic or cannot be realised by a layout.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    rx, ry = _closed(scene)
    for r, name in ((rx, "left/right"), (ry, "front/behind")):
        if not is_semiorder(r):
            raise DomainError(
                f"scene: the {name} relations cannot come from positions with CLEVR's margin rule (not a semiorder)"
            )
    closed = Scene.from_matrices(
        scene.objects, rx, ry, None if scene.positions is None else np.asarray(scene.positions)
    )
    order = canonical_order(closed)
    canon = closed.permuted(order)
    rx, ry = canon.matrix("x"), canon.matrix("y")
    if form == "sparse":
        rx, ry = reduction(rx), reduction(ry)
    n = canon.num_objects
    x = np.array([obj.codes() for obj in canon.objects], dtype=np.int64).reshape(n, len(NODE_FIELDS))
    i, j = np.triu_indices(n, 1)
    xr = np.where(rx[i, j], 1, np.where(rx[j, i], 2, 0))
    yr = np.where(ry[i, j], 1, np.where(ry[j, i], 2, 0))
    codes = 3 * xr + yr
    keep = codes > 0
    graph = Graph(
        x=x,
        edge_index=np.stack([i[keep], j[keep]], axis=1).astype(np.int64).reshape(-1, 2),
        edge_attr=codes[keep].astype(np.int64),
    )
    return graph, canon


class SceneDomain:
    """CLEVR-style scenes as graphs, with a vocabulary fitted on training scenes.

    >>> from molgen.scenes.generator import generate_scenes
    >>> scenes = generate_scenes(20, seed=0)
    >>> domain = SceneDomain.fit(scenes, form="sparse")
    >>> domain.from_graph(domain.to_graph(scenes[0])) == domain.canonical(scenes[0])
    True
    """

    name = "scene"
    item_noun = "scene"  # what messages call one item
    node_noun = "objects"  # and its nodes
    connected = False  # a sparse scene can have unrelated groups of objects and still be valid
    directed_edges = True  # an edge label says how the later object stands to the earlier one

    @staticmethod
    def item_text(item: Scene | dict | str) -> str:
        """One line of compact JSON (:meth:`Scene.to_json`): how a dataset's ``items.txt`` and a scene file hold it."""
        return json.dumps(as_scene(item).to_json(), separators=(",", ":"))

    def __init__(
        self, vocab: Vocabulary, form: str = "dense", total: bool = False, margin: float = RELATION_MARGIN
    ) -> None:
        if vocab.node_fields != NODE_FIELDS or vocab.edge_field != EDGE_FIELD:
            raise ValueError(
                f"vocabulary fields {vocab.node_fields}/{vocab.edge_field} are not a scene's ({NODE_FIELDS}/{EDGE_FIELD})"
            )
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        for f, name in enumerate(NODE_FIELDS):
            if not set(vocab.node_values[f]) <= set(range(len(ATTRIBUTES[name]))):
                raise ValueError(
                    f"vocabulary {name} codes {vocab.node_values[f]}: known codes are 0..{len(ATTRIBUTES[name]) - 1}"
                )
        if not set(vocab.edge_values) <= set(range(1, 9)):
            raise ValueError(f"vocabulary relation codes {vocab.edge_values}: known codes are 1..8")
        self.vocab, self.form, self.total, self.margin = vocab, form, bool(total), float(margin)

    @classmethod
    def fit(cls, scenes: Sequence[Scene | dict | str], form: str = "dense", total: bool | None = None) -> SceneDomain:
        """Fit the vocabulary on scenes; ``total`` (None: from the data) says whether every pair must be related."""
        graphs = [scene_to_raw_graph(as_scene(s), form)[0] for s in scenes]
        node_raw = np.concatenate([g.x for g in graphs]) if graphs else np.zeros((0, len(NODE_FIELDS)), np.int64)
        edge_raw = np.concatenate([g.edge_attr for g in graphs]) if graphs else np.zeros(0, np.int64)
        if total is None:
            total = all(_is_total(as_scene(s)) for s in scenes)
        return cls(Vocabulary.fit(NODE_FIELDS, node_raw, EDGE_FIELD, edge_raw), form, total)

    # --- scene <-> graph -----------------------------------------------------------------------------------

    def to_graph(self, item: Scene | dict | str) -> Graph:
        """Scene (or its JSON) -> labelled graph in canonical order; errors name the object or relation."""
        scene = as_scene(item)
        raw, _ = scene_to_raw_graph(scene, self.form)
        if self.total and not _is_total(scene):
            raise DomainError("scene: some pair of objects is unrelated on an axis; this domain relates every pair")
        return self.label_graph(raw)

    def label_graph(self, raw: Graph) -> Graph:
        """Map a raw graph (attribute and relation codes) to vocabulary labels."""
        try:
            x = self.vocab.node_labels(raw.x)
        except OutOfVocabularyError as exc:
            _, row, field_name, value = exc.args
            known = [ATTRIBUTES[field_name][v] for v in self.vocab.node_values[NODE_FIELDS.index(field_name)]]
            raise OutOfVocabularyError(
                f"scene: object {row} in canonical order ({SceneObject.from_codes(raw.x[row]).describe()}) has {field_name}={ATTRIBUTES[field_name][value]!r}, which the vocabulary does not contain (known: {known})"
            ) from None
        try:
            edge_attr = self.vocab.edge_labels(raw.edge_attr)
        except OutOfVocabularyError as exc:
            _, row, _, value = exc.args
            i, j = raw.edge_index[row].tolist()
            raise OutOfVocabularyError(
                f"scene: objects {i}-{j} have relation code {value} {decode_edge_code(value)}, which the vocabulary "
                f"does not contain (known: {self.vocab.edge_values})"
            ) from None
        return Graph(x=x, edge_index=raw.edge_index, edge_attr=edge_attr)

    def raw_graph(self, graph: Graph) -> Graph:
        """Map vocabulary labels back to raw codes (drops edges labelled 0)."""
        keep = graph.edge_attr > 0
        return Graph(
            x=self.vocab.node_raw(graph.x),
            edge_index=graph.edge_index[keep],
            edge_attr=self.vocab.edge_raw(graph.edge_attr[keep]),
        )

    def problems(self, graph: Graph) -> list[str]:
        """Every reason a labelled graph is not a valid scene of this domain (:mod:`molgen.scenes.validity`)."""
        return graph_problems(graph, self.vocab, self.form, self.total)  # type: ignore[arg-type]

    def from_graph(self, graph: Graph) -> Scene:
        """Labelled graph -> canonical scene (objects in canonical order, relations closed, a layout), so that
        isomorphic graphs decode to equal scenes (as SMILES are canonical); raises :class:`DomainError` (a
        ``ValueError``) naming the first problem when the graph is not a valid scene."""
        problems = self.problems(graph)
        if problems:
            raise DomainError(f"decoded graph is not a valid scene: {problems[0]}")
        rx, ry = axis_matrices(graph, self.vocab)
        return self._scene(self.vocab.node_raw(graph.x), closure(rx), closure(ry))

    def _scene(self, raw_x: np.ndarray, rx: np.ndarray, ry: np.ndarray) -> Scene:
        """The canonical scene of (n, F) raw attribute codes and closed, realisable axis relations, with a layout."""
        scene = Scene.from_matrices([SceneObject.from_codes(codes) for codes in raw_x.tolist()], rx, ry)
        scene = scene.permuted(canonical_order(scene))
        rx, ry = scene.matrix("x"), scene.matrix("y")
        positions = np.stack([layout(rx, self.margin), layout(ry, self.margin)], axis=1).reshape(-1, 2)
        return Scene.from_matrices(scene.objects, rx, ry, positions)

    def from_scores(self, node_probs: list[np.ndarray], edge_probs: np.ndarray) -> Scene:
        """Layout-aware decoding: a valid scene from decoder probabilities, by construction.

        ``node_probs`` holds one (n, K_f) array per node field, ``edge_probs`` is (n, n, K_e) (label 0 = no edge;
        the pair ``i < j`` is read from ``[i, j]``). If the argmax graph is a valid scene, that scene is returned
        (canonical, as from :meth:`from_graph`).
        Otherwise each object takes its argmax attributes (one value each, always valid) and each axis is decided
        on its own from the probability that ``j`` is after ``i``, before ``i`` or unrelated (the label
        probabilities summed over the other axis):

        1. directed pairs more likely than both the reverse and "unrelated" are added, most probable first, unless
           they would close a cycle; the transitive closure of what was added is a partial order;
        2. it is turned into an order some layout realises: with ``total``, a linear extension that puts first the
           objects most likely to come before the others; otherwise the partial order itself when it is a
           semiorder, else the layered order in which an object's layer is the length of the longest chain below it;
        3. the layout (:func:`~molgen.scenes.scene.layout`) gives positions that reproduce the relations, and the
           scene is returned in canonical order.

        In the sparse form the same steps apply: the pairs the decoder proposes are chain links whose closure is the
        order.
        """
        x = np.stack([p.argmax(-1) for p in node_probs], axis=-1).astype(np.int64)  # (n, F) labels
        n = len(x)
        labels = edge_probs.argmax(-1)  # (n, n)
        graph = Graph.from_dense(x, np.triu(labels, 1))
        if not self.problems(graph):
            return self.from_graph(graph)
        codes = np.array([0, *self.vocab.edge_values])  # label -> raw code
        x_part = np.array([decode_edge_code(c)[0] for c in codes])  # (K_e,)
        y_part = np.array([decode_edge_code(c)[1] for c in codes])
        relations = []
        for part in (x_part, y_part):
            after = np.zeros((n, n))  # after[i, j]: probability that j comes after i
            unrelated = np.ones((n, n))
            i, j = np.triu_indices(n, 1)
            probs = edge_probs[i, j]  # (P, K_e)
            after[i, j] = probs[:, part == 1].sum(-1)
            after[j, i] = probs[:, part == 2].sum(-1)
            unrelated[i, j] = unrelated[j, i] = probs[:, part == 0].sum(-1)
            relations.append(self._decode_axis(after, unrelated))
        return self._scene(self.vocab.node_raw(x), relations[0], relations[1])

    def _decode_axis(self, after: np.ndarray, unrelated: np.ndarray) -> np.ndarray:
        """Steps 1-2 of :meth:`from_scores` for one axis: (N, N) after-probabilities -> a realisable order."""
        n = len(after)
        order = np.zeros((n, n), dtype=bool)  # closed as it grows
        candidates = np.argwhere((after > after.T) & (after > unrelated))
        weights = after[candidates[:, 0], candidates[:, 1]] if len(candidates) else np.zeros(0)
        for k in np.argsort(-weights, kind="stable"):
            i, j = candidates[k].tolist()
            if order[j, i] or order[i, j]:
                continue
            lower = order[:, i].copy()
            lower[i] = True
            upper = order[j, :].copy()
            upper[j] = True
            order |= lower[:, None] & upper[None, :]
        if self.total:
            earliness = (after - after.T).sum(axis=1)  # how much the others are expected after this object
            remaining = set(range(n))
            sequence = []
            while remaining:
                ready = [v for v in remaining if not any(order[u, v] for u in remaining if u != v)]
                v = max(ready, key=lambda v: (earliness[v], -v))
                sequence.append(v)
                remaining.remove(v)
            return total_order_pairs(sequence)
        if is_semiorder(order):
            return order
        level = np.zeros(n, dtype=np.int64)
        for v in _topological(order):
            below = np.flatnonzero(order[:, v])
            level[v] = level[below].max() + 1 if len(below) else 0
        return level[:, None] < level[None, :]

    def canonical(self, item: Scene | dict | str) -> Scene:
        """The form a round trip is compared in: objects in canonical order, relations transitively closed, and
        the layout this domain would decode (so a canonical scene is the decoding of its own graph)."""
        _, canon = scene_to_raw_graph(as_scene(item), self.form)
        return self._scene(
            np.array([o.codes() for o in canon.objects], dtype=np.int64).reshape(-1, len(NODE_FIELDS)),
            canon.matrix("x"),
            canon.matrix("y"),
        )

    # --- properties (what a prior can be conditioned on) and statistics (what calibration matches) -----------

    property_names: tuple[str, ...] = ("num_objects", *(value for values in ATTRIBUTES.values() for value in values))

    def properties(self, item: Scene | dict | str, names: Sequence[str] | None = None) -> dict[str, float]:
        """Object count and the number of objects with each attribute value ("red": how many red objects)."""
        scene = as_scene(item)
        names = list(names or self.property_names)
        unknown = [name for name in names if name not in self.property_names]
        if unknown:
            raise ValueError(f"properties {unknown}: not computed for scenes; known: {list(self.property_names)}")
        counts: dict[str, float] = {"num_objects": float(scene.num_objects)}
        for attribute, values in ATTRIBUTES.items():
            for value in values:
                counts[value] = float(sum(getattr(o, attribute) == value for o in scene.objects))
        return {name: counts[name] for name in names}

    statistic_names: tuple[str, ...] = ("x_related", "y_related", "x_depth", "y_depth")

    def statistics(self, item: Scene | dict | str, names: Sequence[str] | None = None) -> dict[str, float]:
        """Whole-scene counts: related pairs per axis (``x_related``, ``y_related``) and the longest chain of
        objects per axis (``x_depth``, ``y_depth``)."""
        names = list(names or self.statistic_names)
        unknown = [name for name in names if name not in self.statistic_names]
        if unknown:
            raise ValueError(f"statistics {unknown}: not computed for scenes; known: {list(self.statistic_names)}")
        scene = as_scene(item)
        rx, ry = _closed(scene)
        values = {
            "x_related": float(rx.sum()),
            "y_related": float(ry.sum()),
            "x_depth": float(_depth(rx)),
            "y_depth": float(_depth(ry)),
        }
        return {name: values[name] for name in names}

    def encoder_orders(self) -> list[list[int]]:
        """Orders the edge labels spell out, for a tokenizer's encoder (``TokenizerConfig.encoder_orders``): per
        axis (x, then y) the direction each edge label (index = label, 0 = no edge) gives the pair ``i < j``: 1 when
        ``j`` is after ``i`` (right / behind), -1 before, 0 unrelated on that axis.

        Only the sparse form has them: its edges are the axes' transitive reductions, and the encoder is given their
        closures as input (the dense form's edges already are the closures). Empty for the dense form.
        """
        if self.form != "sparse":
            return []
        parts = [(0, 0), *(decode_edge_code(code) for code in self.vocab.edge_values)]  # label -> (x, y) relation
        sign = {_UNRELATED: 0, _AFTER: 1, _BEFORE: -1}
        return [[sign[part[axis]] for part in parts] for axis in (0, 1)]

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vocab": self.vocab.to_dict(),
            "form": self.form,
            "total": self.total,
            "margin": self.margin,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SceneDomain:
        return cls(
            Vocabulary.from_dict(config["vocab"]),
            config.get("form", "dense"),
            config.get("total", False),
            config.get("margin", RELATION_MARGIN),
        )


def _is_total(scene: Scene) -> bool:
    n = scene.num_objects
    off = ~np.eye(n, dtype=bool)
    return all(((m | m.T) | ~off).all() for m in (closure(scene.matrix("x")), closure(scene.matrix("y"))))


def _topological(order: np.ndarray) -> list[int]:
    """Objects of an acyclic relation, each after everything below it."""
    n = len(order)
    done: list[int] = []
    placed = np.zeros(n, dtype=bool)
    while len(done) < n:
        for v in range(n):
            if not placed[v] and not (order[:, v] & ~placed).any():
                placed[v] = True
                done.append(v)
    return done


def _depth(order: np.ndarray) -> int:
    """Number of objects in the longest chain of a closed order (0 for an empty scene)."""
    n = len(order)
    if n == 0:
        return 0
    level = np.zeros(n, dtype=np.int64)
    for v in _topological(order):
        below = np.flatnonzero(order[:, v])
        level[v] = level[below].max() + 1 if len(below) else 0
    return int(level.max()) + 1
