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

from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import Crippen, rdFingerprintGenerator, rdmolops
from rdkit.Contrib.SA_Score import sascorer

from molgen.chem import MAX_SMILES_LENGTH, InvalidMoleculeError, canonical_smiles, parse_smiles

__all__ = [
    "Core",
    "Pattern",
    "count_fingerprint",
    "fingerprint",
    "largest_cycle",
    "logp_minus_sa",
    "morgan_count_similarity",
    "parse_core",
    "parse_pattern",
    "penalized_logp",
    "penalized_logp_unnormalized",
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

    def retained(self, mol: Chem.Mol) -> bool:
        return mol.HasSubstructMatch(self.query)


def parse_core(core: str) -> Core:
    """A core SMILES with attachment points ``[*:1]``, ``[*:2]`` ... (REINVENT's convention) or a plain core.

    Raises :class:`InvalidMoleculeError` naming the core when it does not parse, has only attachment points,
    has an attachment point that is not bonded to exactly one core atom by a single bond, or (plain core) has
    no hydrogen left to replace.
    """
    mol = parse_smiles(core)
    for atom in mol.GetAtoms():
        if atom.GetIsotope() and atom.GetAtomicNum() != 0:
            raise InvalidMoleculeError(f"core {core!r}: atom {atom.GetIdx()} ({atom.GetSymbol()}) has isotope label {atom.GetIsotope()}, which is not supported")
        if atom.GetAtomicNum() == 1:
            raise InvalidMoleculeError(f"core {core!r}: atom {atom.GetIdx()} is an explicit hydrogen; write the core without it (hydrogens are implied)")
    dummies = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if len(dummies) == mol.GetNumAtoms():
        raise InvalidMoleculeError(f"core {core!r}: only attachment points, no core atoms")
    for atom in dummies:
        bonds = atom.GetBonds()
        if len(bonds) != 1 or bonds[0].GetBondType() != Chem.BondType.SINGLE or bonds[0].GetOtherAtom(atom).GetAtomicNum() == 0:
            raise InvalidMoleculeError(
                f"core {core!r}: attachment point {atom.GetIdx()} must be bonded to one core atom by a single bond"
            )
    if not dummies and all(a.GetTotalNumHs() == 0 for a in mol.GetAtoms()):
        raise InvalidMoleculeError(f"core {core!r}: no free valence (no hydrogen to replace), so nothing can be attached")
    for atom in mol.GetAtoms():  # mark core atoms so they can be found in the template's canonical order
        atom.SetIntProp("core_atom", 0 if atom.GetAtomicNum() == 0 else 1)
    capped = Chem.RWMol(mol)
    for atom in dummies:
        a = capped.GetAtomWithIdx(atom.GetIdx())
        a.SetAtomicNum(6)
        a.SetAtomMapNum(0)
        a.SetNoImplicit(False)
        a.SetIsotope(0)
    capped = capped.GetMol()
    with rdBase.CaptureErrorLog():
        try:
            Chem.SanitizeMol(capped)
        except Exception as exc:  # noqa: BLE001 - RDKit raises several types
            raise InvalidMoleculeError(f"core {core!r}: capping the attachment points gives no valid molecule ({exc})") from None
    template = canonical_smiles(capped, isomeric=False)
    order = list(capped.GetPropsAsDict(includePrivate=True, includeComputed=True)["_smilesAtomOutputOrder"])
    is_core = [capped.GetAtomWithIdx(i).GetIntProp("core_atom") == 1 for i in order]  # in canonical order
    return Core(
        text=core,
        template=template,
        core_positions=tuple(k for k, c in enumerate(is_core) if c),
        free_positions=tuple(k for k, c in enumerate(is_core) if not c),
        query=_core_query(mol),
        attachment_points=len(dummies),
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
