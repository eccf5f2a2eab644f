"""Chemistry layer: the only module (with ``domains.molecule``) that imports RDKit.

SMILES in, RDKit ``Mol`` out, with errors that name the input and the reason; canonical SMILES;
optional standardisation (ChEMBL's structure pipeline or RDKit's MolStandardize, each step reported);
per-molecule properties; structural alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal

from rdkit import Chem, rdBase
from rdkit.Chem import QED, Crippen, Descriptors, FilterCatalog, Lipinski, rdMolDescriptors
from rdkit.Chem.MolStandardize import rdMolStandardize
from rdkit.Contrib.SA_Score import sascorer

__all__ = [
    "ALERT_CATALOGS",
    "PROPERTIES",
    "Alert",
    "InvalidMoleculeError",
    "StandardizeOptions",
    "StandardizeResult",
    "canonical_smiles",
    "canonicalize",
    "compute_properties",
    "parse_smiles",
    "standardize",
    "standardize_report",
    "standardize_smiles",
    "structural_alerts",
]

log = logging.getLogger(__name__)


class InvalidMoleculeError(ValueError):
    """A SMILES string or molecule that cannot be used; the message names the input and the reason."""


MAX_SMILES_LENGTH = 1000
"""Longest SMILES read, in characters (drug-like molecules take under 200): longer input is refused before parsing."""
MAX_ATOMS = 500
"""Most atoms a parsed SMILES may have: refused before sanitisation, the step that grows with the molecule's size."""


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text):,} characters)"


STANDARDIZERS = ("chembl", "rdkit")
"""Libraries that standardise: ChEMBL's structure pipeline (``chembl_structure_pipeline``, its salt and solvent
lists and rules) or RDKit's MolStandardize."""


@dataclass(frozen=True)
class StandardizeOptions:
    """Optional clean-up applied after parsing. Every step is off by default: molgen never alters input silently,
    and :func:`standardize_report` says what each step changed.

    ``largest_fragment``: drop salts and solvents, keep the parent (with ``"chembl"``, ChEMBL's salt and solvent
    lists first, then the largest organic fragment of what is left; with ``"rdkit"``, the largest organic
    fragment). ``neutralize``: neutralise charges where a neutral form exists (off: charges are kept as given).
    ``normalize``: functional-group normalisation (e.g. a charge-separated nitro group written as ``N(=O)=O`` is
    rewritten to ``[N+](=O)[O-]``). Stereo marks are kept by every step. ``standardizer``: which library does it;
    configs saved before this option existed are read as ``"rdkit"`` (what they used).
    """

    largest_fragment: bool = False
    neutralize: bool = False
    normalize: bool = False
    standardizer: Literal["chembl", "rdkit"] = "chembl"

    def __post_init__(self) -> None:
        if self.standardizer not in STANDARDIZERS:
            raise ValueError(f"standardizer={self.standardizer!r}: choose one of {STANDARDIZERS}")

    @property
    def active(self) -> bool:
        """Whether any step is on."""
        return self.largest_fragment or self.neutralize or self.normalize

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StandardizeOptions:
        """Options from :meth:`to_dict` (a dict without ``standardizer`` was written with RDKit's)."""
        return cls(**{"standardizer": "rdkit", **data})


@dataclass(frozen=True)
class StandardizeResult:
    """A standardised molecule and what was changed, one sentence per step that changed something (empty: none).

    ``smiles``: canonical isomeric SMILES of the result; ``input_smiles``: that of the molecule before.
    """

    mol: Chem.Mol
    smiles: str
    input_smiles: str
    changes: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _reason_from_log(log: str) -> str:
    """The first informative line of RDKit's error log (it prefixes a timestamp and adds caret lines)."""
    for line in log.splitlines():
        if "]" in line[:12]:
            line = line.split("]", 1)[1]
        line = line.strip()
        if line and not set(line) <= set("^~ "):
            return line
    return "not a valid SMILES string"


