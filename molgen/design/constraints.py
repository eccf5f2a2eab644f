"""Constraints and filters on designed molecules, checked on every output and reported per molecule.

A :class:`Screen` turns decoded molecules into :class:`~molgen.design.results.DesignResult` s: it computes
properties, structural alerts and similarity, checks must-contain / must-avoid SMARTS, core retention and the
user's :class:`Filters`, and marks repeats within one call as duplicates. Nothing is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from molgen.chem import InvalidMoleculeError, canonical_smiles, parse_smiles, structural_alerts
from molgen.design.chemistry import Core, Fragments, Pattern, fingerprint, parse_pattern, tanimoto
from molgen.design.results import DesignInputError, DesignResult
from molgen.design.targets import LIMITS

__all__ = ["Filters", "Screen", "compile_patterns"]

log = logging.getLogger(__name__)


@dataclass
class Filters:
    """Filters on outputs; a molecule failing one is ``rejected`` with the reason.

    ``alerts``: reject molecules matching any RDKit FilterCatalog alert (PAINS A/B/C, Brenk, NIH);
    ``sa_max``: SA score ceiling (1 easy - 10 hard); ``windows``: {property: (low, high)} hard windows;
    ``novelty``: reject molecules in the training set: True means MOSES train (data/moses/train.csv.gz;
    hashed once and cached), or give the training SMILES themselves (a list) or a
    :class:`molgen.metrics.NoveltyReference`; ``min_similarity``: reject molecules less similar (Morgan
    Tanimoto) than this to the call's seed / reference (analogs, constrained optimisation).
    """

    alerts: bool = False
    sa_max: float | None = None
    windows: dict[str, tuple[float, float]] | None = None
    novelty: bool | Sequence[str] | object = False
    min_similarity: float | None = None

    def check(self, names: Sequence[str]) -> None:
        """Raise :class:`DesignInputError` naming a window or ceiling that cannot be used."""
        if self.sa_max is not None:
            lo, hi = LIMITS["SA"]
            if not isinstance(self.sa_max, (int, float)) or not lo <= float(self.sa_max) <= hi:
                raise DesignInputError(f"filter sa_max={self.sa_max!r}: SA scores lie in [{lo:g}, {hi:g}]")
        if self.min_similarity is not None and not (isinstance(self.min_similarity, (int, float)) and 0 <= self.min_similarity <= 1):
            raise DesignInputError(f"filter min_similarity={self.min_similarity!r}: Tanimoto similarity lies in [0, 1]")
        for name, window in (self.windows or {}).items():
            if name not in names:
                raise DesignInputError(f"filter window {name!r}: known properties are {list(names)}")
            try:
                low, high = (float(v) for v in window)
            except (TypeError, ValueError):
                raise DesignInputError(f"filter window {name}={window!r}: expected a (low, high) pair of numbers") from None
            if not low <= high:
                raise DesignInputError(f"filter window {name} [{low:g}, {high:g}] is empty (low > high)")


def compile_patterns(patterns: Iterable[str] | str, what: str) -> list[Pattern]:
    """SMARTS strings -> patterns; :class:`DesignInputError` naming the bad one (``what``: must_contain ...)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    compiled = []
    for text in patterns:
        try:
            compiled.append(parse_pattern(text, what=f"{what} SMARTS"))
        except InvalidMoleculeError as exc:
            raise DesignInputError(str(exc)) from None
    return compiled


@lru_cache(maxsize=1)
def _moses_train_novelty():
    from molgen.metrics import NoveltyReference, read_smiles_csv
    from molgen.metrics.reference import MOSES_DATA

    log.info("loading the MOSES train set for novelty (hashed once, then cached)")
    return NoveltyReference.cached(read_smiles_csv(MOSES_DATA / "train.csv.gz"), "moses_train_novelty")


def _novelty_reference(novelty):
    if novelty is True:
        return _moses_train_novelty()
    if not novelty:
        return None
    if hasattr(novelty, "contains"):
        return novelty
    from molgen.metrics import NoveltyReference

    return NoveltyReference.from_smiles(list(novelty))


