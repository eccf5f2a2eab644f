"""What guided design returns: one :class:`DesignResult` per attempt (invalid ones kept), and the record of an
optimisation run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["STATES", "DesignInputError", "DesignResult", "OptimizationResult"]

STATES = ("valid", "invalid", "duplicate", "rejected")
"""``valid``: a molecule that passed every constraint and filter; ``invalid``: the decoded graph (or, in
optimisation, the objective's value) is unusable, reason in ``error``; ``duplicate``: a molecule already
returned earlier in the same call; ``rejected``: a valid molecule that failed a constraint or filter (``reasons``)."""


class DesignInputError(ValueError):
    """Bad input to a design call (SMILES, SMARTS, core, target, objective); the message names it."""


@dataclass
class DesignResult:
    """One designed molecule (or failed attempt) with everything measured on it.

    ``properties``: the domain's properties (QED, logP, MW in g/mol, SA 1-10, TPSA in Å², HBD, HBA);
    ``alerts``: matching structural alerts as ``"CATALOG: rule"``; ``similarity``: Morgan (radius 2, 2048 bits)
    Tanimoto to the seed / core template / reference where relevant; ``score``: the objective's value where
    relevant; ``reasons``: every constraint or filter it failed.
    """

    smiles: str | None
    state: Literal["valid", "invalid", "duplicate", "rejected"]
    error: str | None = None
    properties: dict[str, float] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    similarity: float | None = None
    score: float | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A valid molecule that passed everything (state ``valid``)."""
        return self.state == "valid"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class OptimizationResult:
    """``best``: distinct molecules, best score first; ``trajectory``: one dict per iteration with
    ``iteration``, ``best_score``, ``mean_score`` (of that iteration's scored molecules), ``valid`` (how many
    were valid and scored) and ``evaluated``; ``evaluated``: every molecule scored, in order."""

    best: list[DesignResult]
    trajectory: list[dict]
    evaluated: list[DesignResult] = field(default_factory=list)
    stopped: str | None = None  # why the run ended early (e.g. interrupted), None if it ran to the end
