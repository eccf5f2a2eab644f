"""Scene-graph metrics: validity, uniqueness and novelty (Weisfeiler-Lehman hash, isomorphism on collisions),
MMD of graph histograms with a Gaussian total-variation kernel, triplet statistics and graph edit distance.

Graphs for hashing, isomorphism and edit distance are *relation digraphs* (:func:`relation_digraph`): one node per
object labelled with its four attributes, one arc per related pair, oriented so that its label needs no object
order: along x when the pair is related on x (``j`` right of ``i``: arc ``i -> j`` labelled ``"R" + y`` with ``y``
in {B: behind, F: front, -: neither}), else along y (arc ``i -> j`` labelled ``"-B"`` when ``j`` is behind
``i``). In the sparse form only the transitive reductions' pairs are arcs.

MMD follows GraphRNN's and DiGress's evaluation: every scene gives a normalised histogram (of its node count, its
degrees in the form's graph, its node labels per attribute, its edge labels), and the squared MMD between two
sets of histograms uses the kernel ``k(p, q) = exp(-TV(p, q)^2 / (2 sigma^2))``, ``TV = 0.5 * |p - q|_1``.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence

import networkx as nx
import numpy as np

from molgen.scenes.scene import ATTRIBUTES, RELATIONS, Scene, closure, reduction

__all__ = [
    "HISTOGRAMS",
    "Deduplicator",
    "gaussian_tv_mmd",
    "graph_edit_distance",
    "histogram_mmds",
    "novelty",
    "relation_digraph",
    "triplet_counts",
    "triplet_metrics",
    "uniqueness",
    "validity",
    "wl_hash",
]


def _form_matrices(scene: Scene, form: str) -> tuple[np.ndarray, np.ndarray]:
    rx, ry = closure(scene.matrix("x")), closure(scene.matrix("y"))
    if form == "sparse":
        return reduction(rx), reduction(ry)
    if form != "dense":
        raise ValueError(f"form must be 'dense' or 'sparse', got {form!r}")
    return rx, ry


def _node_label(scene: Scene, k: int) -> str:
    return scene.objects[k].describe()


def relation_digraph(scene: Scene, form: str = "dense") -> nx.DiGraph:
    """The scene as an order-free labelled digraph (module docstring); node and edge attribute ``label``."""
    rx, ry = _form_matrices(scene, form)
    g = nx.DiGraph()
    for k in range(scene.num_objects):
        g.add_node(k, label=_node_label(scene, k))
    for i, j in zip(*np.nonzero(rx | rx.T | ry | ry.T), strict=True):
        i, j = int(i), int(j)
        if rx[i, j]:
            g.add_edge(i, j, label="R" + ("B" if ry[i, j] else "F" if ry[j, i] else "-"))
        elif not (rx[j, i]) and ry[i, j]:
            g.add_edge(i, j, label="-B")
    return g


def wl_hash(scene: Scene, form: str = "dense", iterations: int = 3) -> str:
    """Weisfeiler-Lehman hash of the relation digraph (equal for isomorphic scenes; rarely equal otherwise)."""
    return _wl(relation_digraph(scene, form), iterations)


def _wl(g: nx.DiGraph, iterations: int = 3) -> str:
    with warnings.catch_warnings():  # networkx >= 3.5 notes that its directed hashes changed; ours are never stored
        warnings.simplefilter("ignore", UserWarning)
        return nx.weisfeiler_lehman_graph_hash(g, node_attr="label", edge_attr="label", iterations=iterations)


def _match(a: dict, b: dict) -> bool:
    return a["label"] == b["label"]


class Deduplicator:
    """Remembers scenes up to isomorphism: WL hash buckets, an exact isomorphism test within a bucket."""

    def __init__(self, form: str = "dense") -> None:
        self.form = form
        self._buckets: dict[str, list[nx.DiGraph]] = {}
        self.collisions = 0
        """How many times a hash matched a non-isomorphic scene."""

    def __contains__(self, scene: Scene) -> bool:
        return self._find(scene)[1]

    def _find(self, scene: Scene) -> tuple[str, bool, nx.DiGraph]:
        g = relation_digraph(scene, self.form)
        key = _wl(g)
        for other in self._buckets.get(key, []):
            if nx.is_isomorphic(g, other, node_match=_match, edge_match=_match):
                return key, True, g
            self.collisions += 1
        return key, False, g

    def add(self, scene: Scene) -> bool:
        """Remember ``scene``; True if it was new."""
        key, seen, g = self._find(scene)
        if not seen:
            self._buckets.setdefault(key, []).append(g)
        return not seen

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())


def validity(items: Sequence[Scene | None]) -> float:
    """Share of decoded items that are scenes (``None``: the decoder found the graph invalid)."""
    return sum(item is not None for item in items) / len(items) if items else 0.0


def uniqueness(scenes: Sequence[Scene], form: str = "dense") -> float:
    """Share of distinct scenes (up to isomorphism) among ``scenes``."""
    seen = Deduplicator(form)
    return sum(seen.add(s) for s in scenes) / len(scenes) if scenes else 0.0


def novelty(scenes: Sequence[Scene], reference: Sequence[Scene], form: str = "dense") -> float:
    """Share of the distinct ``scenes`` that are not isomorphic to any reference scene."""
    known = Deduplicator(form)
    for s in reference:
        known.add(s)
    distinct = Deduplicator(form)
    unique = [s for s in scenes if distinct.add(s)]
    return sum(s not in known for s in unique) / len(unique) if unique else 0.0


# --- MMD of histograms ---------------------------------------------------------------------------------------


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def _degree_histogram(scene: Scene, form: str) -> np.ndarray:
    rx, ry = _form_matrices(scene, form)
    adjacency = rx | rx.T | ry | ry.T
    return np.bincount(adjacency.sum(axis=1), minlength=1).astype(float)


def _edge_label_histogram(scene: Scene, form: str) -> np.ndarray:
    labels = [d["label"] for _, _, d in relation_digraph(scene, form).edges(data=True)]
    names = [x + y for x in "R-" for y in "BF-"]
    return np.array([labels.count(name) for name in names], dtype=float)


def _attribute_histogram(attribute: str) -> Callable[[Scene, str], np.ndarray]:
    values = ATTRIBUTES[attribute]
    return lambda scene, form: np.array(
        [sum(getattr(o, attribute) == v for o in scene.objects) for v in values], dtype=float
    )


HISTOGRAMS: dict[str, Callable[[Scene, str], np.ndarray]] = {
    "node_count": lambda scene, form: np.bincount([scene.num_objects], minlength=scene.num_objects + 1).astype(float),
    "degree": _degree_histogram,
    **{attribute: _attribute_histogram(attribute) for attribute in ATTRIBUTES},
    "edge_label": _edge_label_histogram,
}
"""Histogram name -> function(scene, form) giving its unnormalised histogram."""


def gaussian_tv_mmd(a: Sequence[np.ndarray], b: Sequence[np.ndarray], sigma: float = 1.0) -> float:
    """Squared MMD between two sets of histograms with the Gaussian total-variation kernel (histograms are
    normalised and zero-padded to a common length)."""
    width = max(len(h) for h in [*a, *b])
    x = np.stack([_normalised(np.pad(h, (0, width - len(h)))) for h in a])  # (A, W)
    y = np.stack([_normalised(np.pad(h, (0, width - len(h)))) for h in b])  # (B, W)
    # Scenes share few distinct histograms: the kernel means run over distinct rows weighted by their counts, so
    # 10,000 x 10,000 scenes cost no more than their distinct histograms (the same value as over every pair).
    (x, wx), (y, wy) = (np.unique(h, axis=0, return_counts=True) for h in (x, y))
    wx, wy = wx / wx.sum(), wy / wy.sum()

    def mean_kernel(p: np.ndarray, wp: np.ndarray, q: np.ndarray, wq: np.ndarray) -> float:
        tv = 0.5 * np.abs(p[:, None, :] - q[None, :, :]).sum(-1)  # (P, Q)
        return float(wp @ np.exp(-(tv**2) / (2 * sigma**2)) @ wq)

    return mean_kernel(x, wx, x, wx) + mean_kernel(y, wy, y, wy) - 2 * mean_kernel(x, wx, y, wy)


def histogram_mmds(
    scenes: Sequence[Scene], reference: Sequence[Scene], form: str = "dense", sigma: float = 1.0
) -> dict[str, float]:
    """Squared MMD of every :data:`HISTOGRAMS` histogram between ``scenes`` and ``reference``."""
    return {
        name: gaussian_tv_mmd([f(s, form) for s in scenes], [f(s, form) for s in reference], sigma)
        for name, f in HISTOGRAMS.items()
    }


# --- triplets --------------------------------------------------------------------------------------------------


def triplet_counts(scenes: Sequence[Scene], attributes: Sequence[str] = tuple(ATTRIBUTES)) -> Counter:
    """Counts of (subject attributes, relation, object attributes), e.g. ("large red metal cube", "left", "small
    gray rubber sphere"), for every pair in each of the four relations (closed relations, whatever the form).
    ``attributes`` chooses what describes an object (all four by default; ``("shape",)`` for coarser triplets)."""
    counts: Counter = Counter()
    for scene in scenes:
        mats = {"x": closure(scene.matrix("x")), "y": closure(scene.matrix("y"))}
        names = [" ".join(getattr(o, a) for a in attributes) for o in scene.objects]
        for relation, (axis, converse) in RELATIONS.items():
            m = mats[axis].T if converse else mats[axis]
            for i, j in zip(*np.nonzero(m), strict=True):  # j is <relation> of i
                counts[(names[j], relation, names[i])] += 1
    return counts


def triplet_metrics(
    scenes: Sequence[Scene], reference: Sequence[Scene], attributes: Sequence[str] = tuple(ATTRIBUTES)
) -> dict[str, float]:
    """``triplet_tv``: total-variation distance between the two triplet distributions; ``novel_triplets``: share
    of the scenes' triplet occurrences whose triplet never occurs in the reference. With all four attributes there
    are 9,216 possible triplets, so both figures carry much sampling noise for a few hundred scenes; compare them
    with the same figures between two halves of the reference."""
    ours, theirs = triplet_counts(scenes, attributes), triplet_counts(reference, attributes)
    n_ours, n_theirs = sum(ours.values()), sum(theirs.values())
    keys = set(ours) | set(theirs)
    tv = 0.5 * sum(abs(ours[k] / max(n_ours, 1) - theirs[k] / max(n_theirs, 1)) for k in keys)
    novel = sum(c for k, c in ours.items() if k not in theirs)
    return {"triplet_tv": tv, "novel_triplets": novel / n_ours if n_ours else 0.0}


# --- edit distance -------------------------------------------------------------------------------------------


def graph_edit_distance(a: Scene, b: Scene, form: str = "dense", timeout: float = 5.0) -> float:
    """Graph edit distance between two scenes' relation digraphs (unit costs: node / arc insertion, deletion or
    relabelling), for looking at reconstruction failures. networkx's exact search, stopped after ``timeout``
    seconds with the best distance found so far (an upper bound)."""
    ga, gb = relation_digraph(a, form), relation_digraph(b, form)
    distance = nx.graph_edit_distance(ga, gb, node_match=_match, edge_match=_match, timeout=timeout)
    return float(distance) if distance is not None else float("nan")
