"""SMILES -> per-molecule features for the MOSES metrics, with MOSES' definitions (RDKit only).

One pass per molecule computes everything the metrics need: canonical SMILES, Morgan bits (radius 2, 1024
bits), BRICS fragments, Bemis-Murcko scaffold, logP / SA / QED / weight and the MOSES filter verdict. Workers
send back :class:`MoleculeFeatures` records (strings, bytes, floats), never RDKit ``Mol`` objects.

Two speed-ups keep MOSES' results exact: substructure filters (MOSES MCF + PAINS, QED's structural alerts) are
screened with RDKit pattern fingerprints, which only skip patterns that cannot match; and QED shares the Crippen
logP it computes anyway. ``tests/unit/test_metrics.py`` checks both against the plain RDKit calls.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache
from importlib import resources
from typing import NamedTuple, TypeVar

import numpy as np
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import QED, Crippen, MolSurf, rdFingerprintGenerator, rdMolDescriptors
from rdkit.Chem.Scaffolds import MurckoScaffold

from molgen.chem import PROPERTIES

__all__ = [
    "FINGERPRINT_BITS",
    "PROPERTY_NAMES",
    "MoleculeFeatures",
    "brics_fragments",
    "canonical_many",
    "featurize_many",
    "featurize_smiles",
    "filter_patterns",
    "get_mol",
    "map_chunks",
    "morgan_bits",
    "murcko_scaffold",
    "passes_filters",
    "qed",
    "ring_statistics",
]

log = logging.getLogger(__name__)

FINGERPRINT_RADIUS = 2
FINGERPRINT_BITS = 1024
PROPERTY_NAMES = ("logP", "SA", "QED", "weight")
"""MOSES' names of the properties compared by Wasserstein distance (weight is the average MolWt in g/mol)."""

T = TypeVar("T")
R = TypeVar("R")

_ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
_MIN_SCAFFOLD_RINGS = 2  # MOSES counts only scaffolds with at least two rings in Scaf


class MoleculeFeatures(NamedTuple):
    """Everything the MOSES metrics need from one molecule.

    ``canonical`` is RDKit's canonical SMILES of the molecule the features were computed on (the input of
    FCD, unique@k and novelty); ``fingerprint`` is the packed Morgan bit vector (``np.packbits``, 128 bytes for
    1024 bits); ``scaffold`` is None when the molecule has fewer than two rings in its scaffold;
    ``passes_filters`` is None when filters were not computed.
    """

    canonical: str
    fingerprint: bytes
    fragments: tuple[str, ...]
    scaffold: str | None
    logP: float
    SA: float
    QED: float
    weight: float
    passes_filters: bool | None


# --- parsing ---------------------------------------------------------------------------------------


def get_mol(smiles: object) -> Chem.Mol | None:
    """MOSES' ``get_mol``: the sanitised molecule of a non-empty SMILES string, or None.

    RDKit parses (and sanitises) the string, then it is sanitised once more, as MOSES does. Anything that is not
    a string, an empty string, a string RDKit rejects, and (unlike MOSES, which would crash later) a molecule
    without atoms give None. Never raises.
    """
    if not isinstance(smiles, str) or not smiles:
        return None
    try:
        mol = Chem.MolFromSmiles(smiles)
        if mol is None or mol.GetNumAtoms() == 0:
            return None
        Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises several unrelated types on odd input
        return None
    return mol


# --- fingerprints ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _morgan_generator() -> rdFingerprintGenerator.FingerprintGenerator64:
    # Same bits as MOSES' GetMorganFingerprintAsBitVect(mol, 2, nBits=1024); checked in the tests.
    return rdFingerprintGenerator.GetMorganGenerator(radius=FINGERPRINT_RADIUS, fpSize=FINGERPRINT_BITS)


def morgan_bits(mol: Chem.Mol) -> np.ndarray:
    """Morgan fingerprint (radius 2, 1024 bits) of ``mol`` as a (1024,) uint8 array of 0/1."""
    return _morgan_generator().GetFingerprintAsNumPy(mol).astype(np.uint8, copy=False)


