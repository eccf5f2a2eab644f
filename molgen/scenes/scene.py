"""CLEVR-style scenes: objects with four categorical attributes, a 2D ground-plane layout and the spatial
relations left / right / front / behind.

Coordinates. A scene's positions are ground-plane coordinates in the camera's frame: ``x`` along the camera's
"right" direction and ``y`` along its "behind" direction (CLEVR's ``directions`` vectors, both horizontal unit
vectors), in CLEVR's scene units (objects are placed in a 6 x 6 square; a large object has radius 0.7).

The relation rule is CLEVR's: object ``j`` is *right of* object ``i`` when ``(p_j - p_i) . right > margin`` with
``margin = 0.2`` (and likewise for behind, left = -right, front = -behind). Within the margin a pair is unrelated on
that axis. Each axis relation is therefore a *semiorder*: a strict partial order of the kind a threshold on 1D
positions produces. CLEVR's generator also keeps every pair of objects at least 0.4 apart along each axis when
placing them, so in real CLEVR scenes every pair is related on both axes (each axis is a total order).

A :class:`Scene` stores the relations as two boolean matrices' worth of ordered pairs, ``right`` and ``behind``
(``(i, j)`` in ``right``: object ``j`` is right of object ``i``, CLEVR's ``relationships["right"][i]`` contains
``j``); ``left`` and ``front`` are their converses. Scenes compare equal when their objects and relations are
equal, whatever their positions (which may be absent, e.g. for a scene read from a scene-graph file).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molgen.graph import DomainError

__all__ = [
    "ATTRIBUTES",
    "AXES",
    "COLORS",
    "MATERIALS",
    "RELATIONS",
    "RELATION_MARGIN",
    "SHAPES",
    "SIZES",
    "Scene",
    "SceneObject",
    "closure",
    "incomparable",
    "is_acyclic",
    "is_semiorder",
    "layout",
    "reduction",
    "relation_from_positions",
    "total_order_pairs",
]

SHAPES = ("cube", "sphere", "cylinder")
COLORS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
MATERIALS = ("rubber", "metal")
SIZES = ("small", "large")
ATTRIBUTES: dict[str, tuple[str, ...]] = {"shape": SHAPES, "color": COLORS, "material": MATERIALS, "size": SIZES}
"""Attribute name -> its values, in CLEVR's vocabulary; a value's index is its raw integer code."""

RELATION_MARGIN = 0.2
"""CLEVR's relation threshold (scene units): a pair is related on an axis only if it is further apart than this."""

AXES = ("x", "y")
RELATIONS: dict[str, tuple[str, bool]] = {
    "right": ("x", False),
    "left": ("x", True),
    "behind": ("y", False),
    "front": ("y", True),
}
"""Relation name -> (axis, whether it is the converse of the axis order)."""


@dataclass(frozen=True)
class SceneObject:
    """One object: shape, colour, material and size, each one of CLEVR's values (:data:`ATTRIBUTES`)."""

    shape: str
    color: str
    material: str
    size: str

    def __post_init__(self) -> None:
        for name, values in ATTRIBUTES.items():
            value = getattr(self, name)
            if value not in values:
                raise DomainError(f"object {name}={value!r} is not one of {list(values)}")

    def codes(self) -> tuple[int, int, int, int]:
        """Raw integer codes (index of each attribute value in :data:`ATTRIBUTES`)."""
        return tuple(ATTRIBUTES[name].index(getattr(self, name)) for name in ATTRIBUTES)  # type: ignore[return-value]

    @classmethod
    def from_codes(cls, codes: Sequence[int]) -> SceneObject:
        return cls(*(values[int(c)] for values, c in zip(ATTRIBUTES.values(), codes, strict=True)))

    def describe(self) -> str:
        """'large red metal cube'."""
        return f"{self.size} {self.color} {self.material} {self.shape}"


def _pairs(matrix: np.ndarray) -> frozenset[tuple[int, int]]:
    return frozenset((int(i), int(j)) for i, j in zip(*np.nonzero(matrix), strict=True))


