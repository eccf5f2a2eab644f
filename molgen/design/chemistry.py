"""The design package's chemistry (RDKit): SMARTS patterns, Morgan similarity, cores with attachment points,
penalized logP. The tokenizer and the prior never see any of it; general chemistry stays in :mod:`molgen.chem`.

Two families of scores live here. molgen's own (:func:`fingerprint`/:func:`tanimoto`: 2048-bit Morgan radius 2;
:func:`penalized_logp`: each term standardised on ZINC-250k, GCPN's form) steer design. The published constrained
optimisation benchmark is scored as the JT-VAE code scores it, by :func:`logp_minus_sa` (what its
``opt.*.logP-SA`` files and its ``molopt/optimize.py`` use), :func:`penalized_logp_unnormalized` (the same with the
ring penalty of its ``bo/`` code) and :func:`morgan_count_similarity` (Tanimoto of count-based Morgan fingerprints,
radius 2, unfolded: ``AllChem.GetMorganFingerprint(mol, 2)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import Crippen, rdFingerprintGenerator, rdmolops
from rdkit.Chem.Scaffolds import MurckoScaffold
from rdkit.Contrib.SA_Score import sascorer

from molgen.chem import MAX_SMILES_LENGTH, InvalidMoleculeError, canonical_smiles, parse_smiles, permutation_is_odd

__all__ = [
    "Core",
    "Fragments",
    "Pattern",
    "count_fingerprint",
    "fingerprint",
    "impose_stereo",
    "largest_cycle",
    "logp_minus_sa",
    "morgan_count_similarity",
    "murcko_scaffold",
    "parse_core",
    "parse_fragments",
    "parse_pattern",
    "penalized_logp",
    "penalized_logp_unnormalized",
    "side_chains",
    "tanimoto",
]


# --- substructure patterns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """A compiled SMARTS pattern and the text it came from."""

    text: str
    query: Chem.Mol

    def matches(self, mol: Chem.Mol) -> bool:
        return mol.HasSubstructMatch(self.query)


def parse_pattern(smarts: str, what: str = "SMARTS") -> Pattern:
    """Compile a SMARTS pattern; :class:`InvalidMoleculeError` naming it (and ``what`` it was given as) if it
    does not parse."""
    if not isinstance(smarts, str) or not smarts.strip():
        raise InvalidMoleculeError(f"{what} {smarts!r}: empty pattern")
    if len(smarts) > MAX_SMILES_LENGTH:
        raise InvalidMoleculeError(f"{what} {smarts[:60]!r}...: longer than the {MAX_SMILES_LENGTH:,} characters molgen reads")
    with rdBase.CaptureErrorLog() as log:
        query = Chem.MolFromSmarts(smarts.strip())
    if query is None:
        reason = next((ln.split("]", 1)[-1].strip() for ln in log.messages.splitlines() if ln.strip()), "")
        raise InvalidMoleculeError(f"{what} {smarts!r} is not a valid SMARTS pattern{': ' + reason if reason else ''}")
    return Pattern(smarts.strip(), query)


# --- similarity ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _morgan():
    return rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


def fingerprint(mol: Chem.Mol):
    """Morgan fingerprint, radius 2, 2048 bits (ECFP4-like; the usual choice for analog similarity)."""
    return _morgan().GetFingerprint(mol)


def tanimoto(a, b) -> float:
    """Tanimoto similarity of two :func:`fingerprint` bit vectors (or of two :func:`count_fingerprint` vectors)."""
    return float(DataStructs.TanimotoSimilarity(a, b))


@lru_cache(maxsize=1)
def _morgan_counts():
    return rdFingerprintGenerator.GetMorganGenerator(radius=2)


def count_fingerprint(mol: Chem.Mol):
    """Count-based Morgan fingerprint, radius 2, unfolded (a sparse vector of environment ids and counts): the same
    ids and counts as the older ``AllChem.GetMorganFingerprint(mol, 2)`` that JT-VAE's similarity uses."""
    return _morgan_counts().GetSparseCountFingerprint(mol)


def morgan_count_similarity(a: Chem.Mol, b: Chem.Mol) -> float:
    """Similarity of the constrained optimisation benchmark (JT-VAE, GCPN, MoFlow): Tanimoto of the count-based
    Morgan fingerprints of radius 2 (sum of the smaller counts over sum of the larger), not of 2048-bit vectors."""
    return float(DataStructs.TanimotoSimilarity(count_fingerprint(a), count_fingerprint(b)))