# --- substructure filters --------------------------------------------------------------------------


class _Pattern(NamedTuple):
    query: Chem.Mol
    screen: DataStructs.ExplicitBitVect  # pattern fingerprint: a molecule lacking any of these bits cannot match


def _screened(patterns: Sequence[Chem.Mol]) -> tuple[_Pattern, ...]:
    return tuple(_Pattern(p, Chem.PatternFingerprint(p)) for p in patterns)


def _any_match(mol: Chem.Mol, patterns: Sequence[_Pattern]) -> bool:
    screen = Chem.PatternFingerprint(mol)
    return any(DataStructs.AllProbeBitsMatch(p.screen, screen) and mol.HasSubstructMatch(p.query) for p in patterns)


def _count_matching(mol: Chem.Mol, patterns: Sequence[_Pattern]) -> int:
    screen = Chem.PatternFingerprint(mol)
    return sum(1 for p in patterns if DataStructs.AllProbeBitsMatch(p.screen, screen) and mol.HasSubstructMatch(p.query))


def _read_smarts(name: str, smarts_column: int, header: bool) -> list[tuple[str, str]]:
    """(name, SMARTS) rows of a filter table shipped in ``molgen/data``."""
    text = (resources.files("molgen") / "data" / name).read_text()
    rows = list(csv.reader(text.splitlines()))
    if header:
        rows = rows[1:]
    return [(row[1 - smarts_column].strip(), row[smarts_column].strip()) for row in rows if row]


@lru_cache(maxsize=1)
def filter_patterns() -> tuple[tuple[str, Chem.Mol], ...]:
    """MOSES' filters: the 22 MCF and 480 PAINS SMARTS of ``molgen/data``, as (name, query) pairs."""
    rows = _read_smarts("mcf.csv", smarts_column=1, header=True)
    rows += _read_smarts("wehi_pains.csv", smarts_column=0, header=False)
    patterns = []
    for name, smarts in rows:
        query = Chem.MolFromSmarts(smarts)
        if query is None:
            raise ValueError(f"molgen/data filter {name!r}: RDKit cannot parse SMARTS {smarts!r}")
        patterns.append((name, query))
    return tuple(patterns)


@lru_cache(maxsize=1)
def _screened_filters() -> tuple[_Pattern, ...]:
    return _screened([query for _, query in filter_patterns()])


def passes_filters(mol: Chem.Mol) -> bool:
    """MOSES' ``mol_passes_filters``: True when ``mol`` is a clean, drug-like-looking molecule.

    It fails on a ring of 8 or more atoms, a charged atom, an atom other than C N S O F Cl Br H, a match of any
    MCF or PAINS SMARTS (matched on the molecule with explicit hydrogens), or a non-isomeric SMILES that does
    not parse back.
    """
    if any(len(ring) >= 8 for ring in mol.GetRingInfo().AtomRings()):
        return False
    if any(atom.GetFormalCharge() != 0 for atom in mol.GetAtoms()):
        return False
    if any(atom.GetSymbol() not in _ALLOWED_ATOMS for atom in mol.GetAtoms()):
        return False
    if _any_match(Chem.AddHs(mol), _screened_filters()):
        return False
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(smiles) and Chem.MolFromSmiles(smiles) is not None


# --- fragments, scaffolds, properties --------------------------------------------------------------


def brics_fragments(mol: Chem.Mol) -> tuple[str, ...]:
    """MOSES' ``fragmenter``: SMILES of the pieces left by cutting ``mol`` at its BRICS bonds (with dummy atoms)."""
    return tuple(Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split("."))


def murcko_scaffold(mol: Chem.Mol) -> str | None:
    """MOSES' ``compute_scaffold``: canonical SMILES of the Bemis-Murcko scaffold, None if under two rings."""
    try:
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    smiles = Chem.MolToSmiles(scaffold)
    if not smiles or scaffold.GetRingInfo().NumRings() < _MIN_SCAFFOLD_RINGS:
        return None
    return smiles


_QED_PARTS = ("QEDproperties", "Acceptors", "AliphaticRings", "StructuralAlerts")
_FAST_QED = all(hasattr(QED, name) for name in _QED_PARTS)