def parse_smiles(smiles: str, standardize_with: StandardizeOptions | None = None) -> Chem.Mol:
    """Parse and sanitise ``smiles``; raise :class:`InvalidMoleculeError` naming it and the reason.

    Explicit hydrogen atoms are folded into their heavy atoms.
    """
    if not isinstance(smiles, str):
        raise InvalidMoleculeError(f"invalid SMILES {_shown(repr(smiles))}: expected a string, got {type(smiles).__name__}")
    if len(smiles) > MAX_SMILES_LENGTH:
        raise InvalidMoleculeError(f"SMILES {_shown(smiles)}: longer than the {MAX_SMILES_LENGTH:,} characters molgen reads")
    text = smiles.strip()
    if not text:
        raise InvalidMoleculeError("invalid SMILES '': empty string")
    if not text.isascii():  # SMILES is ASCII; RDKit's error log cannot even be decoded for some other text
        where, char = next((k, c) for k, c in enumerate(text) if not c.isascii())
        raise InvalidMoleculeError(f"invalid SMILES {_shown(smiles)}: character {char!r} at position {where} is not part of SMILES")
    if len(text.split()) > 1:  # RDKit would read the rest as a name and drop it
        raise InvalidMoleculeError(f"SMILES {_shown(smiles)}: text after the SMILES ({_shown(text.split(None, 1)[1])}): give one molecule, without spaces")
    with rdBase.CaptureErrorLog() as log:
        mol = Chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        raise InvalidMoleculeError(f"invalid SMILES {_shown(smiles)}: {_reason_from_log(log.messages)}")
    if mol.GetNumAtoms() == 0:
        raise InvalidMoleculeError(f"invalid SMILES {smiles!r}: no atoms")
    if mol.GetNumAtoms() > MAX_ATOMS:
        raise InvalidMoleculeError(f"SMILES {_shown(smiles)}: {mol.GetNumAtoms():,} atoms, more than the {MAX_ATOMS} molgen reads")
    with rdBase.CaptureErrorLog():
        problems = Chem.DetectChemistryProblems(mol)
    if problems:
        raise InvalidMoleculeError(f"invalid SMILES {smiles!r}: {problems[0].Message()}")
    with rdBase.CaptureErrorLog() as log:
        try:
            Chem.SanitizeMol(mol)
            mol = Chem.RemoveHs(mol)
        except Exception as exc:  # RDKit raises several unrelated types here
            raise InvalidMoleculeError(f"invalid SMILES {smiles!r}: {exc or _reason_from_log(log.messages)}") from None
    if standardize_with is not None:
        mol = standardize(mol, standardize_with)
    return mol


def standardize(mol: Chem.Mol, options: StandardizeOptions) -> Chem.Mol:
    """Apply the chosen standardisation steps; what they changed is logged (see :func:`standardize_report`)."""
    result = standardize_report(mol, options)
    for change in result.changes:
        log.info("standardisation of %s: %s", result.input_smiles, change)
    return result.mol


def standardize_smiles(smiles: str, options: StandardizeOptions) -> StandardizeResult:
    """Parse ``smiles`` and standardise it; :class:`InvalidMoleculeError` naming it if it does not parse."""
    return standardize_report(parse_smiles(smiles), options)


def standardize_report(mol: Chem.Mol, options: StandardizeOptions) -> StandardizeResult:
    """The chosen steps, in the order fragments, normalisation, charges, and one sentence per step that changed
    the molecule (its SMILES before and after). A step that would lose a stereo mark is reported as such."""
    start = Chem.MolToSmiles(mol)
    changes = []
    steps: list[tuple[bool, str, Callable[[Chem.Mol], Chem.Mol]]] = [
        (options.largest_fragment, "kept the parent fragment", _parent_fragment[options.standardizer]),
        (options.normalize, "normalised functional groups", _normalizer[options.standardizer]),
        (options.neutralize, "neutralised charges", _uncharger[options.standardizer]),
    ]
    for on, what, step in steps:
        if not on:
            continue
        before = Chem.MolToSmiles(mol)
        mol = _sanitized_copy(step(Chem.Mol(mol)))
        after = Chem.MolToSmiles(mol)
        if after != before:
            change = f"{what} ({options.standardizer}): {before} -> {after}"
            lost = _stereo_count(before) - _stereo_count(after)
            if lost > 0:
                change += f" ({lost} stereo mark(s) lost)"
            changes.append(change)
    return StandardizeResult(mol=mol, smiles=Chem.MolToSmiles(mol), input_smiles=start, changes=tuple(changes))


def _stereo_count(smiles: str) -> int:
    """Stereo marks in a canonical SMILES (each tetrahedral centre one, each double bond's pair of slashes one)."""
    return smiles.count("@") - smiles.count("@@") + (smiles.count("/") + smiles.count("\\")) // 2


def _sanitized_copy(mol: Chem.Mol) -> Chem.Mol:
    mol = Chem.Mol(mol)
    mol.UpdatePropertyCache(strict=False)
    Chem.SanitizeMol(mol)
    return mol


def _chembl_parent(mol: Chem.Mol) -> Chem.Mol:
    """ChEMBL's salt and solvent stripping; if several fragments are left, the largest organic one."""
    from chembl_structure_pipeline import standardizer

    parent, _ = standardizer.get_fragment_parent_mol(mol, check_exclusion=False, neutralize=False)
    parent = _sanitized_copy(parent)
    if len(Chem.GetMolFrags(parent)) > 1:
        parent = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(parent)
    return parent


def _chembl_normalize(mol: Chem.Mol) -> Chem.Mol:
    from chembl_structure_pipeline import standardizer

    return standardizer.normalize_mol(mol)