@dataclass(frozen=True)
class Scene:
    """Objects, the two axis relations and optionally a layout.

    Attributes:
        objects: the objects, in this scene's order.
        right: ordered pairs ``(i, j)``: object ``j`` is right of object ``i``.
        behind: ordered pairs ``(i, j)``: object ``j`` is behind object ``i``.
        positions: (N, 2) camera-frame ground positions (x: right, y: behind) as nested tuples, or None. Not
            compared by ``==``: two scenes are equal when their objects and relations are.
    """

    objects: tuple[SceneObject, ...]
    right: frozenset[tuple[int, int]]
    behind: frozenset[tuple[int, int]]
    positions: tuple[tuple[float, float], ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        n = len(self.objects)
        for name in ("right", "behind"):
            for i, j in getattr(self, name):
                if not (0 <= i < n and 0 <= j < n):
                    raise DomainError(f"relation {name} ({i}, {j}) names an object outside 0..{n - 1}")
        if self.positions is not None and len(self.positions) != n:
            raise DomainError(f"{len(self.positions)} positions for {n} objects")

    @property
    def num_objects(self) -> int:
        return len(self.objects)

    def matrix(self, axis: str) -> np.ndarray:
        """(N, N) boolean matrix of an axis relation: ``[i, j]`` true when ``j`` is after ``i`` (right / behind)."""
        pairs = {"x": self.right, "y": self.behind}[axis]
        out = np.zeros((self.num_objects, self.num_objects), dtype=bool)
        for i, j in pairs:
            out[i, j] = True
        return out

    def relationships(self) -> dict[str, list[list[int]]]:
        """CLEVR's form: relation name -> for each object ``i``, the sorted objects that are <name> of ``i``."""
        out: dict[str, list[list[int]]] = {}
        for name, (axis, converse) in RELATIONS.items():
            m = self.matrix(axis)
            m = m.T if converse else m
            out[name] = [np.flatnonzero(row).tolist() for row in m]
        return out

    @classmethod
    def from_matrices(
        cls, objects: Sequence[SceneObject], right: np.ndarray, behind: np.ndarray, positions: np.ndarray | None = None
    ) -> Scene:
        return cls(
            objects=tuple(objects),
            right=_pairs(right),
            behind=_pairs(behind),
            positions=None if positions is None else tuple((float(a), float(b)) for a, b in np.asarray(positions)),
        )

    @classmethod
    def from_positions(
        cls, objects: Sequence[SceneObject], positions: np.ndarray, margin: float = RELATION_MARGIN
    ) -> Scene:
        """The scene whose relations CLEVR's rule derives from (N, 2) camera-frame positions."""
        positions = np.asarray(positions, dtype=float).reshape(-1, 2)
        return cls.from_matrices(
            objects,
            relation_from_positions(positions[:, 0], margin),
            relation_from_positions(positions[:, 1], margin),
            positions,
        )

    def permuted(self, order: Sequence[int]) -> Scene:
        """The same scene with objects in ``order`` (new object ``k`` is old object ``order[k]``)."""
        order = np.asarray(order, dtype=np.int64)
        positions = None if self.positions is None else np.asarray(self.positions)[order]
        return Scene.from_matrices(
            [self.objects[k] for k in order],
            self.matrix("x")[np.ix_(order, order)],
            self.matrix("y")[np.ix_(order, order)],
            positions,
        )

    def to_json(self) -> dict[str, Any]:
        """CLEVR-like JSON: objects (attributes, and ``position`` when known) and the four relationship lists
        (read back by :func:`molgen.scenes.io.scene_from_json`)."""
        objects = []
        for k, obj in enumerate(self.objects):
            record: dict[str, Any] = {name: getattr(obj, name) for name in ATTRIBUTES}
            if self.positions is not None:
                record["position"] = [round(v, 6) for v in self.positions[k]]
            objects.append(record)
        return {"objects": objects, "relationships": self.relationships()}


# --- relations as boolean matrices -------------------------------------------------------------------------


def relation_from_positions(values: np.ndarray, margin: float = RELATION_MARGIN) -> np.ndarray:
    """(N, N) boolean: ``[i, j]`` when ``values[j] - values[i] > margin`` (CLEVR's rule on one axis)."""
    values = np.asarray(values, dtype=float)
    return (values[None, :] - values[:, None]) > margin


def closure(relation: np.ndarray) -> np.ndarray:
    """Transitive closure of an (N, N) boolean relation (Warshall's algorithm)."""
    out = np.array(relation, dtype=bool, copy=True)
    for k in range(len(out)):
        out |= out[:, k : k + 1] & out[k : k + 1, :]
    return out


def is_acyclic(relation: np.ndarray) -> bool:
    """True when the directed graph of ``relation`` has no cycle (self-loops count as cycles)."""
    return not np.diag(closure(relation)).any()


def reduction(relation: np.ndarray) -> np.ndarray:
    """Transitive reduction of an acyclic relation: the pairs not implied by a path through another object.

    The reduction's closure equals the relation's closure, so the sparse form loses nothing.
    """
    full = closure(relation)
    two_step = (full.astype(np.int64) @ full.astype(np.int64)) > 0
    return full & ~two_step


def incomparable(order: np.ndarray) -> np.ndarray:
    """(N, N) boolean: distinct objects unrelated both ways."""
    order = np.asarray(order, dtype=bool)
    return ~order & ~order.T & ~np.eye(len(order), dtype=bool)


def is_semiorder(order: np.ndarray) -> bool:
    """True when a strict partial order is a semiorder, i.e. realisable as ``x_j - x_i > margin`` on some positions.

    Scott and Suppes (1958): a finite strict partial order is a semiorder iff it contains neither two disjoint
    two-chains ``a < b``, ``c < d`` with ``a || d`` and ``c || b`` (2+2) nor a three-chain ``a < b < c`` with an element
    incomparable to all three (3+1). The caller makes sure ``order`` is transitive and irreflexive.
    """
    p = np.asarray(order, dtype=bool)
    n = len(p)
    if n < 4:
        return True
    inc = incomparable(p)
    # 2+2-free <=> the sets of predecessors form a chain under inclusion
    below = p.T  # below[x] = set of y < x
    for a in range(n):
        for b in range(a + 1, n):
            if (below[a] & ~below[b]).any() and (below[b] & ~below[a]).any():
                return False
    # 3+1: a chain a < b < c and d incomparable to a, b and c
    for b in range(n):
        for d in np.flatnonzero(inc[b]):
            if (p[:, b] & inc[:, d]).any() and (p[b, :] & inc[d, :]).any():
                return False
    return True


def layout(order: np.ndarray, margin: float = RELATION_MARGIN) -> np.ndarray:
    """(N,) positions on one axis that realise a semiorder with CLEVR's rule: ``x_j - x_i > margin`` iff ``[i, j]``.

    Solves the difference constraints ``x_j - x_i >= margin + d`` for related pairs and ``|x_j - x_i| <= margin - d``
    for unrelated ones by shortest paths (Bellman-Ford from a virtual source). In units of ``margin / (2N + 2)``
    with ``d`` one unit, every cycle of constraints of a semiorder has non-negative weight (a cycle through ``a``
    related and ``b`` unrelated steps has ``b > a`` when the order is realisable at all), and the positions come out
    as whole units, at least one unit away from every threshold. Raises :class:`DomainError` if ``order`` is not a
    realisable semiorder. Positions are centred on 0.
    """
    p = np.asarray(order, dtype=bool)
    n = len(p)
    if n == 0:
        return np.zeros(0)
    unit_margin = 2 * n + 2
    # weight[u, v]: constraint x_v - x_u <= weight[u, v] (inf: none)
    weight = np.full((n, n), np.inf)
    i, j = np.nonzero(p)
    weight[j, i] = -(unit_margin + 1)  # x_i - x_j <= -(m + 1)  <=>  x_j - x_i >= m + 1
    a, b = np.nonzero(incomparable(p))
    weight[a, b] = unit_margin - 1
    dist = np.zeros(n)
    for _ in range(n + 1):
        relaxed = np.minimum(dist, (dist[:, None] + weight).min(axis=0))
        if np.array_equal(relaxed, dist):
            break
        dist = relaxed
    else:
        raise DomainError("the relation cannot be laid out (it is not a semiorder: a cycle of constraints)")
    units = dist - np.round(dist.mean())
    realised = relation_from_positions(units, unit_margin)
    if not np.array_equal(realised, p):
        raise DomainError("the relation cannot be laid out with CLEVR's margin rule (it is not a semiorder)")
    return units * (margin / unit_margin)


def total_order_pairs(order: Iterable[int]) -> np.ndarray:
    """(N, N) boolean total order in which the objects come in the sequence ``order``."""
    order = list(order)
    n = len(order)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank[:, None] < rank[None, :]
