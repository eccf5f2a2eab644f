"""The molecular graph domain: SMILES <-> :class:`~molgen.graph.Graph`.

Nodes are heavy atoms in RDKit's canonical SMILES output order (a depth-first order, so most bonds join
neighbours in the sequence); node fields are atomic number, formal charge and total hydrogen count; edges are bond orders.

Bonds are Kekulé bond orders 1, 2, 3: an aromatic ring is a pattern of alternating single and double bonds, and
RDKit perceives aromaticity when the molecule is rebuilt.

Hydrogens, two modes (``MoleculeDomain(hydrogens=...)``, saved in ``domain.json``):

- ``"explicit"``: the hydrogen count of every atom is part of the molecule and written back as explicit,
  which makes the round trip exact for unusual valences too; a decoded graph is valid only if every atom's
  hydrogens and bonds add up to an allowed valence.
- ``"implicit"`` (what graph generative models such as DiGress or MoFlow use): a molecule is its heavy atoms,
  charges and Kekulé bonds, and RDKit fills in hydrogens from the default valences. The hydrogen count stays
  a node field (the tokenizer reads it and predicts it) but is not used to build the molecule, so a decoded
  graph is valid when its bonds fit the atoms' valences. Molecules whose hydrogens differ from what RDKit
  would infer are not representable and are refused by :meth:`MoleculeDomain.to_graph` with the atom named
  (none of MOSES).

Stereochemistry (chirality, double-bond geometry) is not represented: graphs are built from, and compared
with, non-isomeric canonical SMILES. Isotopes and radicals are rejected with a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rdkit import Chem, rdBase

from molgen.chem import InvalidMoleculeError, StandardizeOptions, canonical_smiles, compute_properties, parse_smiles
from molgen.graph import DomainError, Graph, OutOfVocabularyError, ValenceTable, Vocabulary

__all__ = [
    "CONDITION_PROPERTIES",
    "EDGE_FIELD",
    "HYDROGEN_MODES",
    "NODE_FIELDS",
    "MoleculeDomain",
    "mol_to_raw_graph",
    "raw_graph_to_mol",
    "smiles_to_raw_graph",
    "vocab_from_raw_graphs",
]

NODE_FIELDS = ["atomic_num", "formal_charge", "num_hs"]
CONDITION_PROPERTIES = ("QED", "logP", "MW", "SA", "TPSA", "HBD", "HBA")
"""Properties a prior trained on molecules is conditioned on (any subset can be given when sampling)."""
EDGE_FIELD = "bond_order"
HYDROGEN_MODES = ("explicit", "implicit")
"""How a graph's hydrogens become the molecule's: stored counts (explicit) or RDKit's default valences (implicit)."""

_BOND_ORDER = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}
_BOND_TYPE = {order: bond_type for bond_type, order in _BOND_ORDER.items()}


def _atom_name(atom: Chem.Atom) -> str:
    return f"atom {atom.GetIdx()} ({atom.GetSymbol()})"


