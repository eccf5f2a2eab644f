"""The scene domain plugs into the shared, domain-agnostic path unchanged: dataset packing, the tokenizer's
encoder and decoder (untrained, tiny, no training here) and the checked decoding of :mod:`molgen.decoding`."""

from __future__ import annotations

import json

import pytest
import torch

from molgen.batch import batch_from_graphs
from molgen.dataset import GraphDataset
from molgen.decoding import Decoder
from molgen.domains.scene import SceneDomain
from molgen.records import Latents
from molgen.scenes.scene import Scene
from molgen.tokenizer.config import TokenizerConfig
from molgen.tokenizer.model import GraphTokenizer


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
