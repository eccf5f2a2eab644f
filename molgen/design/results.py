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
    """What an optimisation found.

    ``best``: every molecule scored, best score first (the first ones with their properties and alerts);
    ``trajectory``: one dict per round with ``round``, ``calls`` (objective calls so far), ``best_score``,
    ``top10_mean`` (of the best 10 so far), ``mean_score`` (of that round's molecules), ``scored`` and ``seconds``;
    ``evaluated``: every molecule scored, in call order; ``stopped``: why the run ended (the budget used, no new
    molecule, interrupted); ``history``: every objective call with its score, parent and operator
    (:class:`~molgen.design.oracle.History`, ``history.save(path)`` writes it as CSV)."""

    best: list[DesignResult]
    trajectory: list[dict]
    evaluated: list[DesignResult] = field(default_factory=list)
    stopped: str | None = None
    history: object = None
