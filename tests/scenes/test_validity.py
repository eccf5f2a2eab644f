"""Validity of scene graphs from the graph alone, layouts, and the semiorder test."""

from __future__ import annotations

import numpy as np
import pytest

from molgen.domains.scene import SceneDomain
from molgen.graph import DomainError, Graph
from molgen.scenes.scene import closure, is_semiorder, layout, reduction, relation_from_positions, total_order_pairs
from molgen.scenes.validity import edge_code, graph_problems, relationship_problems


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_real_and_generated_graphs_are_valid(form, real_scenes, generated_scenes, partial_scenes):
    domain = SceneDomain.fit(real_scenes + generated_scenes + partial_scenes, form=form, total=False)
    for scene in real_scenes + generated_scenes[:300] + partial_scenes:
        assert domain.problems(domain.to_graph(scene)) == []
    total = SceneDomain.fit(real_scenes + generated_scenes, form=form)
    assert total.total
    assert all(total.problems(total.to_graph(s)) == [] for s in real_scenes[:100])


def _domain(form: str, total: bool = False) -> SceneDomain:
    from molgen.graph import Vocabulary

    vocab = Vocabulary(
        ["shape", "color", "material", "size"],
        [[0, 1, 2], list(range(8)), [0, 1], [0, 1]],
        "relation",
        list(range(1, 9)),
    )
    return SceneDomain(vocab, form=form, total=total)


def _graph(n: int, edges: dict[tuple[int, int], tuple[int, int]]) -> Graph:
    """Graph with n red cubes and raw edge codes given as (x, y) relations per pair i < j (label = code, vocab 1..8)."""
    x = np.zeros((n, 4), dtype=np.int64)
    adj = np.zeros((n, n), dtype=np.int64)
    for (i, j), (xr, yr) in edges.items():
        adj[i, j] = edge_code(xr, yr)
    return Graph.from_dense(x, adj)


def test_each_rule_is_reported():
    dense, sparse = _domain("dense"), _domain("sparse")
    # a 3-cycle on x: 0 < 1, 1 < 2, 2 < 0 (pair (0, 2) says 2 is before 0)
    cyclic = _graph(3, {(0, 1): (1, 0), (1, 2): (1, 0), (0, 2): (2, 0)})
    assert "cycle" in graph_problems(cyclic, dense.vocab, "dense")[0]
    # dense lacks the implied pair 0 < 2
    chain = _graph(3, {(0, 1): (1, 0), (1, 2): (1, 0)})
    assert "implied pair 0 -> 2" in dense.problems(chain)[0]
    assert sparse.problems(chain) == []
    # sparse has a redundant pair
    closed = _graph(3, {(0, 1): (1, 0), (1, 2): (1, 0), (0, 2): (1, 0)})
    assert "redundant pair 0 -> 2" in sparse.problems(closed)[0]
    assert dense.problems(closed) == []
    # 2+2: 0 < 1 and 2 < 3, nothing else: not realisable with a margin
    two_two = _graph(4, {(0, 1): (1, 0), (2, 3): (1, 0)})
    assert "semiorder" in dense.problems(two_two)[0]
    # total domains relate every pair
    assert "front/behind: objects 0 and 1 are unrelated" in _domain("sparse", total=True).problems(chain)[0]
    # labels out of range
    bad = Graph(x=np.array([[0, 9, 0, 0]]), edge_index=np.zeros((0, 2), np.int64), edge_attr=np.zeros(0, np.int64))
    assert "color label 9" in dense.problems(bad)[0]
    with pytest.raises(DomainError, match="not a valid scene"):
        dense.from_graph(cyclic)


def test_relationship_lists_must_be_converses():
    ok = {"right": [[1], []], "left": [[], [0]], "behind": [[], []], "front": [[], []]}
    assert relationship_problems(ok, 2) == []
    broken = {**ok, "left": [[], []]}
    assert "not converses" in relationship_problems(broken, 2)[0]
    both = {"right": [[1], [0]], "left": [[1], [0]], "behind": [[], []], "front": [[], []]}
    assert "each right of the other" in relationship_problems(both, 2)[0]
    assert "not one of" in relationship_problems({**ok, "right": [[5], []]}, 2)[0]


def test_layout_realises_random_semiorders():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        order = relation_from_positions(rng.uniform(0, 1.5, n), 0.2)
        assert is_semiorder(order)
        assert np.array_equal(relation_from_positions(layout(order, 0.2), 0.2), order)
        assert np.array_equal(closure(reduction(order)), order)
    two_two = np.zeros((4, 4), dtype=bool)
    two_two[0, 1] = two_two[2, 3] = True
    three_one = total_order_pairs([0, 1, 2]).tolist()
    three_one = np.pad(np.array(three_one), ((0, 1), (0, 1)))
    assert not is_semiorder(two_two) and not is_semiorder(three_one)
    with pytest.raises(DomainError):
        layout(two_two)