@lru_cache(maxsize=1)
def _screened_qed_alerts() -> tuple[_Pattern, ...]:
    return _screened(QED.StructuralAlerts)


def _qed_and_logp(mol: Chem.Mol) -> tuple[float, float]:
    """(QED, Crippen logP) of ``mol``: RDKit's ``QED.qed`` and ``Crippen.MolLogP``, sharing work.

    QED's properties are RDKit's ``QED.properties`` with the structural alerts screened by pattern
    fingerprints; QED's ALOGP is the logP of the molecule without explicit hydrogens, which is MOSES' logP
    whenever the molecule has no hydrogen atoms in its graph.
    """
    if not _FAST_QED:  # an RDKit whose QED module changed shape: use it as it is
        return float(QED.qed(mol)), float(PROPERTIES["logP"](mol))
    has_h = any(atom.GetAtomicNum() == 1 for atom in mol.GetAtoms())
    m = Chem.RemoveHs(mol) if has_h else mol
    alogp = Crippen.MolLogP(m)
    properties = QED.QEDproperties(
        MW=rdMolDescriptors._CalcMolWt(m),
        ALOGP=alogp,
        HBA=sum(len(m.GetSubstructMatches(p)) for p in QED.Acceptors if m.HasSubstructMatch(p)),
        HBD=rdMolDescriptors.CalcNumHBD(m),
        PSA=MolSurf.TPSA(m),
        ROTB=rdMolDescriptors.CalcNumRotatableBonds(m, rdMolDescriptors.NumRotatableBondsOptions.Strict),
        AROM=len(Chem.GetSSSR(Chem.DeleteSubstructs(Chem.Mol(m), QED.AliphaticRings))),
        ALERTS=_count_matching(m, _screened_qed_alerts()),
    )
    logp = Crippen.MolLogP(mol) if has_h else alogp
    return float(QED.qed(m, qedProperties=properties)), float(logp)


def qed(mol: Chem.Mol) -> float:
    """RDKit's QED of ``mol`` (same value as ``rdkit.Chem.QED.qed``, faster)."""
    return _qed_and_logp(mol)[0]


# --- one molecule, many molecules ------------------------------------------------------------------


def _features(mol: Chem.Mol, canonical: str, filters: bool) -> MoleculeFeatures:
    qed_value, logp = _qed_and_logp(mol)
    return MoleculeFeatures(
        canonical=canonical,
        fingerprint=np.packbits(morgan_bits(mol)).tobytes(),
        fragments=brics_fragments(mol),
        scaffold=murcko_scaffold(mol),
        logP=logp,
        SA=float(PROPERTIES["SA"](mol)),
        QED=qed_value,
        weight=float(PROPERTIES["MW"](mol)),
        passes_filters=passes_filters(mol) if filters else None,
    )


def featurize_smiles(smiles: object, generated: bool, filters: bool) -> tuple[bool, MoleculeFeatures | None]:
    """(valid, features) of one SMILES string, following MOSES.

    For a generated molecule (``generated=True``) MOSES first replaces the SMILES by its canonical form and
    computes every metric on the molecule parsed back from it; a reference molecule is used as parsed. ``valid``
    is MOSES' validity (``get_mol`` succeeds); features are None when invalid, and also in the rare case of a
    canonical SMILES that does not parse back (MOSES would crash there). Never raises on bad input.
    """
    mol = get_mol(smiles)
    if mol is None:
        return False, None
    try:
        if generated:
            mol = get_mol(Chem.MolToSmiles(mol))
            if mol is None:
                log.warning("canonical SMILES of %r does not parse back; left out of the metrics", smiles)
                return True, None
        return True, _features(mol, Chem.MolToSmiles(mol), filters)
    except Exception as exc:  # a molecule RDKit parses but cannot describe must not stop an evaluation
        log.warning("cannot compute features of %r (%s: %s); counted as invalid", smiles, type(exc).__name__, exc)
        return False, None


