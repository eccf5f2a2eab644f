"""molgen.graph: labelled graphs, dense round trip, PyG export, vocabularies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molgen.graph import DomainError, Graph, OutOfVocabularyError, Vocabulary


def _graph() -> Graph:
    """A 4-node graph: path 0-1-2 with labels 1, 2 and a pendant 1-3 with label 3."""
    return Graph(
        x=np.array([[0, 1], [1, 0], [2, 0], [0, 2]], dtype=np.int64),
        edge_index=np.array([[0, 1], [1, 2], [1, 3]], dtype=np.int64),
        edge_attr=np.array([1, 2, 3], dtype=np.int64),
    )


# --- Graph ----------------------------------------------------------------------------------------------


def test_counts():
    g = _graph()
    assert g.num_nodes == 4
    assert g.num_edges == 3


def test_dense_edges_is_symmetric_with_labels():
    adj = _graph().dense_edges()
    assert adj.shape == (4, 4)
    assert np.array_equal(adj, adj.T)
    assert np.all(np.diag(adj) == 0)
    assert adj[0, 1] == 1 and adj[1, 2] == 2 and adj[1, 3] == 3
    assert np.count_nonzero(adj) == 2 * 3


def test_dense_round_trip():
    g = _graph()
    back = Graph.from_dense(g.x, g.dense_edges())
    assert back == g
    assert back.num_edges == g.num_edges
    assert np.all(back.edge_index[:, 0] < back.edge_index[:, 1])  # i < j, each edge once


def test_from_dense_reads_only_upper_triangle():
    adj = _graph().dense_edges()
    lower_garbage = adj.copy()
    lower_garbage[3, 0] = 2  # below the diagonal: must be ignored
    assert Graph.from_dense(_graph().x, lower_garbage) == _graph()


def test_from_dense_without_edges():
    g = Graph.from_dense(np.array([[6, 0, 4]]), np.zeros((1, 1), dtype=np.int64))
    assert g.num_nodes == 1 and g.num_edges == 0
    assert g.edge_index.shape == (0, 2)


def test_equality_ignores_edge_listing_order_and_direction():
    g = _graph()
    shuffled = Graph(x=g.x.copy(), edge_index=g.edge_index[[2, 0, 1]][:, ::-1].copy(), edge_attr=g.edge_attr[[2, 0, 1]])
    assert shuffled == g


def test_inequality():
    g = _graph()
    other_label = Graph(x=g.x, edge_index=g.edge_index, edge_attr=np.array([1, 2, 2]))
    bumped = g.x + np.array([[0, 1], [0, 0], [0, 0], [0, 0]])
    other_node = Graph(x=bumped, edge_index=g.edge_index, edge_attr=g.edge_attr)
    other_size = Graph(x=g.x[:3], edge_index=g.edge_index[:2], edge_attr=g.edge_attr[:2])
    other_edges = Graph(x=g.x, edge_index=np.array([[0, 1], [1, 2], [2, 3]]), edge_attr=g.edge_attr)
    for other in (other_label, other_node, other_size, other_edges):
        assert other != g
    assert g != "not a graph"


def test_to_pyg_has_both_edge_directions():
    g = _graph()
    data = g.to_pyg()
    assert data.num_nodes == 4
    assert data.x.tolist() == g.x.tolist()
    pairs = {tuple(p) for p in data.edge_index.T.tolist()}
    expected = {(i, j) for i, j in g.edge_index.tolist()} | {(j, i) for i, j in g.edge_index.tolist()}
    assert pairs == expected
    assert data.edge_index.shape[1] == 2 * g.num_edges
    adj = g.dense_edges()
    for (i, j), label in zip(data.edge_index.T.tolist(), data.edge_attr.tolist(), strict=True):
        assert label == adj[i, j]


# --- Vocabulary -----------------------------------------------------------------------------------------


def _vocab() -> Vocabulary:
    node_raw = np.array([[6, 0], [8, 0], [7, 1], [6, -1], [6, 0]])
    edge_raw = np.array([2, 1, 1, 3])
    return Vocabulary.fit(["element", "charge"], node_raw, "order", edge_raw)


def test_vocabulary_fit_collects_sorted_distinct_values():
    vocab = _vocab()
    assert vocab.node_values == [[6, 7, 8], [-1, 0, 1]]
    assert vocab.edge_values == [1, 2, 3]
    assert vocab.node_sizes == [3, 3]
    assert vocab.edge_size == 4  # three bond orders + "no edge"


def test_vocabulary_label_round_trip():
    vocab = _vocab()
    raw = np.array([[8, 1], [6, -1], [7, 0]])
    labels = vocab.node_labels(raw)
    assert labels.tolist() == [[2, 2], [0, 0], [1, 1]]
    assert np.array_equal(vocab.node_raw(labels), raw)
    edges = np.array([3, 1, 2, 1])
    edge_labels = vocab.edge_labels(edges)
    assert edge_labels.tolist() == [3, 1, 2, 1]  # >= 1: 0 is reserved for "no edge"
    assert edge_labels.min() >= 1
    assert np.array_equal(vocab.edge_raw(edge_labels), edges)


def test_vocabulary_labels_with_unsorted_values():
    # A vocabulary built by hand need not be sorted; labels are positions in the given lists.
    vocab = Vocabulary(["element"], [[8, 6, 7]], "order", [2, 1])
    assert vocab.node_labels(np.array([[6], [7], [8]])).tolist() == [[1], [2], [0]]
    assert vocab.edge_labels(np.array([1, 2])).tolist() == [2, 1]
    assert vocab.edge_raw(np.array([2, 1])).tolist() == [1, 2]


def test_vocabulary_dict_round_trip():
    vocab = _vocab()
    data = json.loads(json.dumps(vocab.to_dict()))
    assert Vocabulary.from_dict(data) == vocab


def test_vocabulary_field_count_mismatch():
    with pytest.raises(ValueError):
        Vocabulary(["a", "b"], [[1]], "e", [1])


def test_out_of_vocabulary_node_names_field_and_value():
    vocab = _vocab()
    with pytest.raises(OutOfVocabularyError) as info:
        vocab.node_labels(np.array([[6, 0], [9, 0]]))
    message = str(info.value.args[0])
    assert "element" in message and "9" in message
    assert info.value.args[1:] == (1, "element", 9)  # row, field, value for domains to phrase their own error
    with pytest.raises(OutOfVocabularyError) as info:
        vocab.node_labels(np.array([[6, 2]]))
    assert info.value.args[1:] == (0, "charge", 2)


def test_out_of_vocabulary_edge_names_field_and_value():
    vocab = Vocabulary(["element"], [[6]], "order", [1, 2])
    with pytest.raises(OutOfVocabularyError) as info:
        vocab.edge_labels(np.array([1, 3]))
    assert "order" in str(info.value.args[0]) and "3" in str(info.value.args[0])
    assert info.value.args[1:] == (1, "order", 3)


def test_out_of_vocabulary_error_is_a_domain_error():
    assert issubclass(OutOfVocabularyError, DomainError)
    assert issubclass(DomainError, ValueError)


def test_empty_vocabulary_rejects_everything():
    vocab = Vocabulary(["element"], [[]], "order", [])
    with pytest.raises(OutOfVocabularyError):
        vocab.node_labels(np.array([[6]]))
    assert vocab.edge_labels(np.zeros(0, dtype=np.int64)).shape == (0,)
