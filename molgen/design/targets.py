"""Property targets: a value or a (low, high) range per property, checked against physics and against what the
prior was trained on, turned into the prior's conditions, and measured on the outputs (MAE, share in range).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from molgen.design.results import DesignInputError, DesignResult

__all__ = ["LIMITS", "Target", "parse_targets", "sizes_for_weight", "target_report"]

LIMITS: dict[str, tuple[float, float]] = {
    "QED": (0.0, 1.0),
    "SA": (1.0, 10.0),
    "MW": (0.0, math.inf),
    "TPSA": (0.0, math.inf),
    "HBD": (0.0, math.inf),
    "HBA": (0.0, math.inf),
    "logP": (-math.inf, math.inf),
}
"""Values a property can take at all (SA score 1-10, QED 0-1, counts and sizes non-negative)."""

MAX_STD = 6.0
"""A target further than this many standard deviations from the training mean is refused: the prior has never
seen such a condition and would answer with noise."""


@dataclass(frozen=True)
class Target:
    """A property target: ``low == high`` for a single value."""

    name: str
    low: float
    high: float

    @property
    def value(self) -> float:
        """The value the prior is conditioned on (the middle of a range)."""
        return (self.low + self.high) / 2

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def error(self, value: float) -> float:
        """Absolute distance to the target (0 inside a range)."""
        return max(self.low - value, value - self.high, 0.0)

    def __str__(self) -> str:
        return f"{self.name}={self.low:g}" if self.low == self.high else f"{self.name} in [{self.low:g}, {self.high:g}]"


def _number(name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DesignInputError(f"target {name}={value!r}: expected a number or a (low, high) pair") from None
    if not math.isfinite(number):
        raise DesignInputError(f"target {name}={value!r}: not a finite number")
    return number


def parse_targets(
    targets: Mapping[str, float | tuple[float, float]] | None,
    names: list[str],
    means: list[float] | None = None,
    stds: list[float] | None = None,
) -> dict[str, Target]:
    """Check ``targets`` ({name: value or (low, high)}) and return them as :class:`Target` s.

    ``names``: properties the prior is conditioned on; ``means``/``stds``: their training statistics (a target
    beyond :data:`MAX_STD` standard deviations is refused). Errors (:class:`DesignInputError`) name the target.
    """
    parsed: dict[str, Target] = {}
    for name, spec in (targets or {}).items():
        if name not in names:
            raise DesignInputError(f"target {name!r}: this model is conditioned on {names} only")
        if isinstance(spec, (tuple, list)):
            if len(spec) != 2:
                raise DesignInputError(f"target {name}={spec!r}: a range is a (low, high) pair")
            low, high = _number(name, spec[0]), _number(name, spec[1])
            if low > high:
                raise DesignInputError(f"target {name} range [{low:g}, {high:g}] is empty (low > high)")
        else:
            low = high = _number(name, spec)
        lo, hi = LIMITS.get(name, (-math.inf, math.inf))
        if high < lo or low > hi:
            raise DesignInputError(f"target {name} {_span(low, high)} is impossible: {name} lies in [{lo:g}, {hi:g}]")
        if means is not None and stds is not None:
            k = names.index(name)
            bound_lo, bound_hi = means[k] - MAX_STD * stds[k], means[k] + MAX_STD * stds[k]
            if high < bound_lo or low > bound_hi:
                raise DesignInputError(
                    f"target {name} {_span(low, high)} is far outside what this model was trained on "
                    f"({name} {means[k]:.3g} ± {stds[k]:.3g}; targets within [{bound_lo:.3g}, {bound_hi:.3g}] can be met)"
                )
        parsed[name] = Target(name, low, high)
    return parsed


def _span(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"[{low:g}, {high:g}]"


def target_report(results: Iterable[DesignResult], targets: Mapping[str, Target]) -> dict[str, dict[str, float]]:
    """Per target: ``mae`` (mean absolute distance to the target, 0 inside a range), ``in_range`` and ``n``.

    ``in_range``: the share inside the range; for a single value, within 10% of |value| (at least 0.05 for
    QED, 0.5 otherwise). Measured over every molecule that has properties (valid, duplicate, rejected).
    """
    measured = [r for r in results if r.smiles is not None and r.properties]
    report = {}
    for name, target in targets.items():
        values = [r.properties[name] for r in measured if name in r.properties]
        if not values:
            report[name] = {"mae": math.nan, "in_range": math.nan, "n": 0}
            continue
        tolerance = 0.0 if target.low < target.high else max(0.1 * abs(target.value), 0.05 if name == "QED" else 0.5)
        inside = sum(target.error(v) <= tolerance for v in values)
        report[name] = {"mae": sum(target.error(v) for v in values) / len(values), "in_range": inside / len(values), "n": len(values)}
    return report


def sizes_for_weight(target: Target, counts: Sequence[int], mean_weight: float, std_weight: float) -> np.ndarray:
    """Probabilities of each atom count (index N) for a molecular-weight target.

    The prior draws sizes independently of its conditions, and a molecule's weight is mostly its size; this
    reweights the training size histogram ``counts`` by how well N atoms fit the target: a Gaussian in the
    distance between ``target`` and N times the training weight per atom (``mean_weight`` over the mean size),
    with half the training weight's spread ``std_weight`` as width. A heuristic from training statistics only.
    """
    counts = np.asarray(counts, dtype=np.float64)
    sizes = np.arange(len(counts))
    per_atom = mean_weight / (counts @ sizes / counts.sum())
    expected = per_atom * sizes
    distance = np.maximum(np.maximum(target.low - expected, expected - target.high), 0.0)
    with np.errstate(divide="ignore"):
        log_weight = np.log(counts) - 0.5 * (distance / (std_weight / 2)) ** 2
    weight = np.exp(log_weight - log_weight.max())
    return weight / weight.sum()
