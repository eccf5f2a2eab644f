"""molgen.domains.molecule: SMILES <-> Graph.

The key property: SMILES -> graph -> SMILES returns the input's non-isomeric canonical SMILES, on thousands
of real molecules and on the hard cases (aromatic [nH], charges, symmetry).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from rdkit import Chem

from molgen.chem import InvalidMoleculeError, StandardizeOptions, canonicalize
from molgen.domains import domain_class
from molgen.domains.molecule import EDGE_FIELD, NODE_FIELDS, MoleculeDomain, raw_graph_to_mol, smiles_to_raw_graph
from molgen.graph import DomainError, Graph, OutOfVocabularyError, Vocabulary

HARD_CASES = [
    # aromatic NH: the H count must survive Kekulé -> aromatic
    "c1cc[nH]c1",  # pyrrole
    "c1ccc2[nH]ccc2c1",  # indole
    "c1c[nH]cn1",  # imidazole
    "c1ccc2c(c1)[nH]c1ccccc12",  # carbazole
    "O=c1cc[nH]cc1",  # 4-pyridone
    "Cn1cccc1",  # N-methylpyrrole (no H on n)
    # charges
    "C[N+](C)(C)C",
    "[O-][N+](=O)c1ccccc1",
    "c1cc[nH+]cc1",
    "CC(=O)[O-]",
    "[NH4+]",
    "[N-]=[N+]=O",
    "C[S+](C)C",
    "[Na+].[Cl-]",
    # unusual valences, bond orders, small and disconnected molecules
    "CS(C)=O",
    "O=S(=O)(O)c1ccccc1",
    "OB(O)c1ccccc1",
    "C#N",
    "CC#CC",
    "C",
    "O",
    "CCO.O",
    # symmetric molecules
    "c1ccccc1",
    "c1ccc2ccccc2c1",
    "c1ccc2cc3ccccc3cc2c1",
    "c1ccc(-c2ccccc2)cc1",
    "CC(C)(C)C",
    "OC(=O)c1ccc(C(=O)O)cc1",
    "C1CCCCC1",
    "C1CC2CCC1CC2",
    "C1C2CC3CC1CC(C2)C3",
    "C12C3C4C1C5C2C3C45",  # cubane
    "Cc1ccc(C)cc1",
    "c1ncncn1",
]


@pytest.fixture(scope="module")
def hard_domain() -> MoleculeDomain:
    return MoleculeDomain.fit(HARD_CASES)


# --- the round trip on real molecules ---------------------------------------------------------------


def _round_trip_failures(domain: MoleculeDomain, smiles: list[str]) -> list[tuple[str, str, str]]:
    failures = []
    for s in smiles:
        expected = canonicalize(s, isomeric=False)
        got = domain.from_graph(domain.to_graph(s))
        if got != expected:
            failures.append((s, expected, got))
    return failures


def test_round_trip_3000_moses_test_molecules(moses_test_3000):
    domain = MoleculeDomain.fit(moses_test_3000)
    failures = _round_trip_failures(domain, moses_test_3000)
    assert not failures, f"{len(failures)} of {len(moses_test_3000)} differ, e.g. {failures[:5]}"


def test_round_trip_moses_scaffold_test_with_train_vocabulary(moses_sample):
    # Vocabulary from training molecules, round trip on the scaffold split (unseen ring systems).
    domain = MoleculeDomain.fit(moses_sample("train", 2000, seed=0))
    scaffolds = moses_sample("test_scaffolds", 1000, seed=0)
    graphs, outside = {}, []
    for s in scaffolds:
        try:
            graphs[s] = domain.to_graph(s)
        except OutOfVocabularyError:
            outside.append(s)
    assert len(outside) < 0.01 * len(scaffolds), outside[:5]  # MOSES has a tiny, shared vocabulary
    failures = []
    for s, g in graphs.items():
        if domain.from_graph(g) != domain.canonical(s):
            failures.append((s, domain.canonical(s), domain.from_graph(g)))
    assert not failures, failures[:5]


def test_graph_has_one_node_per_heavy_atom_and_one_edge_per_bond(moses_test_3000):
    domain = MoleculeDomain.fit(moses_test_3000[:300])
    for s in moses_test_3000[:300]:
        mol = Chem.MolFromSmiles(s)
        g = domain.to_graph(s)
        assert g.num_nodes == mol.GetNumHeavyAtoms()
        assert g.num_edges == mol.GetNumBonds()
        assert np.all(g.edge_index[:, 0] < g.edge_index[:, 1])
        assert g.edge_attr.min() >= 1  # 0 is reserved for "no edge"


@pytest.mark.parametrize("smiles", HARD_CASES)
def test_round_trip_hard_cases(hard_domain, smiles):
    assert hard_domain.from_graph(hard_domain.to_graph(smiles)) == canonicalize(smiles, isomeric=False)


def test_docstring_example():
    domain = MoleculeDomain.fit(["CCO", "c1ccccc1"])
    assert domain.from_graph(domain.to_graph("OCC")) == "CCO"


def test_raw_graph_values_for_aromatic_nh_and_charges():
    # Pyrrole: every atom carries one H, the nitrogen included; bonds are Kekulé orders (two doubles).
    g, canonical = smiles_to_raw_graph("c1cc[nH]c1")
    assert canonical == "c1cc[nH]c1"
    assert sorted(map(tuple, g.x.tolist())) == sorted([(6, 0, 1)] * 4 + [(7, 0, 1)])
    assert sorted(g.edge_attr.tolist()) == [1, 1, 1, 2, 2]
    # Tetramethylammonium: N+ with no H, four CH3.
    g, _ = smiles_to_raw_graph("C[N+](C)(C)C")
    assert sorted(map(tuple, g.x.tolist())) == sorted([(7, 1, 0)] + [(6, 0, 3)] * 4)
    # Benzene: alternating single and double bonds, six CH.
    g, _ = smiles_to_raw_graph("c1ccccc1")
    assert g.x.tolist() == [[6, 0, 1]] * 6
    assert sorted(g.edge_attr.tolist()) == [1, 1, 1, 2, 2, 2]
    assert np.all(g.dense_edges().sum(1) == 3)  # each ring carbon: one single + one double bond


def test_node_order_is_canonical_smiles_order():
    # Nodes follow the atom order of the canonical SMILES: 'OCC' -> 'CCO' puts O last.
    g, canonical = smiles_to_raw_graph("OCC")
    assert canonical == "CCO"
    assert g.x[:, 0].tolist() == [6, 6, 8]


# --- canonical order: one molecule, one graph ---------------------------------------------------------


@pytest.mark.parametrize(
    "variants",
    [
        ["CCO", "OCC", "C(O)C", "[CH3][CH2][OH]"],
        ["c1ccccc1", "C1=CC=CC=C1", "C1C=CC=CC=1"],
        ["Cc1ccc(C)cc1", "c1(C)ccc(C)cc1", "CC1=CC=C(C)C=C1"],
        ["c1ccc2[nH]ccc2c1", "[nH]1ccc2ccccc12", "C1=CC=C2C(=C1)C=CN2"],
        ["OC(=O)c1ccc(C(=O)O)cc1", "c1cc(ccc1C(O)=O)C(=O)O"],
        ["C[N+](C)(C)C", "[N+](C)(C)(C)C"],
    ],
)
def test_same_molecule_written_differently_gives_same_graph(hard_domain, variants):
    graphs = [hard_domain.to_graph(s) for s in variants]
    assert all(g == graphs[0] for g in graphs[1:])


def test_atom_order_permutations_give_same_graph(moses_test_3000):
    rng = np.random.default_rng(0)
    sample = moses_test_3000[:300]
    domain = MoleculeDomain.fit(sample)
    for s in sample:
        mol = Chem.MolFromSmiles(s)
        order = rng.permutation(mol.GetNumAtoms()).tolist()
        shuffled = Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False)
        assert domain.to_graph(shuffled) == domain.to_graph(s), (s, shuffled)


# --- what the domain rejects, and how it says so ---------------------------------------------------------


@pytest.mark.parametrize(
    ("smiles", "atom", "what"),
    [
        ("C[13CH3]", "atom 1 (C)", "isotope"),
        ("[2H]OC", "atom 0 (H)", "isotope"),
        ("[CH3]", "atom 0 (C)", "radical"),
        ("CC[CH2]", "atom 2 (C)", "radical"),
        ("[O]", "atom 0 (O)", "radical"),
    ],
)
def test_isotopes_and_radicals_rejected_naming_the_atom(hard_domain, smiles, atom, what):
    with pytest.raises(DomainError) as info:
        hard_domain.to_graph(smiles)
    message = str(info.value)
    assert repr(smiles) in message
    assert atom in message
    assert what in message


def test_invalid_smiles_raises_invalid_molecule_error(hard_domain):
    with pytest.raises(InvalidMoleculeError, match="C1CC"):
        hard_domain.to_graph("C1CC")


def test_out_of_vocabulary_element_names_atom_and_smiles():
    domain = MoleculeDomain.fit(["CCO", "c1ccccc1"])
    with pytest.raises(OutOfVocabularyError) as info:
        domain.to_graph("C[Se]C")
    message = str(info.value)
    assert "'C[Se]C'" in message
    assert "(Se)" in message
    assert "atomic_num=34" in message


def test_out_of_vocabulary_charge_names_atom_and_smiles():
    domain = MoleculeDomain.fit(["CCN", "c1ccccc1"])
    with pytest.raises(OutOfVocabularyError) as info:
        domain.to_graph("C[N+](C)(C)C")
    message = str(info.value)
    assert "'C[N+](C)(C)C'" in message
    assert "(N)" in message
    assert "formal_charge=1" in message


def test_out_of_vocabulary_bond_order_names_bond_and_smiles():
    domain = MoleculeDomain.fit(["CC(C)(C)C", "C=C"])  # H counts 0, 2, 3; bond orders 1, 2
    with pytest.raises(OutOfVocabularyError) as info:
        domain.to_graph("CC#CC")
    message = str(info.value)
    assert "'CC#CC'" in message
    assert "bond_order=3" in message
    assert re.search(r"bond \d+-\d+", message)


def test_out_of_vocabulary_atom_index_refers_to_the_input_smiles():
    domain = MoleculeDomain.fit(["CCO"])
    smiles = "[SeH]CC"
    with pytest.raises(OutOfVocabularyError) as info:
        domain.to_graph(smiles)
    index = int(re.search(r"atom (\d+) \((\w+)\)", str(info.value)).group(1))
    assert Chem.MolFromSmiles(smiles).GetAtomWithIdx(index).GetSymbol() == "Se"


# --- stereochemistry is dropped ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chiral", "flat"),
    [
        ("C[C@H](N)O", "CC(N)O"),
        ("C[C@@H](N)O", "CC(N)O"),
        ("C/C=C/C", "CC=CC"),
        ("C/C=C\\C", "CC=CC"),
        ("N[C@@H](Cc1ccccc1)C(=O)O", "NC(Cc1ccccc1)C(=O)O"),
    ],
)
def test_stereo_is_dropped(chiral, flat):
    domain = MoleculeDomain.fit([chiral, flat])
    assert domain.to_graph(chiral) == domain.to_graph(flat)
    assert domain.from_graph(domain.to_graph(chiral)) == canonicalize(flat)
    assert domain.canonical(chiral) == canonicalize(flat)


# --- graph -> molecule validity ---------------------------------------------------------------------------


def test_from_graph_rejects_invalid_valence():
    domain = MoleculeDomain.fit(["CC(C)(C)C"])  # C with 0 H and with 3 H; single bonds
    quaternary = domain.to_graph("CC(C)(C)C")
    center = int(np.flatnonzero(domain.raw_graph(quaternary).x[:, 2] == 0)[0])
    methyl = quaternary.x[(center + 1) % 5]
    # Add a fifth methyl to the quaternary carbon: pentavalent carbon.
    x = np.vstack([quaternary.x, methyl])
    edge_index = np.vstack([quaternary.edge_index, [[center, 5]]])
    edge_attr = np.concatenate([quaternary.edge_attr, quaternary.edge_attr[:1]])
    with pytest.raises(InvalidMoleculeError, match="not a valid molecule"):
        domain.from_graph(Graph(x=x, edge_index=edge_index, edge_attr=edge_attr))


def test_raw_graph_to_mol_rejects_self_loop():
    g = Graph(x=np.array([[6, 0, 2], [6, 0, 2]]), edge_index=np.array([[0, 0], [0, 1]]), edge_attr=np.array([1, 1]))
    with pytest.raises(InvalidMoleculeError, match="self-loop"):
        raw_graph_to_mol(g)


def test_raw_graph_drops_no_edge_labels(hard_domain):
    g = hard_domain.to_graph("CCO")
    with_zero = Graph(
        x=g.x, edge_index=np.vstack([g.edge_index, [[0, 2]]]), edge_attr=np.concatenate([g.edge_attr, [0]])
    )
    assert hard_domain.from_graph(with_zero) == "CCO"


# --- standardisation inside the domain ------------------------------------------------------------------


def test_domain_applies_its_standardisation():
    opts = StandardizeOptions(largest_fragment=True, neutralize=True)
    domain = MoleculeDomain.fit(["[Na+].[O-]C(=O)c1ccccc1", "CCO"], standardize_with=opts)
    assert domain.from_graph(domain.to_graph("[Na+].[O-]C(=O)c1ccccc1")) == canonicalize("OC(=O)c1ccccc1")
    assert domain.canonical("[Na+].[O-]C(=O)c1ccccc1") == canonicalize("OC(=O)c1ccccc1")
    assert 11 not in domain.vocab.node_values[0]  # sodium never reached the vocabulary


# --- config round trip ------------------------------------------------------------------------------------


@pytest.mark.parametrize("opts", [None, StandardizeOptions(largest_fragment=True, neutralize=False)])
def test_to_config_from_config_round_trip(hard_domain, opts):
    domain = MoleculeDomain(hard_domain.vocab, standardize_with=opts)
    config = json.loads(json.dumps(domain.to_config()))  # must be plain JSON
    assert config["name"] == "molecule"
    rebuilt = domain_class(config["name"]).from_config(config)
    assert isinstance(rebuilt, MoleculeDomain)
    assert rebuilt.vocab == domain.vocab
    assert rebuilt.standardize_with == opts
    for s in HARD_CASES:
        assert rebuilt.to_graph(s) == domain.to_graph(s)


def test_domain_rejects_a_non_molecule_vocabulary():
    vocab = Vocabulary(["colour"], [[0, 1]], "relation", [1])
    with pytest.raises(ValueError, match="not a molecule"):
        MoleculeDomain(vocab)
    assert MoleculeDomain(Vocabulary(list(NODE_FIELDS), [[6], [0], [4]], EDGE_FIELD, [1])).vocab.node_sizes == [1, 1, 1]


# --- implicit hydrogens -----------------------------------------------------------------------------------


def test_implicit_round_trip_moses_and_hard_cases(moses_test_3000):
    # Every MOSES molecule, and the hard cases ([nH], charges, S(=O)), are rebuilt exactly from heavy atoms,
    # charges and Kekulé bonds with RDKit's default valences.
    domain = MoleculeDomain.fit(moses_test_3000 + HARD_CASES, hydrogens="implicit")
    failures = _round_trip_failures(domain, moses_test_3000 + HARD_CASES)
    assert not failures, f"{len(failures)} differ, e.g. {failures[:5]}"


def test_implicit_ignores_decoded_hydrogen_counts_explicit_does_not(hard_domain):
    implicit = MoleculeDomain(hard_domain.vocab, hydrogens="implicit")
    graph = hard_domain.to_graph("CCO")
    wrong_hs = Graph(x=graph.x.copy(), edge_index=graph.edge_index, edge_attr=graph.edge_attr)
    h = NODE_FIELDS.index("num_hs")
    wrong_hs.x[:, h] = hard_domain.vocab.node_labels(np.array([[6, 0, 0]]))[0, h]  # every atom "without hydrogens"
    with pytest.raises(InvalidMoleculeError, match="unpaired electrons"):
        hard_domain.from_graph(wrong_hs)
    assert implicit.from_graph(wrong_hs) == "CCO"
    assert implicit.hydrogen_counts(wrong_hs).tolist() == hard_domain.hydrogen_counts(graph).tolist()
    assert sorted(implicit.hydrogen_counts(graph).tolist()) == [1, 2, 3]


def test_implicit_still_rejects_excess_valence():
    domain = MoleculeDomain.fit(["CC(C)(C)C"], hydrogens="implicit")
    g = domain.to_graph("CC(C)(C)C")
    center = int(np.flatnonzero(domain.raw_graph(g).x[:, 2] == 0)[0])
    x = np.vstack([g.x, g.x[(center + 1) % 5]])
    edge_index = np.vstack([g.edge_index, [[center, 5]]])
    with pytest.raises(InvalidMoleculeError, match="not a valid molecule"):
        domain.from_graph(Graph(x=x, edge_index=edge_index, edge_attr=np.concatenate([g.edge_attr, g.edge_attr[:1]])))


def test_implicit_refuses_hydrogens_rdkit_would_not_infer_naming_the_atom():
    domain = MoleculeDomain.fit(["CCO", "C[SH2]C"])  # explicit: representable
    assert domain.from_graph(domain.to_graph("C[SH2]C")) == "C[SH2]C"
    implicit = MoleculeDomain(domain.vocab, hydrogens="implicit")
    with pytest.raises(DomainError, match=r"C\[SH2\]C.*atom 1 \(S\) has 2 hydrogen\(s\) where its bonds imply 0"):
        implicit.to_graph("C[SH2]C")


def test_hydrogens_mode_saved_in_config_and_old_configs_read_as_explicit(hard_domain):
    config = json.loads(json.dumps(MoleculeDomain(hard_domain.vocab, hydrogens="implicit").to_config()))
    assert config["hydrogens"] == "implicit"
    assert MoleculeDomain.from_config(config).hydrogens == "implicit"
    del config["hydrogens"]
    assert MoleculeDomain.from_config(config).hydrogens == "explicit"
    with pytest.raises(ValueError, match="hydrogens must be one of"):
        MoleculeDomain(hard_domain.vocab, hydrogens="none")


# --- Kekulé bonds only --------------------------------------------------------------------------------------


def test_bonds_are_kekule_orders_and_aromatic_configs_are_refused(moses_test_3000):
    # An aromatic ring is alternating single and double bonds; RDKit perceives aromaticity when rebuilding.
    domain = MoleculeDomain.fit(moses_test_3000[:50], hydrogens="implicit")
    assert domain.vocab.edge_values == [1, 2, 3]
    raw = domain.raw_graph(domain.to_graph("Cc1ccccc1"))
    assert sorted(raw.edge_attr.tolist()) == [1, 1, 1, 1, 2, 2, 2]
    assert domain.from_graph(domain.to_graph("Cc1ccccc1")) == "Cc1ccccc1"
    assert domain.valence_table().edge_orders == [0.0, 1.0, 2.0, 3.0]
    config = json.loads(json.dumps(domain.to_config()))
    assert "bonds" not in config and MoleculeDomain.from_config(config).vocab == domain.vocab
    assert MoleculeDomain.from_config({**config, "bonds": "kekule"}).vocab == domain.vocab
    with pytest.raises(ValueError, match="bonds='aromatic'; molecules are Kekulé graphs"):
        MoleculeDomain.from_config({**config, "bonds": "aromatic"})
    aromatic_vocab = Vocabulary(list(NODE_FIELDS), domain.vocab.node_values, EDGE_FIELD, [1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"bond orders \[1, 2, 3, 4\]: a molecule's are Kekulé orders \[1, 2, 3\]"):
        MoleculeDomain(aromatic_vocab)


def _one_hot(domain: MoleculeDomain, graph: Graph) -> tuple[list[np.ndarray], np.ndarray]:
    nodes = [np.eye(size)[graph.x[:, f]] for f, size in enumerate(domain.vocab.node_sizes)]
    return nodes, np.eye(domain.vocab.edge_size)[graph.dense_edges()]


def test_valence_aware_decoding_keeps_valid_molecules_and_is_valid_for_any_scores(moses_test_3000):
    domain = MoleculeDomain.fit(moses_test_3000, hydrogens="implicit")
    for smiles in moses_test_3000[:200]:
        assert domain.from_scores(*_one_hot(domain, domain.to_graph(smiles))) == domain.canonical(smiles)
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 20))
        nodes = [rng.dirichlet(np.full(size, 0.3), size=n) for size in domain.vocab.node_sizes]
        edges = rng.dirichlet([6, 1, 0.3, 0.1], size=(n, n))
        smiles = domain.from_scores(nodes, (edges + edges.transpose(1, 0, 2)) / 2)
        mol = Chem.MolFromSmiles(smiles)
        assert mol is not None and len(Chem.GetMolFrags(mol)) == 1, smiles
