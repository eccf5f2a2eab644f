"""Canonical object order of a scene: isomorphic scenes (same objects and relations up to renumbering) get the
same order, hence the same graph.

The order is found by colour refinement with individualisation, the method of graph canonisers such as nauty,
written for scenes of tens of objects:

1. Each object starts with the colour (number of objects left of it, number in front of it, attribute codes), so
   the primary order is left to right, then front to back; when every pair is related on the x axis (CLEVR) this
   alone fixes the order, left to right.
2. Colours are refined: an object's new colour is its colour and the sorted list of (relation to each other object,
   that object's colour), renumbered by sorted value, until the number of colours stops growing.
3. If some objects still share a colour, each object of the first shared colour in turn is given a colour of its
   own and the search continues; of the orders reached, the one whose scene encoding (attributes, then both
   relation matrices in that order) is smallest wins. Objects that are interchangeable (same attributes, same
   relations to every other object and unrelated to each other) give the same encoding, so only one of them is
   tried.
"""

from __future__ import annotations

import numpy as np

from molgen.scenes.scene import Scene

__all__ = ["canonical_order"]


def _pair_codes(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """(N, N) int: how object j stands relative to object i, in 0..8 (x and y each: 0 unrelated, 1 after, 2 before)."""
    x = rx.astype(np.int64) + 2 * rx.T.astype(np.int64)
    y = ry.astype(np.int64) + 2 * ry.T.astype(np.int64)
    return 3 * x + y


def _refine(colours: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Colour refinement until stable; colours are dense ranks 0..K-1 of sorted, isomorphism-invariant keys."""
    n = len(colours)
    while True:
        keys = [
            (int(colours[i]), tuple(sorted((int(codes[i, j]), int(colours[j])) for j in range(n) if j != i)))
            for i in range(n)
        ]
        ranks = {key: r for r, key in enumerate(sorted(set(keys)))}
        new = np.array([ranks[key] for key in keys], dtype=np.int64)
        if len(ranks) == len(set(colours.tolist())):
            return new
        colours = new


def _certificate(order: list[int], attrs: np.ndarray, rx: np.ndarray, ry: np.ndarray) -> tuple:
    idx = np.asarray(order)
    return (
        tuple(map(tuple, attrs[idx].tolist())),
        tuple(np.packbits(rx[np.ix_(idx, idx)]).tolist()),
        tuple(np.packbits(ry[np.ix_(idx, idx)]).tolist()),
    )


def canonical_order(scene: Scene) -> list[int]:
    """The objects of ``scene`` in canonical order (a list of its object indices); see the module docstring.

    Relations are used as the scene stores them; give a scene whose relations are transitively closed (as
    :class:`~molgen.domains.scene.SceneDomain` does) so that dense and sparse forms agree.
    """
    n = scene.num_objects
    if n == 0:
        return []
    attrs = np.array([obj.codes() for obj in scene.objects], dtype=np.int64)
    rx, ry = scene.matrix("x"), scene.matrix("y")
    codes = _pair_codes(rx, ry)
    initial = [(int(rx[:, i].sum()), int(ry[:, i].sum()), *attrs[i].tolist()) for i in range(n)]
    ranks = {key: r for r, key in enumerate(sorted(set(initial)))}
    colours = _refine(np.array([ranks[key] for key in initial], dtype=np.int64), codes)

    best: tuple[tuple, list[int]] | None = None

    def search(colours: np.ndarray) -> None:
        nonlocal best
        values, counts = np.unique(colours, return_counts=True)
        if (counts == 1).all():
            order = np.argsort(colours, kind="stable").tolist()
            cert = _certificate(order, attrs, rx, ry)
            if best is None or cert < best[0]:
                best = (cert, order)
            return
        cell = np.flatnonzero(colours == values[np.argmax(counts > 1)])
        tried: list[int] = []
        for v in cell.tolist():
            if any(_interchangeable(u, v, attrs, codes) for u in tried):
                continue
            tried.append(v)
            split = colours * 2  # make room below every colour: v takes the slot just under its cell
            split[v] -= 1
            search(_refine(np.unique(split, return_inverse=True)[1].astype(np.int64), codes))

    search(colours)
    assert best is not None
    return best[1]


def _interchangeable(u: int, v: int, attrs: np.ndarray, codes: np.ndarray) -> bool:
    """True when swapping objects u and v is an automorphism of the scene (twins)."""
    if not np.array_equal(attrs[u], attrs[v]) or codes[u, v] != 0:
        return False
    others = np.ones(len(attrs), dtype=bool)
    others[[u, v]] = False
    return bool(
        np.array_equal(codes[u, others], codes[v, others]) and np.array_equal(codes[others, u], codes[others, v])
    )
