"""The scene domain plugs into the shared, domain-agnostic path unchanged: dataset packing, the tokenizer's
encoder and decoder (untrained, tiny, no training here) and the checked decoding of :mod:`molgen.decoding`."""

from __future__ import annotations

import json

import pytest
import torch

from molgen.batch import batch_from_graphs
from molgen.checkpoint import load_tokenizer, save_tokenizer
from molgen.dataset import GraphDataset
from molgen.decoding import Decoder
from molgen.domains.scene import SceneDomain
from molgen.records import Latents
from molgen.scenes.scene import Scene
from molgen.tokenizer.config import TokenizerConfig
from molgen.tokenizer.model import GraphTokenizer, order_closure_labels


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_untrained_tokenizer_and_decoder_accept_scene_graphs(form, real_scenes):
    scenes = real_scenes[:16]
    domain = SceneDomain.fit(scenes, form=form)
    graphs = [domain.to_graph(s) for s in scenes]
    dataset = GraphDataset.from_graphs(graphs, [json.dumps(s.to_json()) for s in scenes], domain.vocab)
    assert dataset[3] == graphs[3] and domain.to_graph(dataset.items[3]) == graphs[3]
    torch.manual_seed(0)
    config = TokenizerConfig(
        node_vocab_sizes=domain.vocab.node_sizes, edge_vocab_size=domain.vocab.edge_size, max_nodes=12,
        d_model=32, n_heads=2, encoder_layers=1, decoder_layers=1, edge_hidden=16,
    )  # fmt: skip
    tokenizer = GraphTokenizer(config).eval()
    batch = batch_from_graphs(graphs)
    with torch.no_grad():
        z = tokenizer.encode(batch)  # (B, N, d)
    decoded = Decoder(domain, tokenizer, torch.device("cpu"))(Latents(z, batch.mask), decoding="valence")
    assert all(d.state == "valid" and isinstance(d.smiles, Scene) for d in decoded)
    assert [d.smiles.num_objects for d in decoded] == [s.num_objects for s in scenes]


def test_directed_edges_add_an_asymmetric_pair_term_only_when_asked():
    """A scene's relation label says which object is behind: the decoder may score (i, j) differently from (j, i).
    Without the flag (molecules, the shipped model) the network and its weights are what they were."""
    base = dict(node_vocab_sizes=[3, 8, 2, 2], edge_vocab_size=3, max_nodes=12, d_model=32, n_heads=2, encoder_layers=1,
                decoder_layers=1, edge_hidden=16, bottleneck="fsq", fsq_levels=[4, 4, 4])  # fmt: skip
    symmetric = GraphTokenizer(TokenizerConfig(**base)).state_dict()
    directed = GraphTokenizer(TokenizerConfig(**base, directed_edges=True)).state_dict()
    assert not any("edge_from" in k or "edge_to" in k for k in symmetric)
    assert set(directed) - set(symmetric) == {f"decoder.{n}.{p}" for n in ("edge_from", "edge_to") for p in ("weight", "bias")}
    assert TokenizerConfig(**base).directed_edges is False  # configs saved before the field read as symmetric


def test_scene_domain_asks_for_directed_edges():
    assert SceneDomain.directed_edges is True


def _closure_config(domain: SceneDomain, **extra) -> TokenizerConfig:
    return TokenizerConfig(
        node_vocab_sizes=domain.vocab.node_sizes, edge_vocab_size=domain.vocab.edge_size, max_nodes=12, d_model=32,
        n_heads=2, encoder_layers=2, decoder_layers=1, edge_hidden=16, bottleneck="fsq", fsq_levels=[4, 4, 4],
        directed_edges=True, encoder_orders=domain.encoder_orders(), **extra,
    )  # fmt: skip


@pytest.mark.parametrize("scenes", ["real_scenes", "partial_scenes"])
def test_encoder_order_closures_are_the_dense_relations(scenes, request):
    """The closures the encoder reads from a sparse graph are the dense form's relations, pair by pair (also where a
    pair is unrelated on an axis), seen from the first node of the pair."""
    scenes = request.getfixturevalue(scenes)[:200]
    sparse, dense = SceneDomain.fit(scenes, form="sparse"), SceneDomain.fit(scenes, form="dense")
    adj = batch_from_graphs([sparse.to_graph(s) for s in scenes]).adj
    dense_adj = batch_from_graphs([dense.to_graph(s) for s in scenes]).adj
    labels = order_closure_labels(adj, torch.tensor(sparse.encoder_orders()))  # (B, N, N)
    raw = torch.tensor([0, *dense.vocab.edge_values])[dense_adj]  # (B, N, N) dense codes 3 * x + y of the pair i < j
    x, y = raw // 3, raw % 3
    flip = torch.tensor([0, 2, 1])  # seen from the later node: after <-> before
    n = adj.shape[1]
    upper = torch.ones(n, n, dtype=torch.bool).triu(1)
    expected = torch.where(upper, x + 3 * y, flip[x] + 3 * flip[y])
    assert torch.equal(labels, expected * ~torch.eye(n, dtype=torch.bool))


def test_encoder_orders_only_for_the_sparse_form(real_scenes):
    sparse = SceneDomain.fit(real_scenes[:50], form="sparse")
    assert sparse.vocab.edge_values == [1, 2, 3, 4, 5]  # raw 3 * x + y
    assert sparse.encoder_orders() == [[0, 0, 0, 1, 1, 1], [0, 1, -1, 0, 1, -1]]  # x axis, y axis; label 0: no edge
    assert SceneDomain.fit(real_scenes[:50], form="dense").encoder_orders() == []
    assert SceneDomain.from_config(sparse.to_config()).encoder_orders() == sparse.encoder_orders()


def test_encoder_orders_bias_the_encoder_only_and_rebuild_from_the_config(real_scenes, tmp_path):
    """The closure bias and rank embeddings add encoder weights only (the decoder is the same network); without orders (molecules, dense
    scenes, configs saved before the field) the network and its weights are what they were; a saved sparse tokenizer
    rebuilds from its config.json and encodes as before."""
    domain = SceneDomain.fit(real_scenes[:50], form="sparse")
    torch.manual_seed(0)
    with_orders = GraphTokenizer(_closure_config(domain)).eval()
    without = _closure_config(domain).to_dict() | {"encoder_orders": []}
    assert set(with_orders.state_dict()) - set(GraphTokenizer(TokenizerConfig(**without)).state_dict()) == {
        *(f"encoder.order_bias.{k}.weight" for k in range(2)),
        *(f"encoder.order_rank.{k}.weight" for k in range(4)),
    }
    assert TokenizerConfig(**{k: v for k, v in without.items() if k != "encoder_orders"}).encoder_orders == []
    save_tokenizer(with_orders, tmp_path / "tokenizer")
    rebuilt = load_tokenizer(tmp_path / "tokenizer")
    assert rebuilt.config == with_orders.config
    batch = batch_from_graphs([domain.to_graph(s) for s in real_scenes[:8]])
    assert torch.equal(rebuilt.encode(batch), with_orders.encode(batch))
    with pytest.raises(ValueError, match="encoder_orders"):
        TokenizerConfig(**(without | {"encoder_orders": [[1, 0]]}))
