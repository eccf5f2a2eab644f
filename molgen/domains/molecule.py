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

Stereochemistry, two modes (``MoleculeDomain(stereo=...)``, saved in ``domain.json``; off unless asked, so
configs written before it existed read as ``stereo=False``):

- ``stereo=False``: stereo is not represented. Graphs are built from, and compared with, non-isomeric canonical
  SMILES; stereo marks of the input are ignored. Node fields: atomic number, formal charge, hydrogen count; the
  edge field ``bond_order`` holds the Kekulé order.
- ``stereo=True``: graphs carry tetrahedral centres and double-bond geometry, and the round trip is exact on
  isomeric canonical SMILES. Nodes are in the order of the *isomeric* canonical SMILES (so two stereoisomers
  of a symmetric skeleton each get one graph, whatever the input's atom order). Two labels are added, both
  relative to the canonical node order, so they mean the same thing in every graph and need no RDKit
  convention to read:

  * node field ``chirality``: 0 none, 1 clockwise, 2 counterclockwise. Looking from the neighbour with the
    lowest node index, the other neighbours in increasing index order turn clockwise (1) or counterclockwise
    (2); an atom's hydrogen, when it has one, takes the place RDKit gives an implicit hydrogen, which is the
    same in reading and writing. (This is SMILES' ``@@``/``@`` with neighbours listed in node order.)
  * edge field ``bond``: ``order + 10 * geometry``, with geometry 0 none, 1 cis, 2 trans, where cis/trans is
    that of the two reference neighbours, on each end of the double bond its neighbour with the lowest node
    index. So the labels are 1, 2, 3 (single, double, triple), 12 (double, cis) and 22 (double, trans).

  E/Z is folded into the one edge label rather than added as a second edge field because a
  :class:`~molgen.graph.Graph` has one edge field: the tokenizer and the prior learn the combined labels like
  any other (a vocabulary fitted on data lists only those that occur), and nothing outside this module needs
  to know. Stereo is perceived with RDKit (``AssignStereochemistry``, the perception ``MolFromSmiles`` uses)
  and written back as RDKit chiral tags and cis/trans bond stereo. A mark on an atom or bond that is not a
  stereo element (two equal substituents) is dropped, as RDKit's canonical SMILES drops it. Stereo the labels
  cannot express is refused naming the atom or bond: axial (allene) centres, atropisomeric bonds,
  non-tetrahedral centres (``@SP``, ``@TB``, ``@OH``) and enhanced-stereo groups.

Elements, charges and hydrogen counts come from the vocabulary fitted on the training data; nothing here
lists elements or limits the number of atoms (a model's largest graph is its tokenizer's ``max_nodes``, set from
its data). Isotopes and radicals are rejected with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from rdkit import Chem, rdBase

from molgen.chem import (
    InvalidMoleculeError,
    StandardizeOptions,
    canonical_smiles,
    compute_properties,
    parse_smiles,
    permutation_is_odd,
)
from molgen.graph import DomainError, Graph, OutOfVocabularyError, ValenceTable, Vocabulary

__all__ = [
    "CONDITION_PROPERTIES",
    "EDGE_FIELD",
    "HYDROGEN_MODES",
    "NODE_FIELDS",
    "STEREO_EDGE_FIELD",
    "STEREO_NODE_FIELDS",
    "MoleculeDomain",
    "bond_order",
    "edge_field",
    "mol_to_raw_graph",
    "node_fields",
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

STEREO_NODE_FIELDS = [*NODE_FIELDS, "chirality"]
STEREO_EDGE_FIELD = "bond"
"""Fields of a domain with ``stereo=True``: ``chirality`` and ``bond = order + 10 * geometry`` (module docstring)."""

_BOND_ORDER = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3}
_BOND_TYPE = {order: bond_type for bond_type, order in _BOND_ORDER.items()}
_CW, _CCW = 1, 2  # chirality labels
_CIS, _TRANS = 1, 2  # double-bond geometry labels
_GEOMETRY_STEP = 10  # bond label = order + 10 * geometry
_CHIRAL_TAG = {Chem.ChiralType.CHI_TETRAHEDRAL_CW: _CW, Chem.ChiralType.CHI_TETRAHEDRAL_CCW: _CCW}
_TAG_OF = {label: tag for tag, label in _CHIRAL_TAG.items()}
_SMILES_ATOM = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOSPFI]|[bcnosp]|\*")
"""One atom of a SMILES string, in the order RDKit numbers them (bracket atoms, organic subset, aromatic, ``*``)."""


def node_fields(stereo: bool) -> list[str]:
    """Node fields of a molecule graph with or without stereo labels."""
    return list(STEREO_NODE_FIELDS if stereo else NODE_FIELDS)


def edge_field(stereo: bool) -> str:
    """The edge field of a molecule graph with or without stereo labels."""
    return STEREO_EDGE_FIELD if stereo else EDGE_FIELD


def bond_order(raw: np.ndarray | int) -> np.ndarray | int:
    """Kekulé bond order (1, 2, 3) of raw edge values of either edge field (the geometry is the tens digit)."""
    return raw % _GEOMETRY_STEP


def _atom_name(atom: Chem.Atom) -> str:
    return f"atom {atom.GetIdx()} ({atom.GetSymbol()})"


def mol_to_raw_graph(mol: Chem.Mol, stereo: bool = False) -> tuple[Graph, str]:
    """Graph of raw values (atomic number, charge, H count[, chirality]; Kekulé bond order[ + 10 * geometry]) in
    canonical atom order, and the canonical SMILES that order comes from (isomeric with ``stereo``).

    Raises :class:`DomainError` naming the atom or bond that cannot be represented.
    """
    for atom in mol.GetAtoms():
        if atom.GetIsotope():
            raise DomainError(f"{_atom_name(atom)} has isotope label {atom.GetIsotope()}, which is not supported")
        if atom.GetNumRadicalElectrons():
            raise DomainError(f"{_atom_name(atom)} has radical electrons, which are not supported")
    if stereo:
        mol = _perceived_stereo(mol)
    # Canonical order: the atom order of RDKit's canonical SMILES (isomeric with stereo, so that each stereoisomer
    # has one graph whatever the input's atom order; non-isomeric without, as the shipped model was trained).
    smiles = Chem.MolToSmiles(mol, isomericSmiles=stereo)
    order = list(mol.GetPropsAsDict(includePrivate=True, includeComputed=True)["_smilesAtomOutputOrder"])
    mol = Chem.RWMol(Chem.RenumberAtoms(mol, order))  # keeps chiral tags' meaning and bond stereo atoms
    rows = [[a.GetAtomicNum(), a.GetFormalCharge(), a.GetTotalNumHs()] for a in mol.GetAtoms()]
    geometry: dict[int, int] = {}
    if stereo:
        for row, atom in zip(rows, mol.GetAtoms(), strict=True):
            row.append(_chirality_label(atom))
        geometry = _bond_geometry(mol)
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception as exc:
        raise DomainError(f"cannot kekulize: {exc}") from None
    x = np.array(rows, dtype=np.int64).reshape(-1, len(node_fields(stereo)))
    edges, values = [], []
    for bond in mol.GetBonds():
        order_ = _BOND_ORDER.get(bond.GetBondType())
        if order_ is None:
            raise DomainError(
                f"bond {bond.GetIdx()} ({bond.GetBeginAtom().GetSymbol()}-{bond.GetEndAtom().GetSymbol()}) "
                f"has type {bond.GetBondType()}, which is not supported"
            )
        i, j = sorted((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
        edges.append((i, j))
        values.append(order_ + _GEOMETRY_STEP * geometry.get(bond.GetIdx(), 0))
    edge_index = np.array(edges, dtype=np.int64).reshape(-1, 2)
    return Graph(x=x, edge_index=edge_index, edge_attr=np.array(values, dtype=np.int64)), smiles


def _perceived_stereo(mol: Chem.Mol) -> Chem.Mol:
    """A copy of ``mol`` with RDKit's stereo perception applied (marks on non-stereo atoms and bonds removed);
    :class:`DomainError` naming the atom or bond whose stereo the graph labels cannot express."""
    for atom in mol.GetAtoms():
        tag = atom.GetChiralTag()
        if tag not in _CHIRAL_TAG and tag != Chem.ChiralType.CHI_UNSPECIFIED:
            raise DomainError(f"{_atom_name(atom)} has {tag} stereo, which is not supported (only tetrahedral centres)")
        if tag in _CHIRAL_TAG and _is_cumulene_centre(atom):
            raise DomainError(f"{_atom_name(atom)} is an allene (axial) stereo centre, which is not supported")
    for bond in mol.GetBonds():
        if bond.GetStereo() in (Chem.BondStereo.STEREOATROPCW, Chem.BondStereo.STEREOATROPCCW):
            raise DomainError(f"bond {bond.GetIdx()} ({_bond_name(bond)}) has atropisomer stereo, which is not supported")
    if mol.GetStereoGroups():
        group = mol.GetStereoGroups()[0]
        atoms = ", ".join(_atom_name(a) for a in group.GetAtoms())
        raise DomainError(f"enhanced stereo group {group.GetGroupType()} on {atoms} is not supported")
    mol = Chem.Mol(mol)
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    return mol


def _is_cumulene_centre(atom: Chem.Atom) -> bool:
    return atom.GetDegree() == 2 and all(b.GetBondType() == Chem.BondType.DOUBLE for b in atom.GetBonds())


def _bond_name(bond: Chem.Bond) -> str:
    begin, end = bond.GetBeginAtom(), bond.GetEndAtom()
    return f"atoms {begin.GetIdx()}-{end.GetIdx()}, {begin.GetSymbol()}-{end.GetSymbol()}"


def _chirality_label(atom: Chem.Atom) -> int:
    """Chirality label of ``atom`` relative to its neighbours in increasing index order (0: none).

    RDKit's tag is relative to the order of the atom's bonds; an odd permutation from that order to index
    order turns clockwise into counterclockwise.
    """
    label = _CHIRAL_TAG.get(atom.GetChiralTag(), 0)
    if label and permutation_is_odd([b.GetOtherAtomIdx(atom.GetIdx()) for b in atom.GetBonds()]):
        label = _CW + _CCW - label
    return label


def _reference_neighbour(mol: Chem.Mol, atom: int, partner: int) -> int | None:
    """The neighbour of ``atom`` other than ``partner`` with the lowest index (None if it has no other)."""
    others = [n.GetIdx() for n in mol.GetAtomWithIdx(atom).GetNeighbors() if n.GetIdx() != partner]
    return min(others) if others else None


def _bond_geometry(mol: Chem.Mol) -> dict[int, int]:
    """Bond index -> geometry label (cis/trans of the two reference neighbours) of each stereo double bond.

    RDKit's E/Z (after ``AssignStereochemistry``) and cis/trans both refer to the bond's stereo atoms (for E/Z
    the CIP-highest neighbours, Z meaning cis); each end whose reference neighbour is the other one flips it.
    """
    geometry = {}
    for bond in mol.GetBonds():
        kind = bond.GetStereo()
        if kind in (Chem.BondStereo.STEREONONE, Chem.BondStereo.STEREOANY):
            continue
        if kind not in (Chem.BondStereo.STEREOE, Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOCIS, Chem.BondStereo.STEREOTRANS):
            raise DomainError(f"bond {bond.GetIdx()} ({_bond_name(bond)}) has {kind} stereo, which is not supported")
        cis = kind in (Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOCIS)
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        stereo_i, stereo_j = bond.GetStereoAtoms()
        if mol.GetBondBetweenAtoms(i, stereo_i) is None:  # stereo atoms listed end first
            stereo_i, stereo_j = stereo_j, stereo_i
        flips = (stereo_i != _reference_neighbour(mol, i, j)) + (stereo_j != _reference_neighbour(mol, j, i))
        geometry[bond.GetIdx()] = _CIS if cis != (flips % 2 == 1) else _TRANS
    return geometry


def smiles_to_raw_graph(smiles: str, standardize_with: StandardizeOptions | None = None, stereo: bool = False) -> tuple[Graph, str]:
    """Parse ``smiles``; its raw graph and canonical SMILES. Errors name the SMILES and the reason."""
    mol = parse_smiles(smiles, standardize_with)
    try:
        if stereo and "@" in smiles:
            _check_axial_marks(smiles)
        return mol_to_raw_graph(mol, stereo)
    except DomainError as exc:
        raise DomainError(f"SMILES {smiles!r}: {exc}") from None


def _check_axial_marks(smiles: str) -> None:
    """Refuse ``@`` on an allene centre: RDKit's parser drops it, so it cannot be seen on the molecule."""
    mol = Chem.MolFromSmiles(smiles.strip(), sanitize=False)
    atoms = _SMILES_ATOM.findall(smiles.strip())
    if mol is None or len(atoms) != mol.GetNumAtoms():
        return
    for atom, text in zip(mol.GetAtoms(), atoms, strict=True):
        if "@" in text and _is_cumulene_centre(atom):
            raise DomainError(f"{_atom_name(atom)} is an allene (axial) stereo centre, which is not supported")


def raw_graph_to_mol(graph: Graph, hydrogens: str = "explicit", stereo: bool | None = None) -> Chem.Mol:
    """Sanitised RDKit molecule from a raw graph; raises :class:`InvalidMoleculeError` if it is not valid.

    ``hydrogens="explicit"`` sets each atom's hydrogen count from the graph (too few for its bonds is
    invalid: unpaired electrons); ``"implicit"`` ignores the graph's counts and lets RDKit add hydrogens up
    to each atom's default valence. ``stereo``: the graph has stereo labels (module docstring; None: when it has
    the ``chirality`` node field), written back as chiral tags and cis/trans bonds; labels on atoms or bonds that
    are not stereo elements are dropped.
    """
    if hydrogens not in HYDROGEN_MODES:
        raise ValueError(f"hydrogens must be one of {HYDROGEN_MODES}, got {hydrogens!r}")
    if stereo is None:
        stereo = graph.x.shape[1] == len(STEREO_NODE_FIELDS)
    if graph.x.shape[1] != len(node_fields(stereo)):
        raise ValueError(f"graph has {graph.x.shape[1]} node fields; a molecule graph with stereo={stereo} has {node_fields(stereo)}")
    rw = Chem.RWMol()
    for atomic_num, charge, *_ in graph.x.tolist():
        atom = Chem.Atom(int(atomic_num))
        atom.SetFormalCharge(int(charge))
        rw.AddAtom(atom)
    for (i, j), value in zip(graph.edge_index.tolist(), graph.edge_attr.tolist(), strict=True):
        if i == j:
            raise InvalidMoleculeError(f"decoded graph has a self-loop on atom {i}")
        order_ = int(bond_order(int(value)))
        if order_ not in _BOND_TYPE:
            raise InvalidMoleculeError(f"decoded graph has bond {i}-{j} of order {order_}")
        rw.AddBond(int(i), int(j), _BOND_TYPE[order_])
    _set_hydrogens(rw, graph.x[:, NODE_FIELDS.index("num_hs")].tolist(), hydrogens)
    if stereo:
        _write_stereo(rw, graph)
    mol = _sanitized(rw.GetMol(), "decoded graph is not a valid molecule")
    for atom in mol.GetAtoms():  # too few hydrogens for an atom's bonds leaves unpaired electrons
        if atom.GetNumRadicalElectrons():
            raise InvalidMoleculeError(f"decoded graph is not a valid molecule: {_atom_name(atom)} has unpaired electrons")
    if stereo:
        _perceive_written_stereo(mol)
    return mol


def _perceive_written_stereo(mol: Chem.Mol) -> None:
    """RDKit's perception of the stereo written by :func:`_write_stereo` (in place): cis/trans bonds become
    single-bond directions, from which the perception assigns E/Z; marks on non-stereo elements are removed."""
    Chem.SetDoubleBondNeighborDirections(mol)
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)


def _write_stereo(rw: Chem.RWMol, graph: Graph) -> None:
    """Chiral tags and cis/trans bonds from the graph's labels (the inverse of the reading in mol_to_raw_graph)."""
    for atom, label in zip(rw.GetAtoms(), graph.x[:, STEREO_NODE_FIELDS.index("chirality")].tolist(), strict=True):
        if label in _TAG_OF and atom.GetDegree() >= 3:
            if permutation_is_odd([b.GetOtherAtomIdx(atom.GetIdx()) for b in atom.GetBonds()]):
                label = _CW + _CCW - label
            atom.SetChiralTag(_TAG_OF[label])
    for (i, j), value in zip(graph.edge_index.tolist(), graph.edge_attr.tolist(), strict=True):
        geometry = int(value) // _GEOMETRY_STEP
        if geometry not in (_CIS, _TRANS) or bond_order(int(value)) != 2:
            continue
        ref_i, ref_j = _reference_neighbour(rw, i, j), _reference_neighbour(rw, j, i)
        if ref_i is None or ref_j is None:
            continue  # a terminal double bond has no geometry
        bond = rw.GetBondBetweenAtoms(int(i), int(j))
        bond.SetStereoAtoms(ref_i, ref_j) if bond.GetBeginAtomIdx() == i else bond.SetStereoAtoms(ref_j, ref_i)
        bond.SetStereo(Chem.BondStereo.STEREOCIS if geometry == _CIS else Chem.BondStereo.STEREOTRANS)


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


def _build(raw: np.ndarray, bonds: list[tuple[int, int, int]], stereo: bool = False) -> Chem.Mol:
    """Sanitised molecule from raw atoms and (i, j, raw edge value) bonds that fit the atoms' valences (hydrogens
    implied), with the stereo labels written back when ``stereo``."""
    rw = Chem.RWMol()
    for z, c, *_ in raw.tolist():
        atom = Chem.Atom(int(z))
        atom.SetFormalCharge(int(c))
        rw.AddAtom(atom)
    for i, j, value in bonds:
        rw.AddBond(i, j, _BOND_TYPE[int(bond_order(value))])
    if stereo:
        edge_index = np.array([(i, j) for i, j, _ in bonds], dtype=np.int64).reshape(-1, 2)
        _write_stereo(rw, Graph(x=raw, edge_index=edge_index, edge_attr=np.array([v for *_, v in bonds], dtype=np.int64)))
    mol = _sanitized(rw.GetMol(), "valence-aware decoding failed")
    if stereo:
        _perceive_written_stereo(mol)
    return mol


def _max_valence(atomic_num: int, charge: int) -> int:
    """Largest valence RDKit allows an atom (charged atoms take that of the isoelectronic element)."""
    table = Chem.GetPeriodicTable()
    valences = [v for v in table.GetValenceList(max(1, atomic_num - charge)) if v >= 0]
    return max(valences) if valences else 4


_FIELD_NAMES = {"atomic_num": "element", "formal_charge": "formal charge", "num_hs": "hydrogen count", "chirality": "chirality label"}


def _outside_chemistry(field_name: str, value: int, known: list[int]) -> str:
    """'element I is outside this model's chemistry (its elements: C, N, O)' and the like, for a user."""
    if field_name == "atomic_num":
        table = Chem.GetPeriodicTable()
        symbols = ", ".join(table.GetElementSymbol(int(z)) for z in known)
        return f"element {table.GetElementSymbol(int(value))} is outside this model's chemistry (its elements: {symbols})"
    if field_name == "formal_charge":
        charges = ", ".join(f"{c:+d}" if c else "0" for c in known)
        return f"formal charge {value:+d} is outside this model's chemistry (its charges: {charges})"
    return f"{_FIELD_NAMES.get(field_name, field_name)} {value} is outside this model's chemistry (its values: {known})"


def _input_atom_name(smiles: str, raw_atom: np.ndarray) -> str:
    """'atom 3 (Se)' with the atom's number in the SMILES as written (graphs use canonical order)."""
    symbol = Chem.GetPeriodicTable().GetElementSymbol(int(raw_atom[0]))
    mol = Chem.MolFromSmiles(smiles) if smiles else None
    for atom in mol.GetAtoms() if mol is not None else []:
        if (atom.GetAtomicNum(), atom.GetFormalCharge(), atom.GetTotalNumHs()) == tuple(int(v) for v in raw_atom[:3]):
            return f"atom {atom.GetIdx()} ({symbol})"
    return f"an atom ({symbol})"


class MoleculeDomain:
    """Molecules as graphs, with a vocabulary fitted on training data.

    >>> domain = MoleculeDomain.fit(["CCO", "c1ccccc1"])
    >>> domain.from_graph(domain.to_graph("OCC"))
    'CCO'
    """

    name = "molecule"
    item_noun = "SMILES"  # what messages call one item
    node_noun = "heavy atoms"  # and its nodes
    connected = True  # a graph that falls apart into fragments is not one molecule

    def __init__(
        self, vocab: Vocabulary, standardize_with: StandardizeOptions | None = None, hydrogens: str = "explicit", stereo: bool | None = None
    ) -> None:
        """``stereo``: graphs carry stereo labels (module docstring); None: as the vocabulary's fields say."""
        if stereo is None:
            stereo = vocab.node_fields == STEREO_NODE_FIELDS
        if vocab.node_fields != node_fields(stereo) or vocab.edge_field != edge_field(stereo):
            raise ValueError(
                f"vocabulary fields {vocab.node_fields}/{vocab.edge_field} are not a molecule's with stereo={stereo} "
                f"({node_fields(stereo)}/{edge_field(stereo)})"
            )
        if hydrogens not in HYDROGEN_MODES:
            raise ValueError(f"hydrogens must be one of {HYDROGEN_MODES}, got {hydrogens!r}")
        if not stereo and not set(vocab.edge_values) <= set(_BOND_TYPE):
            raise ValueError(f"vocabulary bond orders {vocab.edge_values}: a molecule's are Kekulé orders {sorted(_BOND_TYPE)}")
        allowed = {*_BOND_TYPE, 2 + _GEOMETRY_STEP * _CIS, 2 + _GEOMETRY_STEP * _TRANS}
        if stereo and not set(vocab.edge_values) <= allowed:
            raise ValueError(f"vocabulary bond values {vocab.edge_values}: a molecule's are {sorted(allowed)} (Kekulé order + 10 x geometry)")
        self.vocab = vocab
        self.standardize_with = standardize_with
        self.hydrogens = hydrogens
        self.stereo = bool(stereo)

    @classmethod
    def fit(
        cls, smiles: list[str], standardize_with: StandardizeOptions | None = None, hydrogens: str = "explicit", stereo: bool = False
    ) -> MoleculeDomain:
        """Fit the vocabulary on a list of SMILES (all must parse; use ``molgen.featurize`` for files)."""
        graphs = [smiles_to_raw_graph(s, standardize_with, stereo)[0] for s in smiles]
        return cls(vocab_from_raw_graphs(graphs, stereo), standardize_with, hydrogens, stereo)

    def to_graph(self, smiles: str) -> Graph:
        """SMILES -> labelled graph in canonical order; errors name the SMILES and the offending atom/bond
        (with implicit hydrogens, also an atom whose hydrogens RDKit would not infer)."""
        raw = smiles_to_raw_graph(smiles, self.standardize_with, self.stereo)[0]
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
            known = self.vocab.node_values[self.vocab.node_fields.index(field_name)]
            raise OutOfVocabularyError(
                f"SMILES {smiles!r}: {_input_atom_name(smiles, raw.x[row])} has {field_name}={value}, which the "
                f"tokenizer's vocabulary does not contain (known {field_name}: {known}); "
                f"{_outside_chemistry(field_name, value, known)}"
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

    def dropped_stereo(self, smiles: str) -> list[str]:
        """The stereo elements of ``smiles`` that this domain's graphs do not carry (all of them without stereo;
        none with), each named by its atom or bond as numbered in the SMILES: ``"atom 1 (C): tetrahedral centre"``,
        ``"bond 1 (atoms 1-2, C=C): double-bond geometry"``. Raises InvalidMoleculeError if it does not parse."""
        if self.stereo:
            return []
        mol = Chem.Mol(parse_smiles(smiles))
        Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
        found = [f"{_atom_name(a)}: tetrahedral centre" for a in mol.GetAtoms() if a.GetChiralTag() in _CHIRAL_TAG]
        for bond in mol.GetBonds():
            if bond.GetStereo() not in (Chem.BondStereo.STEREONONE, Chem.BondStereo.STEREOANY):
                begin, end = bond.GetBeginAtom(), bond.GetEndAtom()
                name = f"atoms {begin.GetIdx()}-{end.GetIdx()}, {begin.GetSymbol()}={end.GetSymbol()}"
                found.append(f"bond {bond.GetIdx()} ({name}): double-bond geometry")
        return found

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
        return raw_graph_to_mol(self.raw_graph(graph), self.hydrogens, self.stereo)

    def hydrogen_counts(self, graph: Graph) -> np.ndarray:
        """(n,) hydrogens on each atom of a valid labelled graph, as the molecule has them (stored or inferred)."""
        if self.hydrogens == "explicit":
            return self.raw_graph(graph).x[:, NODE_FIELDS.index("num_hs")]
        return np.array([atom.GetTotalNumHs() for atom in self.to_mol(graph).GetAtoms()], dtype=np.int64)

    def from_graph(self, graph: Graph) -> str:
        """Labelled graph -> canonical SMILES (isomeric with stereo); raises InvalidMoleculeError when invalid."""
        return canonical_smiles(self.to_mol(graph), isomeric=self.stereo)

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
        capacity = np.array([float(_max_valence(int(z), int(c))) for z, c, *_ in raw.tolist()])
        cost = {value: float(bond_order(value)) for value in bond_orders[1:]}
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
        mol = _build(raw, chosen, self.stereo)
        fragments = Chem.GetMolFrags(mol, asMols=True)
        mol = max(fragments, key=lambda m: m.GetNumAtoms())
        return canonical_smiles(mol, isomeric=self.stereo)

    def valence_table(self) -> ValenceTable:
        """Largest valence of each (element, charge) label pair and the order of each bond label, for
        repair passes. With explicit hydrogens the check ignores the hydrogens a node carries, so it helps less; it
        is meant for implicit hydrogens."""
        elements, charges = self.vocab.node_values[0], self.vocab.node_values[1]
        capacity = [[float(_max_valence(int(z), int(c))) for c in charges] for z in elements]
        return ValenceTable(capacity=capacity, edge_orders=[0.0, *(float(bond_order(v)) for v in self.vocab.edge_values)])

    def canonical(self, smiles: str) -> str:
        """The form a round trip is compared in: canonical SMILES (isomeric with stereo, stereo the graph cannot express
        refused) after this domain's standardisation."""
        mol = parse_smiles(smiles, self.standardize_with)
        if self.stereo:
            try:
                if "@" in smiles:
                    _check_axial_marks(smiles)
                mol = _perceived_stereo(mol)
            except DomainError as exc:
                raise DomainError(f"SMILES {smiles!r}: {exc}") from None
        return canonical_smiles(mol, isomeric=self.stereo)

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
            "standardize": None if opts is None else opts.to_dict(),
            "hydrogens": self.hydrogens,
            "stereo": self.stereo,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MoleculeDomain:
        opts = config.get("standardize")
        if config.get("bonds", "kekule") != "kekule":
            raise ValueError(f"domain config: bonds={config['bonds']!r}; molecules are Kekulé graphs (aromatic bond labels are not supported)")
        standardize_with = None if opts is None else StandardizeOptions.from_dict(opts)
        return cls(Vocabulary.from_dict(config["vocab"]), standardize_with, config.get("hydrogens", "explicit"), bool(config.get("stereo", False)))


def vocab_from_raw_graphs(graphs: list[Graph], stereo: bool = False) -> Vocabulary:
    """Fit a molecule vocabulary on raw graphs (with stereo labels when ``stereo``)."""
    fields = node_fields(stereo)
    node_raw = np.concatenate([g.x for g in graphs]) if graphs else np.zeros((0, len(fields)), dtype=np.int64)
    edge_raw = np.concatenate([g.edge_attr for g in graphs]) if graphs else np.zeros(0, dtype=np.int64)
    return Vocabulary.fit(fields, node_raw, edge_field(stereo), edge_raw)
