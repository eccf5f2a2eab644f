"""Graphs -> padded dense tensors for the tokenizer, and back.

A :class:`GraphBatch` holds B graphs padded to the largest, N, of them:
``x`` (B, N, F) node labels, ``adj`` (B, N, N) symmetric edge labels (0 = no edge), ``mask`` (B, N).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from molgen.dataset import GraphDataset, local_offsets
from molgen.graph import Graph

__all__ = ["GraphBatch", "batch_from_dataset", "batch_from_graphs", "graphs_from_dense"]


@dataclass
class GraphBatch:
    x: Tensor  # (B, N, F) long
    adj: Tensor  # (B, N, N) long, symmetric, zero diagonal
    mask: Tensor  # (B, N) bool, True for real nodes

    def to(self, device: torch.device | str) -> GraphBatch:
        return GraphBatch(self.x.to(device), self.adj.to(device), self.mask.to(device))

    def __len__(self) -> int:
        return self.x.shape[0]


def _dense(
    x: np.ndarray,
    node_counts: np.ndarray,
    node_starts: np.ndarray,
    edge_index: np.ndarray,
    edge_attr: np.ndarray,
    edge_counts: np.ndarray,
    edge_starts: np.ndarray,
) -> GraphBatch:
    """Vectorised scatter of CSR slices into padded arrays."""
    batch_size = len(node_counts)
    n_max = int(node_counts.max()) if batch_size else 0
    num_fields = x.shape[1]
    # Node k of graph b sits at x[node_starts[b] + k].
    b_nodes = np.repeat(np.arange(batch_size), node_counts)
    local = local_offsets(node_counts)
    dense_x = np.zeros((batch_size, n_max, num_fields), dtype=np.int64)
    dense_x[b_nodes, local] = x[np.repeat(node_starts, node_counts) + local]
    mask = np.zeros((batch_size, n_max), dtype=bool)
    mask[b_nodes, local] = True
    b_edges = np.repeat(np.arange(batch_size), edge_counts)
    local_e = local_offsets(edge_counts)
    rows = np.repeat(edge_starts, edge_counts) + local_e
    i, j = edge_index[rows, 0].astype(np.int64), edge_index[rows, 1].astype(np.int64)
    adj = np.zeros((batch_size, n_max, n_max), dtype=np.int64)
    adj[b_edges, i, j] = edge_attr[rows]
    adj[b_edges, j, i] = edge_attr[rows]
    return GraphBatch(torch.from_numpy(dense_x), torch.from_numpy(adj), torch.from_numpy(mask))


def batch_from_dataset(dataset: GraphDataset, indices: Sequence[int] | np.ndarray) -> GraphBatch:
    """Dense batch of ``dataset[indices]`` straight from its CSR arrays (fast: no per-graph Python)."""
    idx = np.asarray(indices, dtype=np.int64)
    node_starts, edge_starts = dataset.node_ptr[idx], dataset.edge_ptr[idx]
    return _dense(
        dataset.x,
        dataset.node_ptr[idx + 1] - node_starts,
        node_starts,
        dataset.edge_index,
        dataset.edge_attr,
        dataset.edge_ptr[idx + 1] - edge_starts,
        edge_starts,
    )


def batch_from_graphs(graphs: Sequence[Graph]) -> GraphBatch:
    """Dense batch of a list of labelled graphs."""
    if not graphs:
        raise ValueError("cannot batch an empty list of graphs")
    node_counts = np.array([g.num_nodes for g in graphs], dtype=np.int64)
    edge_counts = np.array([g.num_edges for g in graphs], dtype=np.int64)
    return _dense(
        np.concatenate([g.x for g in graphs]),
        node_counts,
        np.cumsum(node_counts) - node_counts,
        np.concatenate([g.edge_index for g in graphs]).reshape(-1, 2),
        np.concatenate([g.edge_attr for g in graphs]),
        edge_counts,
        np.cumsum(edge_counts) - edge_counts,
    )


def graphs_from_dense(x: Tensor, adj: Tensor, mask: Tensor) -> list[Graph]:
    """Split (B, N, F) labels, (B, N, N) edge labels and (B, N) mask into graphs (upper triangle of adj)."""
    graphs = []
    for b in range(x.shape[0]):
        n = int(mask[b].sum())
        graphs.append(Graph.from_dense(x[b, :n].cpu().numpy(), adj[b, :n, :n].cpu().numpy()))
    return graphs