def _chembl_uncharge(mol: Chem.Mol) -> Chem.Mol:
    from chembl_structure_pipeline import standardizer

    return standardizer.uncharge_mol(mol)


_parent_fragment: dict[str, Callable[[Chem.Mol], Chem.Mol]] = {
    "chembl": _chembl_parent,
    "rdkit": lambda mol: rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol),
}
_normalizer: dict[str, Callable[[Chem.Mol], Chem.Mol]] = {
    "chembl": _chembl_normalize,
    "rdkit": lambda mol: rdMolStandardize.Normalize(mol),
}
_uncharger: dict[str, Callable[[Chem.Mol], Chem.Mol]] = {
    "chembl": _chembl_uncharge,
    "rdkit": lambda mol: rdMolStandardize.Uncharger().uncharge(mol),
}


def permutation_is_odd(items: Sequence[int]) -> bool:
    """Whether sorting the distinct ``items`` is an odd permutation (an odd number of inverted pairs): how a chiral
    tag, relative to one order of an atom's neighbours, turns when they are listed in another."""
    return sum(a > b for k, a in enumerate(items) for b in items[k + 1 :]) % 2 == 1


def canonical_smiles(mol: Chem.Mol, isomeric: bool = True) -> str:
    """RDKit canonical SMILES of ``mol``."""
    return Chem.MolToSmiles(mol, isomericSmiles=isomeric)


def canonicalize(smiles: str, isomeric: bool = True) -> str:
    """Canonical SMILES of a SMILES string; raises :class:`InvalidMoleculeError` if it does not parse."""
    return canonical_smiles(parse_smiles(smiles), isomeric=isomeric)


# --- properties -----------------------------------------------------------------------------------

PROPERTIES: dict[str, Callable[[Chem.Mol], float]] = {
    "QED": QED.qed,
    "logP": Crippen.MolLogP,
    "MW": Descriptors.MolWt,
    "TPSA": rdMolDescriptors.CalcTPSA,
    "HBD": Lipinski.NumHDonors,
    "HBA": Lipinski.NumHAcceptors,
    "rotatable_bonds": rdMolDescriptors.CalcNumRotatableBonds,
    "rings": rdMolDescriptors.CalcNumRings,
    "aromatic_rings": rdMolDescriptors.CalcNumAromaticRings,
    "unusual_rings": lambda mol: sum(len(ring) not in (5, 6) for ring in mol.GetRingInfo().AtomRings()),
    "SA": sascorer.calculateScore,
}
"""Property name -> function of a sanitised Mol. Units: MW in g/mol (average), TPSA in Å², SA from 1 (easy) to 10;
``rings``, ``aromatic_rings``: SSSR rings; ``unusual_rings``: SSSR rings of 3, 4, or 7 and more atoms (about 1% of MOSES'
rings)."""


def compute_properties(mol: Chem.Mol, names: list[str] | None = None) -> dict[str, float]:
    """The named properties (all of :data:`PROPERTIES` by default) of ``mol``."""
    names = list(PROPERTIES) if names is None else names
    unknown = [n for n in names if n not in PROPERTIES]
    if unknown:
        raise KeyError(f"unknown properties {unknown}; known: {sorted(PROPERTIES)}")
    return {name: float(PROPERTIES[name](mol)) for name in names}


# --- structural alerts ----------------------------------------------------------------------------

_CATALOGS = FilterCatalog.FilterCatalogParams.FilterCatalogs
ALERT_CATALOGS: dict[str, object] = {
    "PAINS_A": _CATALOGS.PAINS_A,
    "PAINS_B": _CATALOGS.PAINS_B,
    "PAINS_C": _CATALOGS.PAINS_C,
    "BRENK": _CATALOGS.BRENK,
    "NIH": _CATALOGS.NIH,
}


@dataclass(frozen=True)
class Alert:
    """One structural alert that matched: which catalogue and which rule."""

    catalog: str
    description: str


@lru_cache(maxsize=8)
def _filter_catalog(names: tuple[str, ...]) -> FilterCatalog.FilterCatalog:
    params = FilterCatalog.FilterCatalogParams()
    for name in names:
        params.AddCatalog(ALERT_CATALOGS[name])
    return FilterCatalog.FilterCatalog(params)


def structural_alerts(mol: Chem.Mol, catalogs: tuple[str, ...] = tuple(ALERT_CATALOGS)) -> list[Alert]:
    """All alerts of the chosen RDKit FilterCatalog catalogues that match ``mol``."""
    unknown = [c for c in catalogs if c not in ALERT_CATALOGS]
    if unknown:
        raise KeyError(f"unknown alert catalogues {unknown}; known: {sorted(ALERT_CATALOGS)}")
    alerts = []
    for entry in _filter_catalog(tuple(catalogs)).GetMatches(mol):
        alerts.append(Alert(catalog=entry.GetProp("FilterSet"), description=entry.GetDescription()))
    return alerts
