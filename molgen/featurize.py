"""Domain items -> :class:`~molgen.dataset.GraphDataset`, with every bad row reported.

Molecules (:func:`featurize_molecules`): workers parse chunks of SMILES into raw graphs and return plain numpy
arrays (cheap to send between processes). The vocabulary is then fitted on the raw values, unless one is given
(for example the vocabulary of a trained tokenizer), in which case molecules outside it become bad rows that name
the atom.

Any other domain (:func:`featurize_items`, e.g. scenes as one line of JSON each): a domain object that already
has its vocabulary turns each row into a graph, in this process.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from molgen.dataset import GraphDataset
from molgen.graph import DomainError, Graph, OutOfVocabularyError, Vocabulary
from molgen.io import BadRow, Row

if TYPE_CHECKING:
    from molgen.chem import StandardizeOptions

__all__ = ["FeaturizeResult", "featurize_items", "featurize_molecules"]

log = logging.getLogger(__name__)


@dataclass
class FeaturizeResult:
    dataset: GraphDataset
    bad_rows: list[BadRow] = field(default_factory=list)
    n_read: int = 0

    def report(self) -> dict:
        return {"read": self.n_read, "featurized": len(self.dataset), "bad": len(self.bad_rows)}


@dataclass
class _Chunk:
    """What a worker sends back: raw graphs of the good rows, in CSR form, and the bad rows."""

    items: list[str]
    locations: list[str]
    x: np.ndarray
    node_counts: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    edge_counts: np.ndarray
    bad: list[BadRow]


def _featurize_chunk(args: tuple[list[Row], StandardizeOptions | None, str, bool]) -> _Chunk:
    from molgen.domains.molecule import check_implicit_hydrogens, node_fields, smiles_to_raw_graph  # RDKit

    rows, standardize_with, hydrogens, stereo = args
    items, locations, graphs, bad = [], [], [], []
    for row in rows:
        try:
            graph, canonical = smiles_to_raw_graph(row.smiles, standardize_with, stereo)
            if hydrogens == "implicit":
                check_implicit_hydrogens(graph)
        except (DomainError, ValueError) as exc:  # InvalidMoleculeError is a ValueError
            bad.append(BadRow(row.location, row.smiles, str(exc)))
            continue
        graphs.append(graph)
        items.append(canonical)
        locations.append(row.location)
    return _Chunk(
        items=items,
        locations=locations,
        x=np.concatenate([g.x for g in graphs]).astype(np.int16) if graphs else np.zeros((0, len(node_fields(stereo))), np.int16),
        node_counts=np.array([g.num_nodes for g in graphs], dtype=np.int64),
        edge_index=np.concatenate([g.edge_index for g in graphs]).astype(np.int64) if graphs else np.zeros((0, 2), np.int64),
        edge_attr=np.concatenate([g.edge_attr for g in graphs]).astype(np.int16) if graphs else np.zeros(0, np.int16),
        edge_counts=np.array([g.num_edges for g in graphs], dtype=np.int64),
        bad=bad,
    )


def _chunks(rows: Iterable[Row | BadRow], size: int, bad: list[BadRow], counter: list[int]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        counter[0] += 1
        if isinstance(row, BadRow):
            bad.append(row)
            continue
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def featurize_molecules(
    rows: Iterable[Row | BadRow],
    vocab: Vocabulary | None = None,
    standardize_with: StandardizeOptions | None = None,
    workers: int | None = None,
    chunk_size: int = 2000,
    progress=None,
    hydrogens: str = "explicit",
    stereo: bool | None = None,
) -> FeaturizeResult:
    """Featurize rows from :func:`molgen.io.read_molecules` into a dataset.

    Args:
        rows: rows and bad rows as the readers yield them.
        vocab: map onto this vocabulary (molecules outside it are reported as bad rows); fitted if None.
        standardize_with: optional standardisation before featurizing.
        workers: processes to use (default: all cores); 1 runs in this process.
        progress: optional callable receiving the number of rows done after each chunk.
        hydrogens: ``"implicit"`` also reports as bad rows the molecules whose hydrogens RDKit would not infer
            (see :mod:`molgen.domains.molecule`).
        stereo: graphs carry tetrahedral and double-bond stereo labels, items are isomeric canonical SMILES
            (see :mod:`molgen.domains.molecule`); stereo the labels cannot express makes a bad row. None: as
            ``vocab``'s fields say (without a vocabulary: no stereo).
    """
    from molgen.domains.molecule import edge_field, node_fields  # RDKit: only molecules need it

    if stereo is None:
        stereo = vocab is not None and vocab.node_fields == node_fields(True)
    workers = workers or os.cpu_count() or 1
    bad: list[BadRow] = []
    counter = [0]
    chunk_iter = ((c, standardize_with, hydrogens, stereo) for c in _chunks(rows, chunk_size, bad, counter))
    results: list[_Chunk] = []
    if workers == 1:
        mapped: Iterable[_Chunk] = map(_featurize_chunk, chunk_iter)
        pool = None
    else:
        pool = mp.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(workers)
        mapped = pool.imap(_featurize_chunk, chunk_iter)
    try:
        for chunk in mapped:
            results.append(chunk)
            bad.extend(chunk.bad)
            if progress is not None:
                progress(len(chunk.items) + len(chunk.bad))
    finally:
        if pool is not None:
            pool.close()
            pool.join()

    x = np.concatenate([c.x for c in results]) if results else np.zeros((0, len(node_fields(stereo))), np.int16)
    edge_attr = np.concatenate([c.edge_attr for c in results]) if results else np.zeros(0, np.int16)
    if vocab is None:
        vocab = Vocabulary.fit(node_fields(stereo), x, edge_field(stereo), edge_attr)
    items = [s for c in results for s in c.items]
    locations = [s for c in results for s in c.locations]
    node_counts = np.concatenate([c.node_counts for c in results]) if results else np.zeros(0, np.int64)
    edge_counts = np.concatenate([c.edge_counts for c in results]) if results else np.zeros(0, np.int64)
    edge_index = np.concatenate([c.edge_index for c in results]) if results else np.zeros((0, 2), np.int64)
    keep, labels_x, labels_e = _map_to_vocab(
        vocab, x, edge_attr, node_counts, edge_counts, items, locations, edge_index, bad
    )
    node_keep = np.repeat(keep, node_counts)
    edge_keep = np.repeat(keep, edge_counts)
    dataset = GraphDataset(
        x=labels_x[node_keep].astype(np.uint8),
        node_ptr=np.concatenate([[0], np.cumsum(node_counts[keep])]).astype(np.int64),
        edge_index=edge_index[edge_keep].astype(np.uint16),
        edge_attr=labels_e[edge_keep].astype(np.uint8),
        edge_ptr=np.concatenate([[0], np.cumsum(edge_counts[keep])]).astype(np.int64),
        items=[s for s, k in zip(items, keep, strict=True) if k],
        vocab=vocab,
    )
    log.info("featurized %d of %d rows (%d bad)", len(dataset), counter[0], len(bad))
    return FeaturizeResult(dataset=dataset, bad_rows=bad, n_read=counter[0])


def featurize_items(rows: Iterable[Row | BadRow], domain, progress=None) -> FeaturizeResult:
    """Featurize rows of any domain with ``domain`` (fitted: its vocabulary is the dataset's), in this process.

    Each row's text goes through ``domain.to_graph``; a row it refuses (unreadable, invalid, outside the vocabulary)
    becomes a bad row with the domain's reason. The dataset's items are the canonical items as one line of text
    (``domain.item_text(domain.canonical(text))``), so a round trip compares with them.
    ``progress``: optional callable receiving the number of rows done, every 1,000 rows and at the end.
    """
    graphs: list[Graph] = []
    items: list[str] = []
    bad: list[BadRow] = []
    n_read = done = 0
    for row in rows:
        n_read += 1
        if isinstance(row, BadRow):
            bad.append(row)
        else:
            try:
                graph = domain.to_graph(row.smiles)
                item = domain.item_text(domain.canonical(row.smiles))
            except ValueError as exc:  # DomainError and OutOfVocabularyError are ValueErrors
                bad.append(BadRow(row.location, row.smiles[:200], str(exc)))
            else:
                graphs.append(graph)
                items.append(item)
        done += 1
        if progress is not None and done == 1000:
            progress(done)
            done = 0
    if progress is not None and done:
        progress(done)
    dataset = GraphDataset.from_graphs(graphs, items, domain.vocab)
    log.info("featurized %d of %d rows (%d bad)", len(dataset), n_read, len(bad))
    return FeaturizeResult(dataset=dataset, bad_rows=bad, n_read=n_read)


def _map_to_vocab(
    vocab: Vocabulary,
    x: np.ndarray,
    edge_attr: np.ndarray,
    node_counts: np.ndarray,
    edge_counts: np.ndarray,
    items: list[str],
    locations: list[str],
    edge_index: np.ndarray,
    bad: list[BadRow],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels for every node and edge; molecules with an unknown value are dropped and reported."""
    keep = np.ones(len(node_counts), dtype=bool)
    try:
        return keep, vocab.node_labels(x), vocab.edge_labels(edge_attr)
    except OutOfVocabularyError:
        pass
    from molgen.domains.molecule import MoleculeDomain

    # Slow path: find the molecules that do not fit, one by one, and say why.
    domain = MoleculeDomain(vocab)
    node_ptr = np.concatenate([[0], np.cumsum(node_counts)])
    edge_ptr = np.concatenate([[0], np.cumsum(edge_counts)])
    labels_x = np.zeros_like(x, dtype=np.int64)
    labels_e = np.zeros_like(edge_attr, dtype=np.int64)
    for m in range(len(node_counts)):
        raw = Graph(
            x=x[node_ptr[m] : node_ptr[m + 1]].astype(np.int64),
            edge_index=edge_index[edge_ptr[m] : edge_ptr[m + 1]],
            edge_attr=edge_attr[edge_ptr[m] : edge_ptr[m + 1]].astype(np.int64),
        )
        try:
            graph = domain.label_graph(raw, items[m])
        except OutOfVocabularyError as exc:
            keep[m] = False
            bad.append(BadRow(locations[m], items[m], str(exc)))
            continue
        labels_x[node_ptr[m] : node_ptr[m + 1]] = graph.x
        labels_e[edge_ptr[m] : edge_ptr[m + 1]] = graph.edge_attr
    return keep, labels_x, labels_e
