"""Domain-agnostic labelled graphs, their vocabularies, and the interface every graph domain offers.

A :class:`Graph` has nodes in a canonical order, one categorical label per node *field* (for molecules:
element, formal charge, hydrogen count) and one categorical label per edge (for molecules: bond order).
The tokenizer and the prior only ever see these integer labels; the domain object (``molgen.domains``)
turns a domain object (a SMILES string, a scene) into a graph and back and knows what is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["DomainError", "Graph", "GraphDomain", "OutOfVocabularyError", "ValenceTable", "Vocabulary"]


class DomainError(ValueError):
    """A domain object that cannot be turned into a graph, or a graph that is not a valid domain object."""


class OutOfVocabularyError(DomainError):
    """A node or edge label that the vocabulary (fitted on training data) does not contain."""


@dataclass(frozen=True)
class Graph:
    """An undirected graph with categorical labels.

    Attributes:
        x: (N, F) integer node labels, one column per node field.
        edge_index: (E, 2) node index pairs with i < j, each edge once.
        edge_attr: (E,) integer edge labels (>= 1 once mapped through a vocabulary; 0 means "no edge").
    """

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[0])

    def num_components(self) -> int:
        """Number of connected components (edges labelled 0 do not connect)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        edges = self.edge_index[self.edge_attr > 0]
        adjacency = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(self.num_nodes, self.num_nodes))
        return int(connected_components(adjacency, directed=False)[0])

    def dense_edges(self) -> np.ndarray:
        """(N, N) symmetric matrix of edge labels, 0 where there is no edge."""
        adj = np.zeros((self.num_nodes, self.num_nodes), dtype=np.int64)
        i, j = self.edge_index[:, 0], self.edge_index[:, 1]
        adj[i, j] = self.edge_attr
        adj[j, i] = self.edge_attr
        return adj

    @classmethod
    def from_dense(cls, x: np.ndarray, adjacency: np.ndarray) -> Graph:
        """Build from (N, F) node labels and an (N, N) edge-label matrix (the upper triangle is read)."""
        i, j = np.nonzero(np.triu(adjacency, k=1))
        return cls(
            x=np.asarray(x, dtype=np.int64),
            edge_index=np.stack([i, j], axis=1).astype(np.int64),
            edge_attr=adjacency[i, j].astype(np.int64),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return (
            np.array_equal(self.x, other.x)
            and self.num_nodes == other.num_nodes
            and np.array_equal(self.dense_edges(), other.dense_edges())
        )

    def to_pyg(self):
        """The graph as a torch-geometric ``Data`` (both edge directions), for use with PyG models."""
        import torch
        from torch_geometric.data import Data
        from torch_geometric.utils import to_undirected

        edge_index, edge_attr = to_undirected(
            torch.as_tensor(self.edge_index.T, dtype=torch.long),
            torch.as_tensor(self.edge_attr, dtype=torch.long),
            num_nodes=self.num_nodes,
        )
        return Data(x=torch.as_tensor(self.x, dtype=torch.long), edge_index=edge_index, edge_attr=edge_attr)


@dataclass
class Vocabulary:
    """Per-field lists of raw node values and the list of raw edge values, fitted on training data.

    Node label ``k`` of field ``f`` stands for ``node_values[f][k]``; edge label ``k >= 1`` stands for
    ``edge_values[k - 1]`` (label 0 is "no edge").
    """

    node_fields: list[str]
    node_values: list[list[int]]
    edge_field: str
    edge_values: list[int]

    def __post_init__(self) -> None:
        if len(self.node_fields) != len(self.node_values):
            raise ValueError("node_fields and node_values must have the same length")

    @property
    def node_sizes(self) -> list[int]:
        """Number of classes of each node field."""
        return [len(v) for v in self.node_values]

    @property
    def edge_size(self) -> int:
        """Number of edge classes, counting 'no edge'."""
        return len(self.edge_values) + 1

    @classmethod
    def fit(cls, node_fields: list[str], node_raw: np.ndarray, edge_field: str, edge_raw: np.ndarray) -> Vocabulary:
        """Collect the sorted distinct raw values of each field from (M, F) node and (E,) edge values."""
        node_values = [sorted(int(v) for v in np.unique(node_raw[:, f])) for f in range(len(node_fields))]
        edge_values = sorted(int(v) for v in np.unique(edge_raw))
        return cls(list(node_fields), node_values, edge_field, edge_values)

    def node_labels(self, raw: np.ndarray) -> np.ndarray:
        """Map (N, F) raw node values to labels (vectorised, so it also serves whole datasets).

        Raises :class:`OutOfVocabularyError` for the first unknown value; its ``args[1:]`` are
        (row, field name, value) so that domains can phrase the error their way.
        """
        raw = np.asarray(raw)
        labels = np.empty(raw.shape, dtype=np.int64)
        for f, values in enumerate(self.node_values):
            labels[:, f] = _lookup(np.asarray(values), raw[:, f], self.node_fields[f])
        return labels

    def edge_labels(self, raw: np.ndarray) -> np.ndarray:
        """Map (E,) raw edge values to labels >= 1; raise :class:`OutOfVocabularyError` for an unknown one."""
        return _lookup(np.asarray(self.edge_values), np.asarray(raw), self.edge_field) + 1

    def node_raw(self, labels: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`node_labels`."""
        out = np.empty(labels.shape, dtype=np.int64)
        for f, values in enumerate(self.node_values):
            out[:, f] = np.asarray(values, dtype=np.int64)[labels[:, f]]
        return out

    def edge_raw(self, labels: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`edge_labels` (labels must be >= 1)."""
        return np.asarray(self.edge_values, dtype=np.int64)[np.asarray(labels) - 1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_fields": self.node_fields,
            "node_values": self.node_values,
            "edge_field": self.edge_field,
            "edge_values": self.edge_values,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        return cls(data["node_fields"], data["node_values"], data["edge_field"], data["edge_values"])


def _lookup(values: np.ndarray, raw: np.ndarray, field_name: str) -> np.ndarray:
    """Index of each of ``raw`` in ``values``; OutOfVocabularyError(message, row, field, value) if absent."""
    order = np.argsort(values, kind="stable")
    pos = np.clip(np.searchsorted(values[order], raw), 0, max(len(values) - 1, 0))
    found = (values[order][pos] == raw) if len(values) else np.zeros(raw.shape, dtype=bool)
    if not found.all():
        row = int(np.flatnonzero(~found)[0])
        value = int(raw[row])
        raise OutOfVocabularyError(
            f"{field_name}={value} (item {row}) is not in the vocabulary (known: {values.tolist()})",
            row,
            field_name,
            value,
        )
    return order[pos].astype(np.int64)


@dataclass(frozen=True)
class ValenceTable:
    """What a domain says valid graphs obey, as plain numbers (used by validity guidance, which knows no chemistry).

    ``capacity[a][c]``: the largest total edge order a node may carry when its first node field has label
    ``a`` and its second label ``c`` (for molecules: element and formal charge -> largest valence);
    ``edge_orders[k]``: the order of edge label ``k`` (label 0, no edge, has order 0).
    """

    capacity: list[list[float]]
    edge_orders: list[float]


class GraphDomain(Protocol):
    """What the rest of molgen needs from a domain (molecules now, scene graphs later)."""

    name: str
    vocab: Vocabulary

    def to_graph(self, item: Any) -> Graph:
        """Domain object -> graph with vocabulary labels and canonical node order; raises DomainError."""

    def from_graph(self, graph: Graph) -> Any:
        """Graph -> domain object; raises DomainError when the graph is not a valid object."""

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable config from which the domain is rebuilt (vocabulary included)."""