# --- cores ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Core:
    """A scaffold to decorate.

    ``template``: a complete molecule containing the core (attachment points ``[*:n]`` capped by carbon),
    as canonical SMILES; its atoms are in the tokenizer's canonical order. ``core_positions``: the template
    positions of the core's own atoms (the tokens to keep); ``free_positions``: template positions the prior
    may change (the caps). ``query`` matches a molecule that keeps the core, with a heavy atom on every
    attachment point.
    """

    text: str
    template: str
    core_positions: tuple[int, ...]
    free_positions: tuple[int, ...]
    query: Chem.Mol
    attachment_points: int
    what: str = "core"
    stereo: bool = False

    def retained(self, mol: Chem.Mol) -> bool:
        """Whether ``mol`` holds the core (with its tetrahedral centres and double-bond geometry when ``stereo``)."""
        return mol.HasSubstructMatch(self.query, useChirality=self.stereo)

    def missing(self, mol: Chem.Mol) -> str | None:
        """Why ``mol`` does not keep the core (a design's rejection reason), or None."""
        return None if self.retained(mol) else f"{self.what} {self.text!r} not retained"

    def impose(self, mol: Chem.Mol) -> Chem.Mol:
        """``mol`` with the core's stereo given to the atoms and bonds that match the core (the first match; ``mol``
        itself when the core has no stereo or is not in it). The decoder writes a kept atom's chirality relative to
        its new neighbours, which need not be the given configuration; this puts the given one back."""
        if not self.stereo:
            return mol
        match = mol.GetSubstructMatch(self.query)
        return impose_stereo(mol, self.query, match) if match else mol


def parse_core(core: str, what: str = "core", stereo: bool = False) -> Core:
    """A core SMILES with attachment points ``[*:1]``, ``[*:2]`` ... (REINVENT's convention) or a plain core;
    messages call it ``what`` (a core, a motif).

    ``stereo``: the model carries stereo, so the core's tetrahedral centres and double-bond geometry are kept (an
    isomeric template, a query that checks them, :meth:`Core.impose`). Without it a core with stereo marks is
    refused, naming them: a model without stereo cannot keep them, and dropping them would change the core silently.

    Raises :class:`InvalidMoleculeError` naming the core when it does not parse, has only attachment points,
    has an attachment point that is not bonded to exactly one core atom by a single bond, or (plain core) has
    no hydrogen left to replace.
    """
    mol = _perceived(core)
    marks = stereo_marks(mol)
    if marks and not stereo:
        raise InvalidMoleculeError(
            f"{what} {core!r}: stereo is outside this model's chemistry (it has none), and the {what} has {'; '.join(marks[:4])}"
            f"{'; ...' if len(marks) > 4 else ''}; give it without stereo marks, or use a model trained with stereo"
        )
    for atom in mol.GetAtoms():
        if atom.GetIsotope() and atom.GetAtomicNum() != 0:
            raise InvalidMoleculeError(f"{what} {core!r}: atom {atom.GetIdx()} ({atom.GetSymbol()}) has isotope label {atom.GetIsotope()}, which is not supported")
        if atom.GetAtomicNum() == 1:
            raise InvalidMoleculeError(f"{what} {core!r}: atom {atom.GetIdx()} is an explicit hydrogen; write the core without it (hydrogens are implied)")
    dummies = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if len(dummies) == mol.GetNumAtoms():
        raise InvalidMoleculeError(f"{what} {core!r}: only attachment points, no core atoms")
    for atom in dummies:
        bonds = atom.GetBonds()
        if len(bonds) != 1 or bonds[0].GetBondType() != Chem.BondType.SINGLE or bonds[0].GetOtherAtom(atom).GetAtomicNum() == 0:
            raise InvalidMoleculeError(
                f"{what} {core!r}: attachment point {atom.GetIdx()} must be bonded to one core atom by a single bond"
            )
    if not dummies and all(a.GetTotalNumHs() == 0 for a in mol.GetAtoms()):
        raise InvalidMoleculeError(f"{what} {core!r}: no free valence (no hydrogen to replace), so nothing can be attached")
    for atom in mol.GetAtoms():  # mark core atoms so they can be found in the template's canonical order
        atom.SetIntProp("core_atom", 0 if atom.GetAtomicNum() == 0 else 1)
    capped = Chem.RWMol(mol)
    for atom in dummies:
        a = capped.GetAtomWithIdx(atom.GetIdx())
        a.SetAtomicNum(6)
        a.SetAtomMapNum(0)
        a.SetNoImplicit(False)
        a.SetIsotope(0)
    return _template_core(core, capped.GetMol(), _core_query(mol), len(dummies), "capping the attachment points", what, bool(marks))