class Screen:
    """Checks every decoded molecule of one design call; keeps the set of molecules seen for duplicates.

    Args:
        domain: the pipeline's domain (for properties).
        must_contain / must_avoid: SMARTS patterns.
        filters: optional :class:`Filters`.
        core: optional core (or fragments to join) that every output must keep (``rejected`` otherwise, with the
            core's ``missing`` reason).
        reference: optional SMILES whose Morgan similarity is reported on every output.
    """

    def __init__(
        self,
        domain,
        must_contain: Iterable[str] | str = (),
        must_avoid: Iterable[str] | str = (),
        filters: Filters | None = None,
        core: Core | Fragments | None = None,
        reference: str | None = None,
    ) -> None:
        self.domain = domain
        self.must_contain = compile_patterns(must_contain, "must_contain")
        self.must_avoid = compile_patterns(must_avoid, "must_avoid")
        self.filters = filters or Filters()
        if not isinstance(self.filters, Filters):
            raise DesignInputError(f"filters={filters!r}: expected a molgen.design.Filters")
        self.filters.check(list(domain.property_names))
        self.novelty = _novelty_reference(self.filters.novelty)
        self.core = core
        if self.filters.min_similarity is not None and reference is None:
            raise DesignInputError("filter min_similarity needs a molecule to compare with (a seed or reference SMILES)")
        try:
            self.reference_fp = None if reference is None else fingerprint(parse_smiles(reference))
        except InvalidMoleculeError as exc:
            raise DesignInputError(f"reference: {exc}") from None
        self.seen: set[str] = set()
        self._measured: dict[str, tuple[dict[str, float], list[str], float | None]] = {}

    @property
    def constrains(self) -> bool:
        """Whether any constraint or filter can reject a valid molecule (else every valid molecule passes)."""
        f = self.filters
        return bool(
            self.core is not None or self.must_contain or self.must_avoid or f.alerts or f.sa_max is not None or f.windows
            or f.min_similarity is not None or self.novelty is not None
        )  # fmt: skip

    def __call__(self, smiles: str | None, error: str | None = None) -> DesignResult:
        """The result for one decoded molecule (``smiles`` None: invalid, with ``error``)."""
        if smiles is None:
            return DesignResult(None, "invalid", error or "not a valid molecule")
        try:
            mol = parse_smiles(smiles)
        except InvalidMoleculeError as exc:
            return DesignResult(None, "invalid", str(exc))
        if self.core is not None and self.core.stereo:  # the given stereo back on the kept atoms
            mol = self.core.impose(mol)
            smiles = canonical_smiles(mol)
        if smiles not in self._measured:  # repeats (common in optimisation) are measured once
            alerts = [f"{a.catalog}: {a.description}" for a in structural_alerts(mol)]
            similarity = None if self.reference_fp is None else tanimoto(self.reference_fp, fingerprint(mol))
            self._measured[smiles] = (self.domain.properties(smiles), alerts, similarity)
        properties, alerts, similarity = self._measured[smiles]
        result = DesignResult(smiles, "valid", properties=dict(properties), alerts=list(alerts), similarity=similarity)
        result.reasons = self._reasons(mol, result)
        if smiles in self.seen:
            result.state = "duplicate"
        elif result.reasons:
            result.state = "rejected"
            result.error = "; ".join(result.reasons)
        self.seen.add(smiles)
        return result

    def _reasons(self, mol, result: DesignResult) -> list[str]:
        reasons = []
        if self.core is not None and (missing := self.core.missing(mol)):
            reasons.append(missing)
        reasons += [f"missing required substructure {p.text!r}" for p in self.must_contain if not p.matches(mol)]
        reasons += [f"contains forbidden substructure {p.text!r}" for p in self.must_avoid if p.matches(mol)]
        f = self.filters
        if f.alerts and result.alerts:
            reasons.append(f"structural alert ({result.alerts[0]}{' and more' if len(result.alerts) > 1 else ''})")
        if f.sa_max is not None and result.properties["SA"] > f.sa_max:
            reasons.append(f"SA {result.properties['SA']:.2f} above the ceiling {f.sa_max:g}")
        for name, (low, high) in (f.windows or {}).items():
            value = result.properties[name]
            if not float(low) <= value <= float(high):
                reasons.append(f"{name} {value:.3g} outside [{float(low):g}, {float(high):g}]")
        if f.min_similarity is not None and result.similarity is not None and result.similarity < f.min_similarity:
            reasons.append(f"similarity {result.similarity:.2f} below {f.min_similarity:g}")
        if self.novelty is not None and bool(self.novelty.contains([result.smiles])[0]):
            reasons.append("in the training set (not novel)")
        return reasons
