"""What makes a scene graph valid, checked from the graph alone (no positions).

A scene graph (:mod:`molgen.domains.scene`) has one label per node field (shape, colour, material, size) and one
edge label per pair ``i < j`` that combines the pair's relation on the x axis (``j`` right of ``i``, left of ``i``,
or neither) with its relation on the y axis (behind, in front, or neither). Per axis this gives a directed graph
``R`` (``R[i, j]``: ``j`` comes after ``i``). The rules, in the order they are checked:

1. **Attributes.** Every node has exactly one value per attribute, each a value of the vocabulary (by construction
   of the graph: one label per field; checked: labels in range).
2. **Edge labels** are known codes.
3. **Per axis**: irreflexive (no self-relation), antisymmetric (never both ``i -> j`` and ``j -> i``; one label per
   pair cannot say both, but a relationship file can), consistent with its converse (left is the converse of right
   and front of behind; holds by construction in a graph, checked for CLEVR-style relationship lists by
   :func:`relationship_problems`) and **acyclic**.
4. **Realisable by a layout** with CLEVR's margin rule: the order the axis relation stands for (the relation itself
   in the dense form, its transitive closure in the sparse form) must be a *semiorder* (Scott-Suppes: no 2+2 and no
   3+1 pattern). This is exactly "complete where the margin allows": a pair left unrelated must be close to both
   objects' positions in a way that other pairs do not contradict. With ``total=True`` (real CLEVR, where the
   generator keeps objects 0.4 apart on each axis) every pair must be related on both axes.
5. **Form.** Dense: each axis relation is transitively closed (every implied pair present). Sparse: each axis
   relation is its own transitive reduction (no pair that a path through other objects implies).

These are the checks that can be made without positions; any graph passing them is decoded to a scene with a
layout that reproduces its relations (:func:`molgen.scenes.scene.layout`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from molgen.graph import Graph, Vocabulary
from molgen.scenes.scene import closure, is_acyclic, is_semiorder, reduction

__all__ = [
    "EDGE_CODES",
    "FORMS",
    "axis_matrices",
    "axis_problems",
    "decode_edge_code",
    "edge_code",
    "graph_problems",
    "relationship_problems",
]

FORMS = ("dense", "sparse")
Form = Literal["dense", "sparse"]

_NONE, _AFTER, _BEFORE = 0, 1, 2
EDGE_CODES = tuple(range(1, 9))
"""Raw edge values: ``3 * x + y`` with ``x, y`` in {0: unrelated, 1: ``j`` after ``i`` (right / behind), 2: before}
for the pair ``i < j``; 0 (both unrelated) is no edge."""


def edge_code(x_relation: int, y_relation: int) -> int:
    """Raw edge value of a pair from its x and y relations (0 unrelated, 1 after, 2 before)."""
    return 3 * int(x_relation) + int(y_relation)


def decode_edge_code(code: int) -> tuple[int, int]:
    """Inverse of :func:`edge_code`."""
    return divmod(int(code), 3)


def axis_matrices(graph: Graph, vocab: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """(N, N) boolean x and y relations (``[i, j]``: ``j`` after ``i``) read from a labelled graph's edges.

    Edges labelled 0 are absent; labels must be in the vocabulary's range (see :func:`graph_problems`).
    """
    n = graph.num_nodes
    rel = {"x": np.zeros((n, n), dtype=bool), "y": np.zeros((n, n), dtype=bool)}
    keep = graph.edge_attr > 0
    codes = vocab.edge_raw(graph.edge_attr[keep])
    for (i, j), code in zip(graph.edge_index[keep].tolist(), codes.tolist(), strict=True):
        for axis, value in zip(("x", "y"), decode_edge_code(code), strict=True):
            if value == _AFTER:
                rel[axis][i, j] = True
            elif value == _BEFORE:
                rel[axis][j, i] = True
    return rel["x"], rel["y"]


def axis_problems(relation: np.ndarray, name: str, form: Form, total: bool) -> list[str]:
    """Problems of one axis relation of a graph in ``form`` (empty: valid); ``name`` goes into the messages."""
    r = np.asarray(relation, dtype=bool)
    if np.diag(r).any():
        return [f"{name}: object {int(np.flatnonzero(np.diag(r))[0])} is related to itself"]
    both = np.argwhere(r & r.T)
    if len(both):
        i, j = both[0].tolist()
        return [f"{name}: objects {i} and {j} are each after the other"]
    if not is_acyclic(r):
        cycle = np.flatnonzero(np.diag(closure(r)))
        return [f"{name}: the relation has a cycle through objects {cycle.tolist()}"]
    full = closure(r)
    problems = []
    if form == "dense" and not np.array_equal(full, r):
        i, j = np.argwhere(full & ~r)[0].tolist()
        problems.append(f"{name}: dense form lacks the implied pair {i} -> {j}")
    if form == "sparse" and not np.array_equal(reduction(r), r):
        i, j = np.argwhere(r & ~reduction(r))[0].tolist()
        problems.append(f"{name}: sparse form has the redundant pair {i} -> {j} (implied through other objects)")
    if total:
        unrelated = np.argwhere(~(full | full.T) & ~np.eye(len(r), dtype=bool))
        if len(unrelated):
            i, j = unrelated[0].tolist()
            problems.append(f"{name}: objects {i} and {j} are unrelated (this domain relates every pair)")
    elif not is_semiorder(full):
        problems.append(f"{name}: no layout realises the relation with the margin rule (not a semiorder)")
    return problems


def graph_problems(graph: Graph, vocab: Vocabulary, form: Form = "dense", total: bool = False) -> list[str]:
    """Every reason a labelled scene graph is not a valid scene in ``form`` (empty list: valid)."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    x = np.asarray(graph.x)
    if x.ndim != 2 or x.shape[1] != len(vocab.node_fields):
        return [f"node labels have shape {x.shape}; need one label per attribute {vocab.node_fields}"]
    for f, size in enumerate(vocab.node_sizes):
        bad = np.flatnonzero((x[:, f] < 0) | (x[:, f] >= size))
        if len(bad):
            return [f"object {int(bad[0])} has {vocab.node_fields[f]} label {int(x[bad[0], f])} outside 0..{size - 1}"]
    if graph.num_edges and (graph.edge_index[:, 0] == graph.edge_index[:, 1]).any():
        return [
            f"a relation from object {int(graph.edge_index[graph.edge_index[:, 0] == graph.edge_index[:, 1]][0, 0])} to itself"
        ]
    bad = np.flatnonzero((graph.edge_attr < 0) | (graph.edge_attr >= vocab.edge_size))
    if len(bad):
        return [
            f"edge {graph.edge_index[bad[0]].tolist()} has label {int(graph.edge_attr[bad[0]])} outside 0..{vocab.edge_size - 1}"
        ]
    rx, ry = axis_matrices(graph, vocab)
    return axis_problems(rx, "left/right", form, total) + axis_problems(ry, "front/behind", form, total)