def _perceived(smiles: str) -> Chem.Mol:
    """``smiles`` parsed, its stereo perceived as the domain perceives it (E/Z on double bonds, marks on atoms and bonds
    that are no stereo elements removed)."""
    mol = parse_smiles(smiles)
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    return mol


def _template_core(text: str, marked: Chem.Mol, query: Chem.Mol, attachment_points: int, how: str, what: str = "core", stereo: bool = False) -> Core:
    """The :class:`Core` whose template is ``marked`` (a molecule whose atoms carry ``core_atom`` 1 or 0), sanitized and
    in canonical order; ``how`` the template was made, for the error when it is no valid molecule."""
    with rdBase.CaptureErrorLog():
        try:
            Chem.SanitizeMol(marked)
        except Exception as exc:  # noqa: BLE001 - RDKit raises several types
            raise InvalidMoleculeError(f"{what} {text!r}: {how} gives no valid molecule ({exc})") from None
    template = canonical_smiles(marked, isomeric=stereo)
    order = list(marked.GetPropsAsDict(includePrivate=True, includeComputed=True)["_smilesAtomOutputOrder"])
    is_core = [marked.GetAtomWithIdx(i).GetIntProp("core_atom") == 1 for i in order]  # in canonical order
    return Core(
        text=text,
        template=template,
        core_positions=tuple(k for k, c in enumerate(is_core) if c),
        free_positions=tuple(k for k, c in enumerate(is_core) if not c),
        query=query,
        attachment_points=attachment_points,
        what=what,
        stereo=stereo,
    )


def _core_query(mol: Chem.Mol) -> Chem.Mol:
    """The core as a substructure query whose attachment points match any heavy atom.

    With attachment points, the other core atoms must keep their degree (substituents go on the attachment
    points only, as in REINVENT's decorators); a plain core may be substituted wherever it has a hydrogen.
    """
    params = Chem.AdjustQueryParameters.NoAdjustments()
    params.makeDummiesQueries = True
    if any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        params.adjustDegree = True
        params.adjustDegreeFlags = Chem.AdjustQueryWhichFlags.ADJUST_IGNOREDUMMIES
    return Chem.AdjustQueryProperties(Chem.Mol(mol), params)


# --- stereo of kept atoms ---------------------------------------------------------------------------------

_TETRAHEDRAL = (Chem.ChiralType.CHI_TETRAHEDRAL_CW, Chem.ChiralType.CHI_TETRAHEDRAL_CCW)
_GEOMETRIC = (Chem.BondStereo.STEREOE, Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOCIS, Chem.BondStereo.STEREOTRANS)


def stereo_marks(mol: Chem.Mol) -> list[str]:
    """The stereo elements ``mol`` carries (as RDKit perceives them), named for messages: tetrahedral centres and
    double bonds with a geometry."""
    marks = [f"atom {a.GetIdx()} ({a.GetSymbol()}): tetrahedral centre" for a in mol.GetAtoms() if a.GetChiralTag() in _TETRAHEDRAL]
    return marks + [
        f"bond {b.GetIdx()} (atoms {b.GetBeginAtomIdx()}-{b.GetEndAtomIdx()}): double-bond geometry" for b in mol.GetBonds() if b.GetStereo() in _GEOMETRIC
    ]