def mol_to_raw_graph(mol: Chem.Mol) -> tuple[Graph, str]:
    """Graph of raw values (atomic number, charge, H count; Kekulé bond order) in canonical atom order, and the
    non-isomeric canonical SMILES that order comes from.

    Raises :class:`DomainError` naming the atom or bond that cannot be represented.
    """
    for atom in mol.GetAtoms():
        if atom.GetIsotope():
            raise DomainError(f"{_atom_name(atom)} has isotope label {atom.GetIsotope()}, which is not supported")
        if atom.GetNumRadicalElectrons():
            raise DomainError(f"{_atom_name(atom)} has radical electrons, which are not supported")
    # Canonical order: the atom order of RDKit's canonical (non-isomeric) SMILES.
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    order = list(mol.GetPropsAsDict(includePrivate=True, includeComputed=True)["_smilesAtomOutputOrder"])
    mol = Chem.RWMol(Chem.RenumberAtoms(mol, order))
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception as exc:
        raise DomainError(f"cannot kekulize: {exc}") from None
    x = np.array(
        [(a.GetAtomicNum(), a.GetFormalCharge(), a.GetTotalNumHs()) for a in mol.GetAtoms()], dtype=np.int64
    ).reshape(-1, len(NODE_FIELDS))
    edges, orders = [], []
    for bond in mol.GetBonds():
        order_ = _BOND_ORDER.get(bond.GetBondType())
        if order_ is None:
            raise DomainError(
                f"bond {bond.GetIdx()} ({bond.GetBeginAtom().GetSymbol()}-{bond.GetEndAtom().GetSymbol()}) "
                f"has type {bond.GetBondType()}, which is not supported"
            )
        i, j = sorted((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
        edges.append((i, j))
        orders.append(order_)
    edge_index = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return Graph(x=x, edge_index=edge_index, edge_attr=np.array(orders, dtype=np.int64)), smiles


def smiles_to_raw_graph(smiles: str, standardize_with: StandardizeOptions | None = None) -> tuple[Graph, str]:
    """Parse ``smiles``; its raw graph and canonical SMILES. Errors name the SMILES and the reason."""
    mol = parse_smiles(smiles, standardize_with)
    try:
        return mol_to_raw_graph(mol)
    except DomainError as exc:
        raise DomainError(f"SMILES {smiles!r}: {exc}") from None


def raw_graph_to_mol(graph: Graph, hydrogens: str = "explicit") -> Chem.Mol:
    """Sanitised RDKit molecule from a raw graph; raises :class:`InvalidMoleculeError` if it is not valid.

    ``hydrogens="explicit"`` sets each atom's hydrogen count from the graph (too few for its bonds is
    invalid: unpaired electrons); ``"implicit"`` ignores the graph's counts and lets RDKit add hydrogens up
    to each atom's default valence.
    """
    if hydrogens not in HYDROGEN_MODES:
        raise ValueError(f"hydrogens must be one of {HYDROGEN_MODES}, got {hydrogens!r}")
    rw = Chem.RWMol()
    for atomic_num, charge, _ in graph.x.tolist():
        atom = Chem.Atom(int(atomic_num))
        atom.SetFormalCharge(int(charge))
        rw.AddAtom(atom)
    for (i, j), order_ in zip(graph.edge_index.tolist(), graph.edge_attr.tolist(), strict=True):
        if i == j:
            raise InvalidMoleculeError(f"decoded graph has a self-loop on atom {i}")
        rw.AddBond(int(i), int(j), _BOND_TYPE[int(order_)])
    _set_hydrogens(rw, graph.x[:, NODE_FIELDS.index("num_hs")].tolist(), hydrogens)
    mol = _sanitized(rw.GetMol(), "decoded graph is not a valid molecule")
    for atom in mol.GetAtoms():  # too few hydrogens for an atom's bonds leaves unpaired electrons
        if atom.GetNumRadicalElectrons():
            raise InvalidMoleculeError(f"decoded graph is not a valid molecule: {_atom_name(atom)} has unpaired electrons")
    return mol


def _set_hydrogens(rw: Chem.RWMol, counts: list[int], hydrogens: str) -> None:
    """Stored hydrogen counts on every atom (explicit); implicit hydrogens leave them to RDKit."""
    if hydrogens != "explicit":
        return
    for atom, count in zip(rw.GetAtoms(), counts, strict=True):
        atom.SetNumExplicitHs(int(count))
        atom.SetNoImplicit(True)


def check_implicit_hydrogens(graph: Graph) -> None:
    """Raise :class:`DomainError` naming the first atom whose hydrogen count differs from what RDKit infers
    from its element, charge and bonds (so the molecule cannot be rebuilt with implicit hydrogens)."""
    try:
        mol = raw_graph_to_mol(graph, hydrogens="implicit")
    except InvalidMoleculeError as exc:
        raise DomainError(f"not representable with implicit hydrogens: {exc}") from None
    for atom, stored in zip(mol.GetAtoms(), graph.x[:, NODE_FIELDS.index("num_hs")].tolist(), strict=True):
        if atom.GetTotalNumHs() != stored:
            raise DomainError(
                f"{_atom_name(atom)} has {stored} hydrogen(s) where its bonds imply {atom.GetTotalNumHs()}; "
                "this domain uses implicit hydrogens (use hydrogens='explicit' for such molecules)"
            )


def _sanitized(mol: Chem.Mol, failure: str) -> Chem.Mol:
    """Sanitise in place; InvalidMoleculeError ``"<failure>: <RDKit's reason>"`` if RDKit refuses."""
    with rdBase.CaptureErrorLog() as log:
        try:
            Chem.SanitizeMol(mol)
        except Exception as exc:
            reason = str(exc) or log.messages.strip() or "sanitization failed"
            raise InvalidMoleculeError(f"{failure}: {reason}") from None
    return mol


def _build(raw: np.ndarray, bonds: list[tuple[int, int, int]]) -> Chem.Mol:
    """Sanitised molecule from raw atoms and (i, j, order) bonds that fit the atoms' valences (hydrogens implied)."""
    rw = Chem.RWMol()
    for z, c, _ in raw.tolist():
        atom = Chem.Atom(int(z))
        atom.SetFormalCharge(int(c))
        rw.AddAtom(atom)
    for i, j, order_ in bonds:
        rw.AddBond(i, j, _BOND_TYPE[order_])
    return _sanitized(rw.GetMol(), "valence-aware decoding failed")


def _max_valence(atomic_num: int, charge: int) -> int:
    """Largest valence RDKit allows an atom (charged atoms take that of the isoelectronic element)."""
    table = Chem.GetPeriodicTable()
    valences = [v for v in table.GetValenceList(max(1, atomic_num - charge)) if v >= 0]
    return max(valences) if valences else 4


def _input_atom_name(smiles: str, raw_atom: np.ndarray) -> str:
    """'atom 3 (Se)' with the atom's number in the SMILES as written (graphs use canonical order)."""
    symbol = Chem.GetPeriodicTable().GetElementSymbol(int(raw_atom[0]))
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    for atom in mol.GetAtoms() if mol is not None else []:
        if (atom.GetAtomicNum(), atom.GetFormalCharge(), atom.GetTotalNumHs()) == tuple(int(v) for v in raw_atom):
            return f"atom {atom.GetIdx()} ({symbol})"
    return f"an atom ({symbol})"


class MoleculeDomain:
    """Molecules as graphs, with a vocabulary fitted on training data.

    >>> domain = MoleculeDomain.fit(["CCO", "c1ccccc1"])
    >>> domain.from_graph(domain.to_graph("OCC"))
    'CCO'
    """

    name = "molecule"

    def __init__(self, vocab: Vocabulary, standardize_with: StandardizeOptions | None = None, hydrogens: str = "explicit") -> None:
        if vocab.node_fields != NODE_FIELDS or vocab.edge_field != EDGE_FIELD:
            raise ValueError(f"vocabulary fields {vocab.node_fields}/{vocab.edge_field} are not a molecule's")
        if hydrogens not in HYDROGEN_MODES:
            raise ValueError(f"hydrogens must be one of {HYDROGEN_MODES}, got {hydrogens!r}")
        if not set(vocab.edge_values) <= set(_BOND_TYPE):
            raise ValueError(f"vocabulary bond orders {vocab.edge_values}: a molecule's are Kekulé orders {sorted(_BOND_TYPE)}")
        self.vocab = vocab
        self.standardize_with = standardize_with
        self.hydrogens = hydrogens

    @classmethod
    def fit(cls, smiles: list[str], standardize_with: StandardizeOptions | None = None, hydrogens: str = "explicit") -> MoleculeDomain:
        """Fit the vocabulary on a list of SMILES (all must parse; use ``molgen.featurize`` for files)."""
        graphs = [smiles_to_raw_graph(s, standardize_with)[0] for s in smiles]
        return cls(vocab_from_raw_graphs(graphs), standardize_with, hydrogens)

    def to_graph(self, smiles: str) -> Graph:
        """SMILES -> labelled graph in canonical order; errors name the SMILES and the offending atom/bond
        (with implicit hydrogens, also an atom whose hydrogens RDKit would not infer)."""
        raw = smiles_to_raw_graph(smiles, self.standardize_with)[0]
        if self.hydrogens == "implicit":
            try:
                check_implicit_hydrogens(raw)
            except DomainError as exc:
                raise DomainError(f"SMILES {smiles!r}: {exc}") from None
        return self.label_graph(raw, smiles)

    def label_graph(self, raw: Graph, smiles: str = "") -> Graph:
        """Map a raw graph to vocabulary labels."""
        try:
            x = self.vocab.node_labels(raw.x)
        except OutOfVocabularyError as exc:
            _, row, field_name, value = exc.args
            raise OutOfVocabularyError(
                f"SMILES {smiles!r}: {_input_atom_name(smiles, raw.x[row])} has {field_name}={value}, which the "
                f"tokenizer's vocabulary does not contain "
                f"(known {field_name}: {self.vocab.node_values[NODE_FIELDS.index(field_name)]})"
            ) from None
        try:
            edge_attr = self.vocab.edge_labels(raw.edge_attr)
        except OutOfVocabularyError as exc:
            _, row, field_name, value = exc.args
            i, j = raw.edge_index[row].tolist()
            raise OutOfVocabularyError(
                f"SMILES {smiles!r}: bond {i}-{j} has {field_name}={value}, which the tokenizer's vocabulary "
                f"does not contain (known: {self.vocab.edge_values})"
            ) from None
        return Graph(x=x, edge_index=raw.edge_index, edge_attr=edge_attr)

    def raw_graph(self, graph: Graph) -> Graph:
        """Map vocabulary labels back to raw values (drops edges labelled 0)."""
        keep = graph.edge_attr > 0
        return Graph(
            x=self.vocab.node_raw(graph.x),
            edge_index=graph.edge_index[keep],
            edge_attr=self.vocab.edge_raw(graph.edge_attr[keep]),
        )

    def to_mol(self, graph: Graph) -> Chem.Mol:
        """Labelled graph -> sanitised Mol; raises :class:`InvalidMoleculeError` when it is not valid."""
        return raw_graph_to_mol(self.raw_graph(graph), self.hydrogens)

    def hydrogen_counts(self, graph: Graph) -> np.ndarray:
        """(n,) hydrogens on each atom of a valid labelled graph, as the molecule has them (stored or inferred)."""
        if self.hydrogens == "explicit":
            return self.raw_graph(graph).x[:, NODE_FIELDS.index("num_hs")]
        return np.array([atom.GetTotalNumHs() for atom in self.to_mol(graph).GetAtoms()], dtype=np.int64)

    def from_graph(self, graph: Graph) -> str:
        """Labelled graph -> canonical (non-isomeric) SMILES; raises InvalidMoleculeError when invalid."""
        return canonical_smiles(self.to_mol(graph), isomeric=False)

    def from_scores(self, node_probs: list[np.ndarray], edge_probs: np.ndarray) -> str:
        """Valence-aware decoding: a valid, connected molecule from decoder probabilities, by construction.

        ``node_probs`` holds one (n, K_f) array per node field, ``edge_probs`` is (n, n, K_e) (label 0 = no
        bond). If the argmax graph is already a valid connected molecule it is returned unchanged. Otherwise
        atoms keep their argmax element and charge; bonds are added from the most to the least probable
        (those more likely present than absent), each with its most probable order that still fits both atoms'
        largest allowed valence (lowered if needed, skipped if no order fits); remaining fragments are then
        joined by the most probable single bonds between atoms with free valence; hydrogens fill the rest.
        If fragments cannot be joined (no free valence), the largest one is kept.
        """
        x = np.stack([p.argmax(-1) for p in node_probs], axis=-1)  # (n, F) labels
        adj = edge_probs.argmax(-1)  # (n, n)
        n = len(x)
        graph = Graph.from_dense(x, np.triu(adj, 1))
        if graph.num_components() == 1:
            try:
                return self.from_graph(graph)
            except InvalidMoleculeError:
                pass
        raw = self.vocab.node_raw(x)  # (n, F) raw values
        bond_orders = [0, *self.vocab.edge_values]  # label -> raw bond value (label 0: no bond)
        capacity = np.array([float(_max_valence(int(z), int(c))) for z, c, _ in raw.tolist()])
        cost = {order_: float(order_) for order_ in bond_orders[1:]}
        i_idx, j_idx = np.triu_indices(n, 1)
        present = 1.0 - edge_probs[i_idx, j_idx, 0]  # (P,) probability that a bond exists
        order_probs = edge_probs[i_idx, j_idx, 1:]  # (P, K_e - 1)
        parent = list(range(n))
        chosen: list[tuple[int, int, int]] = []

        def root(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        def add(i: int, j: int, order_: int) -> None:
            chosen.append((i, j, order_))
            capacity[i] -= cost[order_]
            capacity[j] -= cost[order_]
            parent[root(i)] = root(j)

        # 1. likely bonds, most probable first, each with the most probable order that fits
        for p in np.argsort(-present, kind="stable"):
            if present[p] < 0.5:
                break
            i, j = int(i_idx[p]), int(j_idx[p])
            for label in np.argsort(-order_probs[p], kind="stable") + 1:
                order_ = int(bond_orders[label])
                if cost[order_] <= min(capacity[i], capacity[j]):
                    add(i, j, order_)
                    break
        # 2. join fragments with the most probable single bonds between atoms with free valence
        for p in np.argsort(-present, kind="stable"):
            i, j = int(i_idx[p]), int(j_idx[p])
            if root(i) != root(j) and min(capacity[i], capacity[j]) >= 1:
                add(i, j, 1)
        mol = _build(raw, chosen)
        fragments = Chem.GetMolFrags(mol, asMols=True)
        mol = max(fragments, key=lambda m: m.GetNumAtoms())
        return canonical_smiles(mol, isomeric=False)

    def valence_table(self) -> ValenceTable:
        """Largest valence of each (element, charge) label pair and the order of each bond label, for
        repair passes. With explicit hydrogens the check ignores the hydrogens a node carries, so it helps less; it
        is meant for implicit hydrogens."""
        elements, charges = self.vocab.node_values[0], self.vocab.node_values[1]
        capacity = [[float(_max_valence(int(z), int(c))) for c in charges] for z in elements]
        return ValenceTable(capacity=capacity, edge_orders=[0.0, *(float(v) for v in self.vocab.edge_values)])

    def canonical(self, smiles: str) -> str:
        """The form a round trip is compared in: non-isomeric canonical SMILES after this domain's standardisation."""
        return canonical_smiles(parse_smiles(smiles, self.standardize_with), isomeric=False)

    # --- properties (what the prior can be conditioned on) ------------------------------------------------

    property_names: tuple[str, ...] = CONDITION_PROPERTIES

    def properties(self, item: str, names: Sequence[str] | None = None) -> dict[str, float]:
        """Named properties of a SMILES (default: :attr:`property_names`); raises InvalidMoleculeError."""
        return compute_properties(parse_smiles(item, self.standardize_with), list(names or self.property_names))

    statistic_names: tuple[str, ...] = ("rings", "aromatic_rings", "unusual_rings")

    def statistics(self, item: str, names: Sequence[str] | None = None) -> dict[str, float]:
        """Whole-molecule counts a calibration matches to the data (:mod:`molgen.calibration`; default
        :attr:`statistic_names`: SSSR rings, aromatic rings, and rings of 3, 4 or 7+ atoms); raises InvalidMoleculeError."""
        names = list(names or self.statistic_names)
        unknown = [name for name in names if name not in self.statistic_names]
        if unknown:
            raise ValueError(f"statistics {unknown}: not computed for molecules; known: {list(self.statistic_names)}")
        return self.properties(item, names)

    def to_config(self) -> dict[str, Any]:
        opts = self.standardize_with
        return {
            "name": self.name,
            "vocab": self.vocab.to_dict(),
            "standardize": None if opts is None else {"largest_fragment": opts.largest_fragment, "neutralize": opts.neutralize},
            "hydrogens": self.hydrogens,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MoleculeDomain:
        opts = config.get("standardize")
        if config.get("bonds", "kekule") != "kekule":
            raise ValueError(f"domain config: bonds={config['bonds']!r}; molecules are Kekulé graphs (aromatic bond labels are not supported)")
        return cls(Vocabulary.from_dict(config["vocab"]), None if opts is None else StandardizeOptions(**opts), config.get("hydrogens", "explicit"))


def vocab_from_raw_graphs(graphs: list[Graph]) -> Vocabulary:
    """Fit a molecule vocabulary on raw graphs."""
    node_raw = np.concatenate([g.x for g in graphs]) if graphs else np.zeros((0, len(NODE_FIELDS)), dtype=np.int64)
    edge_raw = np.concatenate([g.edge_attr for g in graphs]) if graphs else np.zeros(0, dtype=np.int64)
    return Vocabulary.fit(NODE_FIELDS, node_raw, EDGE_FIELD, edge_raw)
