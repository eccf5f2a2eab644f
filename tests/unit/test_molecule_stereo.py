"""molgen.domains.molecule with ``stereo=True``: tetrahedral and double-bond stereo labels, exact round trips on
isomeric canonical SMILES (charges included), one graph per stereoisomer, clear errors for stereo the labels
cannot express, and a domain without stereo that behaves as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rdkit import Chem

from molgen.domains import domain_class
from molgen.domains.molecule import (
    STEREO_EDGE_FIELD,
    STEREO_NODE_FIELDS,
    MoleculeDomain,
    raw_graph_to_mol,
    smiles_to_raw_graph,
)
from molgen.graph import DomainError

FIXTURE = Path(__file__).parent / "fixtures" / "zinc_charged_stereo_200.smi"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def zinc_200() -> list[str]:
    return FIXTURE.read_text().split()


def _rdkit_canonical(smiles: str) -> str:
    return Chem.MolToSmiles(Chem.MolFromSmiles(smiles))


@pytest.mark.parametrize("hydrogens", ["explicit", "implicit"])
def test_round_trip_200_zinc_molecules_with_charges_and_stereo(zinc_200, hydrogens):
    domain = MoleculeDomain.fit(zinc_200, hydrogens=hydrogens, stereo=True)
    failures = [(s, domain.from_graph(domain.to_graph(s))) for s in zinc_200]
    failures = [(s, got) for s, got in failures if got != _rdkit_canonical(s)]
    assert not failures, failures[:5]
    assert all(domain.canonical(s) == _rdkit_canonical(s) for s in zinc_200)  # the form round trips compare in
    assert sum("@" in s for s in zinc_200) > 100 and sum("/" in s or "\\" in s for s in zinc_200) >= 50


def test_fixture_holds_charges_stereo_iodine_and_large_molecules(zinc_200):
    domain = MoleculeDomain.fit(zinc_200, stereo=True)
    elements, charges, chirality = domain.vocab.node_values[0], domain.vocab.node_values[1], domain.vocab.node_values[3]
    assert {53, 15} <= set(elements) and {-1, 1} <= set(charges) and chirality == [0, 1, 2]
    assert domain.vocab.edge_values == [1, 2, 3, 12, 22]
    assert max(Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in zinc_200) >= 35


@pytest.mark.parametrize(
    "smiles",
    [
        "C[C@H](N)O",
        "C[C@@H](N)O",
        "F/C=C/Cl",
        "F/C=C\\Cl",
        "F/C=C(/C)Cl",
        "C/C=C/C=C\\C",
        "C1=C\\CCCCCCC/1",  # E/Z in an 8-membered ring
        "C[S@](=O)c1ccccc1",  # sulfoxide: three neighbours and a lone pair
        "C[N@+]1(CC)CCCC1C",
        "C[C@H]1C[C@@H](C)C[C@H](C)C1",  # centres that are stereo only together
        "O[C@H]1C[C@@H](O)C1",  # cis-1,3-cyclobutanediol (no CIP label, still stereo)
        "N[C@@H](Cc1ccccc1)C(=O)[O-]",
        "C/C=C/[C@H](C)[NH3+]",
    ],
)
def test_stereo_round_trip_on_hard_cases(smiles):
    domain = MoleculeDomain.fit([smiles], stereo=True)
    assert domain.from_graph(domain.to_graph(smiles)) == _rdkit_canonical(smiles)


def test_stereoisomers_have_different_graphs_and_their_own_smiles():
    isomers = ["F/C=C/Cl", "F/C=C\\Cl", "C[C@H](N)O", "C[C@@H](N)O"]
    domain = MoleculeDomain.fit(isomers, stereo=True)
    graphs = [domain.to_graph(s) for s in isomers]
    assert graphs[0] != graphs[1] and graphs[2] != graphs[3]
    assert [domain.from_graph(g) for g in graphs] == [_rdkit_canonical(s) for s in isomers]


def test_atom_order_permutations_give_the_same_stereo_graph(zinc_200):
    domain = MoleculeDomain.fit(zinc_200, stereo=True)
    rng = np.random.default_rng(0)
    for smiles in zinc_200[:40]:
        mol = Chem.MolFromSmiles(smiles)
        reference = domain.to_graph(smiles)
        for _ in range(3):
            order = rng.permutation(mol.GetNumAtoms()).tolist()
            shuffled = Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False)
            assert domain.to_graph(shuffled) == reference, (smiles, shuffled)


def test_chirality_label_is_relative_to_node_order():
    # Both SMILES are the same molecule written from different ends: same graph, same label.
    a, _ = smiles_to_raw_graph("C[C@H](N)O", stereo=True)
    b, _ = smiles_to_raw_graph("O[C@@H](N)C", stereo=True)
    assert a == b
    assert sorted(a.x[:, 3].tolist()) == [0, 0, 0, 1] or sorted(a.x[:, 3].tolist()) == [0, 0, 0, 2]


def test_marks_on_non_stereo_atoms_and_bonds_are_dropped_as_rdkit_does():
    graph, canonical = smiles_to_raw_graph("C[C@H](C)O", stereo=True)
    assert graph.x[:, 3].tolist() == [0, 0, 0, 0] and canonical == "CC(C)O"
    graph, canonical = smiles_to_raw_graph("C/C(C)=C/C", stereo=True)
    assert graph.edge_attr.max() < 10 and canonical == "CC=C(C)C"


@pytest.mark.parametrize(
    "smiles, message",
    [
        ("CC=[C@]=CC", r"atom 2 \(C\) is an allene \(axial\) stereo centre"),
        ("F[C@SP1](Cl)(Br)I", r"atom 1 \(C\) has CHI_SQUAREPLANAR stereo"),
    ],
)
def test_stereo_the_labels_cannot_express_is_refused_naming_the_atom(smiles, message):
    with pytest.raises(DomainError, match=message):
        smiles_to_raw_graph(smiles, stereo=True)
    domain = MoleculeDomain.fit(["CC=CC"], stereo=True)
    with pytest.raises(DomainError, match=message):
        domain.canonical(smiles)


def test_atropisomer_bond_is_refused_naming_the_bond():
    mol = Chem.MolFromSmiles("Cc1cccc(O)c1-c1c(C)cccc1Cl")
    bond = mol.GetBondBetweenAtoms(7, 8)
    bond.SetStereoAtoms(1, 9)
    bond.SetStereo(Chem.BondStereo.STEREOATROPCW)
    from molgen.domains.molecule import mol_to_raw_graph

    with pytest.raises(DomainError, match=r"bond \d+ \(atoms 7-8, C-C\) has atropisomer stereo"):
        mol_to_raw_graph(mol, stereo=True)


def test_decoded_stereo_labels_without_a_stereo_element_are_dropped():
    # A chirality label on a CH3 and a cis label on a terminal double bond: a valid molecule without stereo.
    graph, _ = smiles_to_raw_graph("CC=C", stereo=True)
    x = graph.x.copy()
    x[0, 3] = 1
    attr = np.where(graph.edge_attr == 2, 12, graph.edge_attr)
    mol = raw_graph_to_mol(type(graph)(x=x, edge_index=graph.edge_index, edge_attr=attr), "implicit")
    assert Chem.MolToSmiles(mol) == "C=CC"


def test_stereo_is_saved_in_the_config_and_old_configs_read_without_it(zinc_200):
    domain = MoleculeDomain.fit(zinc_200[:20], stereo=True, hydrogens="implicit")
    config = json.loads(json.dumps(domain.to_config()))
    assert config["stereo"] is True
    loaded = domain_class("molecule").from_config(config)
    assert loaded.stereo and loaded.vocab == domain.vocab
    assert loaded.vocab.node_fields == STEREO_NODE_FIELDS and loaded.vocab.edge_field == STEREO_EDGE_FIELD
    with pytest.raises(ValueError, match="not a molecule's with stereo=False"):
        MoleculeDomain(domain.vocab, stereo=False)


def test_shipped_model_domain_has_no_stereo_and_ignores_stereo_marks():
    config = json.loads((REPO / "checkpoints" / "moses" / "domain.json").read_text())
    assert "stereo" not in config
    domain = MoleculeDomain.from_config(config)
    assert domain.stereo is False
    assert domain.from_graph(domain.to_graph("C[C@H](N)C(=O)O")) == "CC(N)C(=O)O"
    assert domain.to_config()["stereo"] is False


def test_large_charged_chiral_molecules_round_trip_nothing_limits_the_size():
    # 68 heavy atoms, five centres, three E/Z bonds, two charges (the size limit is a model's max_nodes).
    smiles = (
        r"C[C@@H]1CC[C@@H](C(=O)NCCOCCNC(=O)[C@H]2CC[C@H](C)N(C(=O)c3ccc(/C=C/C[NH3+])cc3)C2)CN1C(=O)"
        r"c1ccc(/C=C/CNC(=O)[C@@H]2CCCN2C(=O)c2ccc(/C=C\C[NH3+])cc2)cc1"
    )
    mol = Chem.MolFromSmiles(smiles)
    assert mol.GetNumHeavyAtoms() >= 60
    domain = MoleculeDomain.fit([smiles], stereo=True, hydrogens="implicit")
    graph = domain.to_graph(smiles)
    assert graph.num_nodes == mol.GetNumHeavyAtoms()
    assert domain.from_graph(graph) == _rdkit_canonical(smiles)


def test_the_tokenizer_takes_stereo_graphs_like_any_other(zinc_200):
    # Four node fields and six edge classes: the tokenizer is built from the vocabulary's sizes, nothing else.
    from molgen.batch import batch_from_graphs
    from molgen.tokenizer.config import TokenizerConfig
    from molgen.tokenizer.model import GraphTokenizer

    domain = MoleculeDomain.fit(zinc_200, stereo=True, hydrogens="implicit")
    graphs = [domain.to_graph(s) for s in zinc_200[:8]]
    config = TokenizerConfig(
        node_vocab_sizes=domain.vocab.node_sizes, edge_vocab_size=domain.vocab.edge_size, max_nodes=64,
        d_model=32, n_heads=2, encoder_layers=1, decoder_layers=1, edge_hidden=16,
    )  # fmt: skip
    batch = batch_from_graphs(graphs)
    tokenizer = GraphTokenizer(config)
    x, adjacency = tokenizer.decode(tokenizer.encode(batch), batch.mask)
    assert x.shape[-1] == 4 and domain.vocab.edge_size == 6
    assert adjacency.shape[1] == adjacency.shape[2] == x.shape[1]


def _one_hot(domain: MoleculeDomain, graph) -> tuple[list[np.ndarray], np.ndarray]:
    nodes = [np.eye(size)[graph.x[:, f]] for f, size in enumerate(domain.vocab.node_sizes)]
    return nodes, np.eye(domain.vocab.edge_size)[graph.dense_edges()]


def test_valence_aware_decoding_keeps_stereo_and_is_valid_for_any_scores(zinc_200):
    domain = MoleculeDomain.fit(zinc_200, hydrogens="implicit", stereo=True)
    for smiles in zinc_200[:100]:
        assert domain.from_scores(*_one_hot(domain, domain.to_graph(smiles))) == _rdkit_canonical(smiles)
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 20))
        nodes = [rng.dirichlet(np.full(size, 0.3), size=n) for size in domain.vocab.node_sizes]
        edges = rng.dirichlet([6, 1, 0.3, 0.1, 0.2, 0.2], size=(n, n))
        smiles = domain.from_scores(nodes, (edges + edges.transpose(1, 0, 2)) / 2)
        mol = Chem.MolFromSmiles(smiles)
        assert mol is not None and len(Chem.GetMolFrags(mol)) == 1, smiles