def impose_stereo(mol: Chem.Mol, source: Chem.Mol, match: Sequence[int]) -> Chem.Mol:
    """A copy of ``mol`` whose atoms ``match`` (``match[k]``: the atom of ``mol`` matching atom k of ``source``) have
    the tetrahedral centres and double-bond geometry of ``source``'s atoms; ``mol``'s other stereo is kept.

    A centre's configuration is carried through its neighbours: RDKit's tag is relative to the order of the atom's
    bonds, an implicit hydrogen counting as the last neighbour, so a substituent of ``mol`` on a position where
    ``source`` has a hydrogen takes that hydrogen's place. A double bond gets ``source``'s cis/trans of the atoms
    matching its stereo atoms. Stereo then goes through RDKit's perception, as decoding's does (a centre that is
    no stereo element in ``mol``, two equal substituents, loses its mark)."""
    out = Chem.RWMol(mol)
    for q in source.GetAtoms():
        if q.GetChiralTag() not in _TETRAHEDRAL:
            continue
        atom = out.GetAtomWithIdx(match[q.GetIdx()])
        mapped = [match[b.GetOtherAtomIdx(q.GetIdx())] for b in q.GetBonds()]
        own = [b.GetOtherAtomIdx(atom.GetIdx()) for b in atom.GetBonds()]
        extra = [k for k in own if k not in mapped]
        if len(extra) > 1 or len(mapped) + len(extra) != len(own):
            continue  # not the same neighbourhood (a substructure match keeps it): nothing to carry over
        tag = q.GetChiralTag()
        if permutation_is_odd([own.index(k) for k in mapped + extra]):
            tag = _TETRAHEDRAL[1 - _TETRAHEDRAL.index(tag)]
        atom.SetChiralTag(tag)
    for q in source.GetBonds():
        if q.GetStereo() not in _GEOMETRIC or len(q.GetStereoAtoms()) != 2:
            continue
        i, j = match[q.GetBeginAtomIdx()], match[q.GetEndAtomIdx()]
        a, b = (match[k] for k in q.GetStereoAtoms())
        bond = out.GetBondBetweenAtoms(i, j)
        if bond is None or bond.GetBondType() != Chem.BondType.DOUBLE:
            continue
        if bond.GetBeginAtomIdx() != i:
            a, b = b, a
        bond.SetStereoAtoms(a, b)
        cis = q.GetStereo() in (Chem.BondStereo.STEREOZ, Chem.BondStereo.STEREOCIS)
        bond.SetStereo(Chem.BondStereo.STEREOCIS if cis else Chem.BondStereo.STEREOTRANS)
    for bond in out.GetBonds():  # directions of single bonds are rebuilt from every double bond's stereo
        if bond.GetBondType() == Chem.BondType.SINGLE:
            bond.SetBondDir(Chem.BondDir.NONE)
    result = out.GetMol()
    Chem.SetDoubleBondNeighborDirections(result)
    Chem.AssignStereochemistry(result, cleanIt=True, force=True)
    return result


# --- fragments to join (linker design, scaffold morphing) -----------------------------------------------


@dataclass(frozen=True)
class Fragments:
    """Fragments, each with one attachment point, that new atoms join into one molecule (the new atoms are a
    linker between two fragments, or the core of a molecule whose side chains the fragments are).

    ``split``: the template with each fragment capped by its own carbon (a dotted molecule; the caps, free positions,
    are the new part's atoms bonded to the fragments); ``bridged``: two fragments bonded to one shared carbon, the
    template of a one-atom linker (None for other counts of fragments). ``queries``: each fragment as a substructure query, its attachment point matching
    any heavy atom and its other atoms keeping their degree. ``name`` says what the fragments are in messages;
    ``scaffold``: scaffold morphing's input's Murcko scaffold: outputs must have one (a ring), and another.
    """

    text: str
    parts: tuple[str, ...]
    split: Core
    bridged: Core | None
    queries: tuple[Chem.Mol, ...]
    name: str = "fragments"
    scaffold: str | None = None

    @property
    def atoms(self) -> int:
        """Heavy atoms of the fragments together (attachment points not counted)."""
        return len(self.split.core_positions)

    @property
    def stereo(self) -> bool:
        """Whether the fragments' stereo is kept (:func:`parse_core`'s ``stereo``, and they have some)."""
        return self.split.stereo

    def retained(self, mol: Chem.Mol) -> bool:
        """One molecule holding every fragment exactly (stereo included when ``stereo``), on atoms of its own, with at
        least one new atom between any two of them (a fragment's attachment point is a new atom, never another
        fragment's)."""
        return len(Chem.GetMolFrags(mol)) == 1 and _disjoint_match(mol, self.queries, self.stereo) is not None

    def impose(self, mol: Chem.Mol) -> Chem.Mol:
        """``mol`` with each fragment's stereo given to the atoms it matches (as :meth:`Core.impose`)."""
        if not self.stereo:
            return mol
        matches = _disjoint_match(mol, self.queries)
        for query, match in zip(self.queries, matches or (), strict=False):
            mol = impose_stereo(mol, query, match)
        return mol

    def missing(self, mol: Chem.Mol) -> str | None:
        """Why ``mol`` is not a design from these fragments (a rejection reason), or None."""
        if len(Chem.GetMolFrags(mol)) > 1:
            return "not one connected molecule"
        if _disjoint_match(mol, self.queries, self.stereo) is None:
            return f"{self.name} {self.text!r} not all retained"
        if self.scaffold is not None:
            scaffold = murcko_scaffold(mol)
            if not scaffold:
                return "no ring scaffold"
            if scaffold == self.scaffold:
                return "same scaffold as the input"
        return None


