"""Verified decoding (:mod:`molgen.tokenizer.search`): the argmax is checked by re-encoding it, and where it does not give
the tokens back, the nearest graph that does is found among the decoder's next choices."""

from __future__ import annotations

import torch

from molgen.batch import batch_from_graphs
from molgen.domains.molecule import MoleculeDomain
from molgen.tokenizer.config import TokenizerConfig
from molgen.tokenizer.model import DecoderOutput, GraphTokenizer, node_pairs
from molgen.tokenizer.search import SearchConfig, _Change, _subsets, verified_decode

SMILES = ["CC(=O)Nc1ccc(O)cc1", "c1ccc2ccccc2c1", "OCC(N)C(=O)O", "C1CCC2(C1)CCCC2"]


def test_subsets_come_in_order_of_cost_one_change_per_label():
    costs = [0.1, 0.2, 0.2, 0.5, 0.9, 1.5]
    sites = [(0, 1, 0), (0, 1, 0), (-1, 2, 3), (1, 0, 0), (-1, 0, 4), (0, 3, 0)]  # the first two change one label
    changes = [_Change(c, *site, label=7) for c, site in zip(costs, sites, strict=True)]
    got = list(_subsets(changes, max_changes=2, budget=1000))
    totals = [sum(c.cost for c in s) for s in got]
    assert totals == sorted(totals)
    assert all(len({c.site for c in s}) == len(s) <= 2 for s in got)
    expected = sum(1 for a in range(6) for b in range(a + 1, 6) if sites[a] != sites[b]) + 6  # every pair and single
    assert len(got) == len({tuple(id(c) for c in s) for s in got}) == expected
    assert len(list(_subsets(changes, max_changes=3, budget=5))) == 5


def _tokenizer(domain: MoleculeDomain, bottleneck: str) -> GraphTokenizer:
    torch.manual_seed(0)
    config = TokenizerConfig(
        node_vocab_sizes=domain.vocab.node_sizes, edge_vocab_size=domain.vocab.edge_size, max_nodes=16, bottleneck=bottleneck,
        latent_dim=8, d_model=32, n_heads=4, encoder_layers=2, decoder_layers=1, edge_hidden=16,
    )  # fmt: skip
    return GraphTokenizer(config).eval()


def _confident_logits(batch, wrong: dict[int, list[tuple]], node_sizes: list[int], edge_size: int):
    """A decoder that gives every true label logit 4 and, per graph, some wrong labels logit 5 (the truth 2nd)."""
    node_logits = [torch.nn.functional.one_hot(batch.x[..., f], k).float() * 4 for f, k in enumerate(node_sizes)]
    pairs = node_pairs(batch.mask)
    b, i, j = pairs.unbind(-1)
    edge_logits = torch.nn.functional.one_hot(batch.adj[b, i, j], edge_size).float() * 4
    for g, changes in wrong.items():
        for field, u, v, label in changes:
            if field >= 0:
                node_logits[field][g, u, label] = 5.0
            else:
                edge_logits[((b == g) & (i == u) & (j == v)).nonzero()[0, 0], label] = 5.0
    return DecoderOutput(node_logits=node_logits, pairs=pairs, edge_logits=edge_logits)


def test_verified_decoding_finds_the_graph_whose_tokens_were_given(monkeypatch):
    """(A tiny untrained FSQ encoder gives some of these graphs the same codes, so the tokens here are Gaussian means;
    the comparison is the same.)"""
    domain = MoleculeDomain.fit(SMILES)
    tokenizer = _tokenizer(domain, "gaussian")
    batch = batch_from_graphs([domain.to_graph(s) for s in SMILES])
    z = tokenizer.encode(batch)
    wrong = {  # graph 0: a bond dropped; graph 1: a bond added and an atom's element changed; graphs 2, 3: right
        0: [(-1, 0, 1, 0)],
        1: [(-1, 0, 5, 1), (0, 3, 0, (int(batch.x[1, 3, 0]) + 1) % domain.vocab.node_sizes[0])],
    }
    monkeypatch.setattr(tokenizer, "decode_logits", lambda z, mask: _confident_logits(batch, wrong, domain.vocab.node_sizes, domain.vocab.edge_size))
    x_raw, adj_raw = tokenizer.decode(z, batch.mask)
    assert not torch.equal(x_raw[1], batch.x[1]) and not torch.equal(adj_raw[0], batch.adj[0])
    x, adj, exact = verified_decode(tokenizer, z, batch.mask)
    assert exact.all()
    assert torch.equal(x, batch.x) and torch.equal(adj, batch.adj)


def test_verified_decoding_keeps_the_argmax_when_no_graph_near_it_gives_the_tokens(monkeypatch):
    domain = MoleculeDomain.fit(SMILES)
    tokenizer = _tokenizer(domain, "gaussian")
    batch = batch_from_graphs([domain.to_graph(s) for s in SMILES])
    z = tokenizer.encode(batch) + 0.5  # tokens no graph encodes to
    monkeypatch.setattr(tokenizer, "decode_logits", lambda z, mask: _confident_logits(batch, {}, domain.vocab.node_sizes, domain.vocab.edge_size))
    x, adj, exact = verified_decode(tokenizer, z, batch.mask, SearchConfig(budget=16))
    assert not exact.any()
    assert torch.equal(x, batch.x) and torch.equal(adj, batch.adj)