def _featurize_chunk(args: tuple[list[object], bool, bool]) -> list[tuple[bool, MoleculeFeatures | None]]:
    chunk, generated, filters = args
    with rdBase.BlockLogs():
        return [featurize_smiles(s, generated, filters) for s in chunk]


def _canonical_chunk(chunk: list[object]) -> list[str | None]:
    with rdBase.BlockLogs():
        return [None if (mol := get_mol(s)) is None else Chem.MolToSmiles(mol) for s in chunk]


def map_chunks(
    fn: Callable[[T], list[R]], tasks: Iterable[T], n_tasks: int, n_jobs: int = 1, what: str = "molecules"
) -> Iterator[list[R]]:
    """``fn`` of each task (a chunk of molecules), in order, on ``n_jobs`` processes (1: this process).

    Logs progress about ten times. ``fn`` must be a module-level function (it is sent to worker processes).
    """
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    start, report_every = time.time(), max(1, n_tasks // 10)
    pool = None
    if n_jobs > 1 and n_tasks > 1:
        pool = mp.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(min(n_jobs, n_tasks))
    try:
        results = pool.imap(fn, tasks) if pool is not None else map(fn, tasks)
        for i, result in enumerate(results, 1):
            if i % report_every == 0 or i == n_tasks:
                log.info("%s: %d/%d chunks (%.0f s)", what, i, n_tasks, time.time() - start)
            yield result
    finally:
        if pool is not None:
            pool.terminate()


def _chunks(items: Sequence[object], size: int) -> Iterator[list[object]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def featurize_many(
    smiles: Sequence[object],
    generated: bool,
    filters: bool,
    n_jobs: int = 1,
    chunk_size: int = 500,
    what: str = "molecules",
) -> list[tuple[bool, MoleculeFeatures | None]]:
    """:func:`featurize_smiles` of every entry, in order, on ``n_jobs`` processes (1: this process)."""
    tasks = ((chunk, generated, filters) for chunk in _chunks(smiles, chunk_size))
    n_tasks = -(-len(smiles) // chunk_size)
    results: list[tuple[bool, MoleculeFeatures | None]] = []
    for chunk_result in map_chunks(_featurize_chunk, tasks, n_tasks, n_jobs, f"features of {what}"):
        results.extend(chunk_result)
    return results


def canonical_many(
    smiles: Sequence[object], n_jobs: int = 1, chunk_size: int = 5000, what: str = "molecules"
) -> list[str | None]:
    """RDKit canonical SMILES of each entry (MOSES' ``canonic_smiles``; None when invalid), in order."""
    n_tasks = -(-len(smiles) // chunk_size)
    results: list[str | None] = []
    tasks = _chunks(smiles, chunk_size)
    for chunk_result in map_chunks(_canonical_chunk, tasks, n_tasks, n_jobs, f"canonical SMILES of {what}"):
        results.extend(chunk_result)
    return results


def ring_statistics(smiles: Iterable[str | None]) -> dict[str, float]:
    """Ring figures of a set of molecules (invalid or missing SMILES are skipped): rings and aromatic rings
    per molecule, the share of molecules without an aromatic ring, and the share of rings (SSSR) of unusual
    size (3, 4, or 7 and more atoms: about 1% in MOSES). Where a generator's samples differ most from drug-like
    molecules, these show it."""
    mols = [mol for mol in map(get_mol, smiles) if mol is not None]
    if not mols:
        return {"molecules": 0, "rings": float("nan"), "aromatic rings": float("nan"), "no aromatic ring": float("nan"), "unusual ring sizes": float("nan")}
    rings = [mol.GetRingInfo().AtomRings() for mol in mols]
    aromatic = np.array([rdMolDescriptors.CalcNumAromaticRings(mol) for mol in mols])
    sizes = np.array([len(ring) for found in rings for ring in found])
    return {
        "molecules": len(mols),
        "rings": float(np.mean([len(found) for found in rings])),
        "aromatic rings": float(aromatic.mean()),
        "no aromatic ring": float((aromatic == 0).mean()),
        "unusual ring sizes": float(((sizes < 5) | (sizes > 6)).mean()) if len(sizes) else 0.0,
    }
