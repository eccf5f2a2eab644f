"""A featurized dataset of labelled graphs, stored compactly (CSR arrays in small dtypes) and cached on disk.

Layout of a dataset directory::

    graphs.npz   x (total_nodes, F) uint8, node_ptr (M+1,) int64,
                 edge_index (total_edges, 2) uint16 (indices local to each graph),
                 edge_attr (total_edges,) uint8, edge_ptr (M+1,) int64
    items.txt    one canonical item (SMILES) per graph, in order
    vocab.json   the vocabulary the labels refer to
    report.json  counts (read, featurized, bad) and where the data came from
    bad_rows.tsv what was skipped and why
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molgen.graph import Graph, Vocabulary

__all__ = ["GraphDataset"]


@dataclass
class GraphDataset:
    """M labelled graphs in CSR form. ``dataset[i]`` is a :class:`Graph`; ``dataset.items[i]`` its source."""

    x: np.ndarray
    node_ptr: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    edge_ptr: np.ndarray
    items: list[str]
    vocab: Vocabulary

    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    def __getitem__(self, i: int) -> Graph:
        a, b = self.node_ptr[i], self.node_ptr[i + 1]
        c, d = self.edge_ptr[i], self.edge_ptr[i + 1]
        return Graph(
            x=self.x[a:b].astype(np.int64),
            edge_index=self.edge_index[c:d].astype(np.int64),
            edge_attr=self.edge_attr[c:d].astype(np.int64),
        )

    @property
    def num_nodes(self) -> np.ndarray:
        """(M,) node count of each graph."""
        return np.diff(self.node_ptr)

    @classmethod
    def from_graphs(cls, graphs: Sequence[Graph], items: list[str], vocab: Vocabulary) -> GraphDataset:
        """Pack labelled graphs (and their source items) into CSR arrays."""
        if len(graphs) != len(items):
            raise ValueError(f"{len(graphs)} graphs but {len(items)} items")
        num_fields = len(vocab.node_fields)
        node_counts = np.array([g.num_nodes for g in graphs], dtype=np.int64)
        edge_counts = np.array([g.num_edges for g in graphs], dtype=np.int64)
        return cls(
            x=_concat([g.x for g in graphs], (0, num_fields), np.uint8),
            node_ptr=np.concatenate([[0], np.cumsum(node_counts)]).astype(np.int64),
            edge_index=_concat([g.edge_index for g in graphs], (0, 2), np.uint16),
            edge_attr=_concat([g.edge_attr for g in graphs], (0,), np.uint8),
            edge_ptr=np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64),
            items=list(items),
            vocab=vocab,
        )

    def subset(self, indices: np.ndarray) -> GraphDataset:
        """A new dataset of the chosen graphs, in the given order (vectorised: fine for millions)."""
        idx = np.asarray(indices, dtype=np.int64)
        node_counts = self.node_ptr[idx + 1] - self.node_ptr[idx]
        edge_counts = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
        return GraphDataset(
            x=self.x[_ranges(self.node_ptr[idx], node_counts)],
            node_ptr=np.concatenate([[0], np.cumsum(node_counts)]).astype(np.int64),
            edge_index=self.edge_index[_ranges(self.edge_ptr[idx], edge_counts)],
            edge_attr=self.edge_attr[_ranges(self.edge_ptr[idx], edge_counts)],
            edge_ptr=np.concatenate([[0], np.cumsum(edge_counts)]).astype(np.int64),
            items=[self.items[i] for i in idx.tolist()],
            vocab=self.vocab,
        )

    def split(self, fraction: float, seed: int = 0) -> tuple[GraphDataset, GraphDataset]:
        """Shuffle with ``seed`` and split off ``fraction`` of the graphs (at least one) as a second set."""
        order = np.random.default_rng(seed).permutation(len(self))
        n_second = max(1, int(round(fraction * len(self))))
        return self.subset(order[n_second:]), self.subset(order[:n_second])

    # --- storage -----------------------------------------------------------------------------------

    def save(self, directory: str | Path, report: dict | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(
            directory / "graphs.npz",
            x=self.x,
            node_ptr=self.node_ptr,
            edge_index=self.edge_index,
            edge_attr=self.edge_attr,
            edge_ptr=self.edge_ptr,
        )
        (directory / "items.txt").write_text("".join(f"{s}\n" for s in self.items), encoding="utf-8")
        (directory / "vocab.json").write_text(json.dumps(self.vocab.to_dict(), indent=1), encoding="utf-8")
        if report is not None:
            (directory / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> GraphDataset:
        directory = Path(directory)
        if not (directory / "graphs.npz").exists():
            raise FileNotFoundError(f"{directory}: not a featurized dataset (no graphs.npz); run `molgen featurize`")
        with np.load(directory / "graphs.npz", allow_pickle=False) as arrays:
            data = {k: arrays[k] for k in arrays.files}
        items = (directory / "items.txt").read_text(encoding="utf-8").splitlines()
        vocab = Vocabulary.from_dict(json.loads((directory / "vocab.json").read_text(encoding="utf-8")))
        return cls(items=items, vocab=vocab, **data)


def local_offsets(counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(count) for each count, without a Python loop: [2, 3] -> [0, 1, 0, 1, 2]."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + count) for each pair."""
    return np.repeat(starts, counts) + local_offsets(counts)


def _concat(arrays: list[np.ndarray], empty_shape: tuple[int, ...], dtype) -> np.ndarray:
    if not arrays:
        return np.zeros(empty_shape, dtype=dtype)
    out = np.concatenate(arrays)
    if out.size and (out.min() < np.iinfo(dtype).min or out.max() > np.iinfo(dtype).max):
        raise ValueError(f"values out of range for {np.dtype(dtype).name} storage")
    return out.astype(dtype)