def relationship_problems(relationships: Mapping[str, Sequence[Sequence[int]]], n: int) -> list[str]:
    """Problems of CLEVR-style relationship lists (``relationships[name][i]``: the objects <name> of ``i``).

    Checks that the four lists exist with one entry per object and in-range indices, that left is the converse of
    right and front of behind, and that each axis is irreflexive, antisymmetric and acyclic.
    """
    mats: dict[str, np.ndarray] = {}
    for name in ("left", "right", "front", "behind"):
        lists = relationships.get(name)
        if lists is None or len(lists) != n:
            return [f"relationships[{name!r}] needs one list per object ({n})"]
        m = np.zeros((n, n), dtype=bool)
        for i, targets in enumerate(lists):
            for j in targets:
                if not (isinstance(j, int) and 0 <= j < n):
                    return [f"relationships[{name!r}][{i}] names object {j!r}, not one of 0..{n - 1}"]
                m[i, j] = True
        mats[name] = m
    problems = []
    for after, before in (("right", "left"), ("behind", "front")):
        if not np.array_equal(mats[after], mats[before].T):
            i, j = np.argwhere(mats[after] != mats[before].T)[0].tolist()
            problems.append(f"{after}/{before} are not converses: object {j} is {after} of {i} in one list only")
            continue
        r = mats[after]
        if np.diag(r).any():
            problems.append(f"{after}: object {int(np.flatnonzero(np.diag(r))[0])} is {after} of itself")
        elif (r & r.T).any():
            i, j = np.argwhere(r & r.T)[0].tolist()
            problems.append(f"{after}: objects {i} and {j} are each {after} of the other")
        elif not is_acyclic(r):
            problems.append(
                f"{after}: the relation has a cycle through objects {np.flatnonzero(np.diag(closure(r))).tolist()}"
            )
    return problems
