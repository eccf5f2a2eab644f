"""Retrieval by latent similarity: the items of a candidate set nearest a query, compared through their latent
tokens only (one token per node), so it works for any domain a tokenizer was trained on.

Two distances between graphs ``a`` (n tokens) and ``b`` (m tokens), both on latents divided by the prior's (or the
candidates') per-dimension standard deviation so that every FSQ dimension counts alike:

- ``set`` (default): an optimal one-to-one matching of the tokens (Hungarian algorithm, squared Euclidean cost);
  each token left unmatched when ``n != m`` costs ``gap``. It is a token-level edit distance: a node whose token
  changed costs its change, a node added or removed costs ``gap``, which is what a graph edit distance counts, and
  it does not depend on the order of the nodes. ``gap`` defaults to the median cost between two tokens of
  different graphs of the candidate set (measured on them), so that adding a node costs about as much as replacing
  one with an unrelated one.
- ``mean``: squared Euclidean distance between the mean-pooled tokens, plus ``gap`` times the difference in node
  counts. Much cheaper (one matrix product for a whole candidate set), blind to which tokens make up the mean.

>>> pipe = MolgenPipeline.from_pretrained("checkpoints/clevr")             # doctest: +SKIP
>>> hits = nearest(pipe.encode(queries), pipe.encode(candidates), k=5)    # doctest: +SKIP
>>> hits[0][0].index, hits[0][0].distance                                 # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from molgen.records import Latents

__all__ = ["METRICS", "Neighbour", "latent_distances", "median_gap", "nearest", "token_sets"]

Metric = Literal["set", "mean"]
METRICS: tuple[str, ...] = ("set", "mean")


@dataclass(frozen=True)
class Neighbour:
    """One retrieved candidate: its index in the candidate set, its latent distance to the query, and (when the
    pipeline retrieved it) the candidate item itself."""

    index: int
    distance: float
    item: object | None = None


def token_sets(latents: Latents, scale: np.ndarray | None = None) -> list[np.ndarray]:
    """Each graph's (n_i, d) tokens as float64 arrays, divided by ``scale`` (d,) when given."""
    z = latents.z.detach().float().cpu().numpy()  # (B, N, d)
    sizes = latents.mask.detach().cpu().numpy().sum(1).astype(int)  # (B,)
    out = [z[b, : sizes[b]].astype(np.float64) for b in range(len(sizes))]
    return out if scale is None else [t / scale for t in out]


def median_gap(sets: list[np.ndarray], pairs: int = 20000, seed: int = 0) -> float:
    """Median squared distance between two tokens of different graphs of ``sets``, over ``pairs`` random pairs."""
    if len(sets) < 2:
        raise ValueError("median_gap needs at least two graphs to measure token distances between")
    rng = np.random.default_rng(seed)
    owner = np.concatenate([np.full(len(t), g) for g, t in enumerate(sets)])  # (T,) graph of each token
    tokens = np.concatenate(sets)  # (T, d)
    i, j = rng.integers(0, len(tokens), pairs), rng.integers(0, len(tokens), pairs)
    different = owner[i] != owner[j]
    return float(np.median(((tokens[i[different]] - tokens[j[different]]) ** 2).sum(-1)))


def _set_distance(a: np.ndarray, b: np.ndarray, gap: float) -> float:
    """Optimal matching cost of token sets a (n, d) and b (m, d), ``gap`` per unmatched token."""
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)  # (n, m)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum() + gap * abs(len(a) - len(b)))


def latent_distances(
    queries: Latents, candidates: Latents, metric: Metric = "set", gap: float | None = None, scale: np.ndarray | None = None
) -> np.ndarray:
    """(Q, C) latent distances between every query and every candidate graph (see the module docstring).

    ``scale`` (d,): what each latent dimension is divided by (default: the candidates' token standard deviation);
    ``gap``: the cost of a node present in one graph only (default: :func:`median_gap` of the candidates).
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: must be one of {METRICS}")
    if len(candidates) == 0 or len(queries) == 0:
        raise ValueError("latent_distances needs at least one query and one candidate")
    if scale is None:
        scale = np.concatenate(token_sets(candidates)).std(0) + 1e-8  # (d,)
    cand = token_sets(candidates, scale)
    query = token_sets(queries, scale)
    if gap is None:
        gap = median_gap(cand) if len(cand) > 1 else 1.0
    if metric == "mean":
        qm = np.stack([t.mean(0) for t in query])  # (Q, d)
        cm = np.stack([t.mean(0) for t in cand])  # (C, d)
        qn = np.array([len(t) for t in query], dtype=float)
        cn = np.array([len(t) for t in cand], dtype=float)
        return ((qm[:, None, :] - cm[None, :, :]) ** 2).sum(-1) + gap * np.abs(qn[:, None] - cn[None, :])
    return np.array([[_set_distance(q, c, gap) for c in cand] for q in query])


def nearest(
    queries: Latents, candidates: Latents, k: int = 5, metric: Metric = "set", gap: float | None = None
) -> list[list[Neighbour]]:
    """The ``k`` candidates nearest each query by latent distance, nearest first (ties: lower index first)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r}: the number of neighbours must be a whole number >= 1")
    distances = latent_distances(queries, candidates, metric, gap)  # (Q, C)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return [[Neighbour(int(c), float(distances[q, c])) for c in row] for q, row in enumerate(order)]
