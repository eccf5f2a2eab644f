"""molgen.featurize, molgen.dataset, molgen.batch: files -> compact dataset -> padded dense batches -> graphs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from molgen.batch import batch_from_dataset, batch_from_graphs, graphs_from_dense
from molgen.chem import canonicalize
from molgen.dataset import GraphDataset
from molgen.domains.molecule import MoleculeDomain
from molgen.featurize import featurize_molecules
from molgen.graph import Graph
from molgen.io import BadRow, Row, read_molecules

GOOD = ["CCO", "c1ccccc1", "CC(=O)O", "c1cc[nH]c1", "C[N+](C)(C)C", "C", "OC(=O)c1ccc(C(=O)O)cc1", "CCN"]


@pytest.fixture
def mixed_smi(tmp_path):
    """A .smi file with good molecules and bad rows at known lines."""
    lines = [
        "CCO ethanol",  # 1
        "C1CC unclosed",  # 2  bad: unclosed ring
        "c1ccccc1",  # 3
        "",  # 4  blank, skipped
        "CC(=O)O",  # 5
        "xyz",  # 6  bad: syntax
        "c1cc[nH]c1",  # 7
        "# comment",  # 8  skipped
        "C[13CH3]",  # 9  bad: isotope
        "C[N+](C)(C)C",  # 10
        "C(C)(C)(C)(C)C",  # 11 bad: valence
        "C",  # 12
        "OC(=O)c1ccc(C(=O)O)cc1",  # 13
        "[CH3]",  # 14 bad: radical
        "CCN",  # 15
    ]
    path = tmp_path / "mixed.smi"
    path.write_text("\n".join(lines) + "\n")
    return path


EXPECTED_BAD = {
    "line 2": "unclosed ring",
    "line 6": "syntax error",
    "line 9": "isotope",
    "line 11": "valence",
    "line 14": "radical",
}


# --- featurize_molecules ---------------------------------------------------------------------------------


def test_featurize_reports_bad_rows_and_keeps_good_ones(mixed_smi):
    result = featurize_molecules(read_molecules(mixed_smi), workers=1)
    assert result.n_read == len(GOOD) + len(EXPECTED_BAD)
    assert len(result.dataset) == len(GOOD)
    assert result.dataset.items == [canonicalize(s, isomeric=False) for s in GOOD]
    bad = {b.location: b for b in result.bad_rows}
    assert set(bad) == set(EXPECTED_BAD)
    for location, reason in EXPECTED_BAD.items():
        assert reason in bad[location].reason.lower(), bad[location]
    assert bad["line 2"].text == "C1CC"
    assert result.report() == {"read": 13, "featurized": 8, "bad": 5}


def test_featurize_with_implicit_hydrogens_reports_unusual_hydrogens_and_goes_on(tmp_path):
    path = tmp_path / "h.smi"
    path.write_text("CCO\nC[SH2]C\nc1cc[nH]c1\n")
    explicit = featurize_molecules(read_molecules(path), workers=1)
    assert explicit.dataset.items == ["CCO", "C[SH2]C", "c1cc[nH]c1"] and not explicit.bad_rows
    implicit = featurize_molecules(read_molecules(path), workers=1, hydrogens="implicit")
    assert implicit.dataset.items == ["CCO", "c1cc[nH]c1"]
    [bad] = implicit.bad_rows
    assert bad.location == "line 2" and "atom 1 (S) has 2 hydrogen(s) where its bonds imply 0" in bad.reason


def test_featurized_graphs_match_the_domain(mixed_smi):
    result = featurize_molecules(read_molecules(mixed_smi), workers=1)
    domain = MoleculeDomain(result.dataset.vocab)
    for i, smiles in enumerate(GOOD):
        assert result.dataset[i] == domain.to_graph(smiles)
        assert domain.from_graph(result.dataset[i]) == canonicalize(smiles, isomeric=False)


def test_featurize_passes_reader_bad_rows_through(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles\n1,CCO\n2,\n3,C1CC\n4,CCN\n")
    result = featurize_molecules(read_molecules(path), workers=1)
    assert result.dataset.items == ["CCO", "CCN"]
    assert sorted(b.location for b in result.bad_rows) == ["line 3", "line 4"]
    assert result.n_read == 4


def test_featurize_workers_1_and_2_give_the_same_dataset(moses_sample, mixed_smi):
    rows = list(read_molecules(mixed_smi)) + [Row(f"extra {i}", s) for i, s in enumerate(moses_sample("test", 60, 3))]
    one = featurize_molecules(rows, workers=1, chunk_size=7)
    two = featurize_molecules(rows, workers=2, chunk_size=7)
    for name in ("x", "node_ptr", "edge_index", "edge_attr", "edge_ptr"):
        a, b = getattr(one.dataset, name), getattr(two.dataset, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert one.dataset.items == two.dataset.items
    assert one.dataset.vocab == two.dataset.vocab
    assert set(one.bad_rows) == set(two.bad_rows)
    assert one.n_read == two.n_read == len(rows)


def test_featurize_progress_counts_every_featurized_row(mixed_smi):
    done = []
    result = featurize_molecules(read_molecules(mixed_smi), workers=1, chunk_size=4, progress=done.append)
    assert sum(done) == result.n_read
    assert len(done) == 4  # 13 rows in chunks of 4


def test_featurize_with_given_vocab_reports_out_of_vocabulary_molecules():
    vocab = MoleculeDomain.fit(["CCO", "c1ccccc1"]).vocab
    rows = [Row("line 1", "OCC"), Row("line 2", "C[Se]C"), Row("line 3", "c1ccccc1"), Row("line 4", "CCN")]
    result = featurize_molecules(rows, vocab=vocab, workers=1)
    assert result.dataset.vocab == vocab
    assert result.dataset.items == ["CCO", "c1ccccc1"]
    bad = {b.location: b for b in result.bad_rows}
    assert set(bad) == {"line 2", "line 4"}
    assert "(Se)" in bad["line 2"].reason and "C[Se]C" in bad["line 2"].reason
    assert "(N)" in bad["line 4"].reason
    domain = MoleculeDomain(vocab)
    assert result.dataset[0] == domain.to_graph("CCO")
    assert result.dataset[1] == domain.to_graph("c1ccccc1")


def test_featurize_nothing():
    result = featurize_molecules([], workers=1)
    assert len(result.dataset) == 0
    assert result.n_read == 0


# --- GraphDataset ----------------------------------------------------------------------------------------


@pytest.fixture
def dataset(mixed_smi) -> GraphDataset:
    return featurize_molecules(read_molecules(mixed_smi), workers=1).dataset


def test_dataset_indexing_and_sizes(dataset):
    assert len(dataset) == len(GOOD)
    domain = MoleculeDomain(dataset.vocab)
    assert dataset.num_nodes.tolist() == [domain.to_graph(s).num_nodes for s in GOOD]
    assert all(isinstance(dataset[i], Graph) for i in range(len(dataset)))


def test_dataset_save_load_round_trip_without_pickle(dataset, tmp_path):
    dataset.save(tmp_path / "ds", report={"read": 13})
    files = sorted(p.name for p in (tmp_path / "ds").iterdir())
    assert files == ["graphs.npz", "items.txt", "report.json", "vocab.json"]
    with np.load(tmp_path / "ds" / "graphs.npz", allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["edge_attr", "edge_index", "edge_ptr", "node_ptr", "x"]
        assert all(arrays[k].dtype != object for k in arrays.files)
    loaded = GraphDataset.load(tmp_path / "ds")
    for name in ("x", "node_ptr", "edge_index", "edge_attr", "edge_ptr"):
        a, b = getattr(dataset, name), getattr(loaded, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert loaded.items == dataset.items
    assert loaded.vocab == dataset.vocab
    assert all(loaded[i] == dataset[i] for i in range(len(dataset)))
    assert json.loads((tmp_path / "ds" / "report.json").read_text()) == {"read": 13}


def test_dataset_load_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="graphs.npz"):
        GraphDataset.load(tmp_path / "nothing")


def test_dataset_subset_keeps_the_given_order(dataset):
    sub = dataset.subset(np.array([5, 0, 2]))
    assert len(sub) == 3
    assert sub.items == [dataset.items[5], dataset.items[0], dataset.items[2]]
    for k, i in enumerate([5, 0, 2]):
        assert sub[k] == dataset[i]
    assert len(dataset.subset(np.array([], dtype=np.int64))) == 0


def test_dataset_split(dataset):
    a, b = dataset.split(0.25, seed=1)
    assert len(b) == 2 and len(a) == len(dataset) - 2
    assert sorted(a.items + b.items) == sorted(dataset.items)
    assert not set(a.items) & set(b.items)  # all items are distinct here, so the split is disjoint
    again_a, again_b = dataset.split(0.25, seed=1)
    assert again_a.items == a.items and again_b.items == b.items
    assert len(dataset.split(0.0)[1]) == 1  # at least one graph is held out


def test_dataset_from_graphs(dataset):
    graphs = [dataset[i] for i in range(len(dataset))]
    rebuilt = GraphDataset.from_graphs(graphs, dataset.items, dataset.vocab)
    assert all(rebuilt[i] == dataset[i] for i in range(len(dataset)))
    with pytest.raises(ValueError, match="items"):
        GraphDataset.from_graphs(graphs, dataset.items[:-1], dataset.vocab)


# --- batches ---------------------------------------------------------------------------------------------


def test_batch_from_dataset_equals_batch_from_graphs(dataset):
    idx = [6, 1, 5, 3]
    a = batch_from_dataset(dataset, idx)
    b = batch_from_graphs([dataset[i] for i in idx])
    assert torch.equal(a.x, b.x) and torch.equal(a.adj, b.adj) and torch.equal(a.mask, b.mask)
    assert len(a) == 4


def test_batch_padding_mask_and_symmetry(dataset):
    idx = [6, 5, 1, 0]  # 12, 1, 6 and 3 atoms
    batch = batch_from_dataset(dataset, idx)
    sizes = [dataset[i].num_nodes for i in idx]
    n = max(sizes)
    assert batch.x.shape == (4, n, 3) and batch.adj.shape == (4, n, n) and batch.mask.shape == (4, n)
    assert batch.x.dtype == torch.long and batch.adj.dtype == torch.long and batch.mask.dtype == torch.bool
    assert batch.mask.sum(1).tolist() == sizes
    for b, (i, size) in enumerate(zip(idx, sizes, strict=True)):
        assert batch.mask[b, :size].all() and not batch.mask[b, size:].any()
        assert (batch.x[b, size:] == 0).all()
        assert (batch.adj[b, size:] == 0).all() and (batch.adj[b, :, size:] == 0).all()
        assert np.array_equal(batch.adj[b, :size, :size].numpy(), dataset[i].dense_edges())
        assert np.array_equal(batch.x[b, :size].numpy(), dataset[i].x)
    assert torch.equal(batch.adj, batch.adj.transpose(1, 2))
    assert (torch.diagonal(batch.adj, dim1=1, dim2=2) == 0).all()


def test_graphs_from_dense_inverts_batching(dataset):
    idx = list(range(len(dataset)))
    batch = batch_from_dataset(dataset, idx)
    graphs = graphs_from_dense(batch.x, batch.adj, batch.mask)
    assert len(graphs) == len(dataset)
    assert all(g == dataset[i] for i, g in zip(idx, graphs, strict=True))


def test_batch_of_graphs_without_edges():
    domain = MoleculeDomain.fit(["C", "O"])
    graphs = [domain.to_graph("C"), domain.to_graph("O")]
    batch = batch_from_graphs(graphs)
    assert batch.adj.shape == (2, 1, 1) and (batch.adj == 0).all()
    assert graphs_from_dense(batch.x, batch.adj, batch.mask) == graphs


def test_batch_from_empty_list_raises():
    with pytest.raises(ValueError):
        batch_from_graphs([])


def test_batch_to_device(dataset):
    batch = batch_from_dataset(dataset, [0, 1]).to("cpu")
    assert batch.x.device.type == "cpu"


def test_bad_rows_are_value_objects():
    # Bad rows from different workers are compared as a set in the workers test above.
    assert BadRow("line 1", "x", "r") == BadRow("line 1", "x", "r")
    assert len({BadRow("line 1", "x", "r"), BadRow("line 1", "x", "r")}) == 1


def test_latent_tables_join_in_order_and_only_when_alike():
    from molgen.latents import LatentDataset

    def table(sizes, start, tokenizer="t", names=("QED",), logvar=True):
        tokens = np.arange(start, start + 2 * sum(sizes), dtype=np.float32).reshape(-1, 2)
        props = np.arange(len(sizes), dtype=np.float32)[:, None] + start
        return LatentDataset(
            mean=tokens, ptr=np.concatenate([[0], np.cumsum(sizes)]), properties=props, property_names=list(names),
            logvar=np.zeros_like(tokens) if logvar else None, tokenizer=tokenizer,
        )  # fmt: skip

    a, b = table([2, 3], 0), table([1, 4], 100)
    joined = LatentDataset.concat([a, b])
    assert len(joined) == 4 and joined.num_nodes.tolist() == [2, 3, 1, 4] and joined.logvar is not None
    for k, (part, row) in enumerate([(a, 0), (a, 1), (b, 0), (b, 1)]):
        z, mask = joined.dense([k])
        z_part, mask_part = part.dense([row])
        assert torch.equal(z, z_part) and torch.equal(mask, mask_part)
        assert joined.properties[k] == part.properties[row]
    assert LatentDataset.concat([a, table([2], 50, logvar=False)]).logvar is None  # posteriors only when all have them
    with pytest.raises(ValueError, match="table 1 differs"):
        LatentDataset.concat([a, table([2], 50, tokenizer="other")])
    with pytest.raises(ValueError, match="table 1 differs"):
        LatentDataset.concat([a, table([2], 50, names=("SA",))])
    with pytest.raises(ValueError, match="no latent tables"):
        LatentDataset.concat([])


def test_size_buckets_cover_every_index_once_and_group_similar_sizes():
    import numpy as np

    from molgen.training import SizeBuckets

    sizes = np.random.default_rng(1).integers(8, 56, size=5000)
    buckets = SizeBuckets(sizes, batch_size=64, seed=0, window=16)
    flat = [i for batch in buckets.batches for i in batch]
    assert sorted(flat) == list(range(5000))
    assert all(len(b) <= 64 for b in buckets.batches)
    spread = np.mean([sizes[b].max() - sizes[b].min() for b in buckets.batches])
    assert spread < 5  # random batches of 64 span about 45 sizes
    assert SizeBuckets(sizes, 64, seed=0, window=16).batches == buckets.batches  # seeded


def test_prior_training_batches_hold_graphs_of_similar_size():
    import numpy as np

    from molgen.latents import LatentDataset
    from molgen.prior.config import PriorConfig
    from molgen.prior.training import latent_batches

    sizes = np.random.default_rng(2).integers(8, 56, size=2000)
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    data = LatentDataset(mean=np.zeros((ptr[-1], 3), np.float32), ptr=ptr, properties=np.zeros((2000, 0)), property_names=[])
    config = PriorConfig(latent_dim=3, max_nodes=64, latent_mean=[0.0] * 3, latent_std=[1.0] * 3)
    loader = latent_batches(data, data, config, batch_size=64).train_dataloader()
    batches = list(loader)
    assert sum(int(mask.sum()) for _, mask, _, _ in batches) == ptr[-1]  # every graph once
    assert np.mean([z.shape[1] for z, _, _, _ in batches]) < 40  # padded to each batch's largest: random batches pad to ~55