def _disjoint_match(mol: Chem.Mol, queries: Sequence[Chem.Mol], chirality: bool = False) -> list[tuple[int, ...]] | None:
    """One match per query (a fragment with one attachment point; stereo checked with ``chirality``) such that no
    fragment atom is another fragment's atom or attachment point (several fragments' attachment points may be one
    atom), or None when there is none."""
    options = []
    for query in queries:
        dummy = next(a.GetIdx() for a in query.GetAtoms() if a.GetAtomicNum() == 0)
        matches = mol.GetSubstructMatches(query, uniquify=False, maxMatches=1000, useChirality=chirality)
        options.append(list({(frozenset(m) - {m[dummy]}, m[dummy]): m for m in matches}.items()))

    def place(k: int, taken: frozenset, points: frozenset) -> list[tuple[int, ...]] | None:
        if k == len(options):
            return []
        for (atoms, point), match in options[k]:
            if not atoms & taken and not atoms & points and point not in taken:
                rest = place(k + 1, taken | atoms, points | {point})
                if rest is not None:
                    return [match, *rest]
        return None

    return place(0, frozenset(), frozenset())


def parse_fragments(parts: Sequence[str], name: str = "fragments", scaffold: str | None = None, stereo: bool = False) -> Fragments:
    """Fragments to join, each a SMILES with exactly one attachment point (``[*:1]c1ccccc1``), given one by one or as
    one dotted SMILES (``[*:1]c1ccccc1.[*:2]C1CCNCC1``); :class:`InvalidMoleculeError` naming the fragment and what is
    wrong. ``name`` and ``scaffold``: as :class:`Fragments`'; ``stereo``: as :func:`parse_core`'s."""
    if isinstance(parts, str):
        parts = [parts]
    parts = [piece for part in parts for piece in (part.split(".") if isinstance(part, str) else [part])]
    if not parts:
        raise InvalidMoleculeError(f"{name}: none given")
    singular = name.removesuffix("s")
    for part in parts:
        mol = parse_smiles(part)
        points = sum(a.GetAtomicNum() == 0 for a in mol.GetAtoms())
        if points != 1:
            raise InvalidMoleculeError(
                f"{singular} {part!r}: {points} attachment points; each {singular} needs exactly one ([*:1]), where the new atoms join it"
            )
        parse_core(part, singular, stereo)  # its attachment point on a single bond, no isotopes or explicit hydrogens
    text = ".".join(parts)
    split = parse_core(text, name, stereo)
    if len(parts) != 2:  # one atom joins two fragments; more are joined by at least as many atoms as fragments
        return Fragments(text, tuple(parts), split, None, tuple(_core_query(_perceived(part)) for part in parts), name, scaffold)
    mol = _perceived(text)
    for atom in mol.GetAtoms():
        atom.SetIntProp("core_atom", 0 if atom.GetAtomicNum() == 0 else 1)
    bridged = Chem.RWMol(mol)
    bridge = bridged.AddAtom(Chem.Atom(6))
    bridged.GetAtomWithIdx(bridge).SetIntProp("core_atom", 0)
    dummies = sorted((a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0), reverse=True)
    for index in dummies:
        bridged.AddBond(mol.GetAtomWithIdx(index).GetNeighbors()[0].GetIdx(), bridge, Chem.BondType.SINGLE)
    for index in dummies:
        bridged.RemoveAtom(index)
    bridged = _template_core(text, bridged.GetMol(), split.query, len(parts), f"joining the {name} by one carbon", name, split.stereo)
    return Fragments(text, tuple(parts), split, bridged, tuple(_core_query(_perceived(part)) for part in parts), name, scaffold)


def murcko_scaffold(mol: Chem.Mol) -> str:
    """The Bemis-Murcko scaffold of ``mol`` as canonical SMILES (RDKit's MurckoScaffold: ring systems, the linkers
    between them and atoms double-bonded to either; '' without rings)."""
    return canonical_smiles(MurckoScaffold.GetScaffoldForMol(mol), isomeric=False) if mol.GetRingInfo().NumRings() else ""


def side_chains(smiles: str) -> tuple[str, list[str]]:
    """A molecule's Murcko scaffold and its side chains (everything outside the scaffold, by RDKit's ``ReplaceCore``),
    each a SMILES with its attachment point ``[*:k]``, k counting from 1; :class:`InvalidMoleculeError` naming the
    molecule when it has no ring scaffold or nothing outside it."""
    mol = _perceived(smiles)
    scaffold = murcko_scaffold(mol)
    if not scaffold:
        raise InvalidMoleculeError(f"molecule {smiles!r}: no ring, so no scaffold to morph")
    chains = Chem.ReplaceCore(mol, MurckoScaffold.GetScaffoldForMol(mol))
    if chains is None or chains.GetNumAtoms() == 0:
        raise InvalidMoleculeError(f"molecule {smiles!r}: it is its scaffold {scaffold!r} (no side chains to keep); to change it, use analogs")
    parts = []
    for k, chain in enumerate(Chem.GetMolFrags(chains, asMols=True, sanitizeFrags=False), start=1):
        for atom in chain.GetAtoms():
            if atom.GetAtomicNum() == 0:  # ReplaceCore labels the point by isotope; molgen's cores by map number
                atom.SetIsotope(0)
                atom.SetAtomMapNum(k)
        parts.append(Chem.MolToSmiles(chain))
    return scaffold, parts


# --- penalized logP ------------------------------------------------------------------------------------

# Normalisation of the penalized logP of JT-VAE / GCPN / MoFlow's similarity-constrained optimisation
# (statistics of ZINC250k, as in their code), so figures compare with the published ones.
_PLOGP_STATS = {"logP": (2.4570953396190123, 1.434324401111988), "SA": (-3.0525811293166134, 0.8335207024513095),
                "cycle": (-0.0485696876403053, 0.2860212110245455)}  # fmt: skip


def penalized_logp(mol: Chem.Mol) -> float:
    """Normalised logP - SA - (largest ring size - 6, if above 6), each term standardised on ZINC250k (molgen's
    design objective; for the published benchmark's figures see :func:`logp_minus_sa` and
    :func:`penalized_logp_unnormalized`)."""
    largest = max((len(ring) for ring in mol.GetRingInfo().AtomRings()), default=0)
    terms = {"logP": Crippen.MolLogP(mol), "SA": -sascorer.calculateScore(mol), "cycle": -max(largest - 6, 0)}
    return float(sum((terms[k] - mean) / std for k, (mean, std) in _PLOGP_STATS.items()))


def largest_cycle(mol: Chem.Mol) -> int:
    """Atoms in the largest cycle of a cycle basis of the heavy-atom graph (networkx ``cycle_basis``, as JT-VAE's
    code measures it; 0 without rings). On fused and bridged systems it can exceed the largest SSSR ring."""
    cycles = nx.cycle_basis(nx.Graph(rdmolops.GetAdjacencyMatrix(mol)))
    return max((len(cycle) for cycle in cycles), default=0)


def logp_minus_sa(mol: Chem.Mol) -> float:
    """Crippen logP - SA score (RDKit Contrib sascorer), unnormalised: the score JT-VAE's constrained optimisation
    code computes and the second column of its ``opt.test.logP-SA`` and ``opt.valid.logP-SA`` files."""
    return float(Crippen.MolLogP(mol) - sascorer.calculateScore(mol))


def penalized_logp_unnormalized(mol: Chem.Mol) -> float:
    """Penalized logP, unnormalised: Crippen logP - SA score - max(largest cycle - 6, 0), the cycle measured as in
    :func:`largest_cycle`. Equal to :func:`logp_minus_sa` for molecules without a ring larger than 6 atoms."""
    return logp_minus_sa(mol) - max(largest_cycle(mol) - 6, 0)
