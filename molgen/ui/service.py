"""The one place where the web UI reaches the library: :class:`molgen.design.Designer` over a loaded
:class:`molgen.pipeline.MolgenPipeline`.

A design feature this version of molgen lacks raises :class:`FeatureUnavailable` with a message for the
page, instead of an AttributeError in the middle of a request; the tabs that need it say so. Every call takes the
request's :class:`~molgen.ui.jobs.Deadline` and stops at it, returning what it has.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from molgen.pipeline import MolgenPipeline
from molgen.ui.jobs import Deadline, Interrupted, collect, stoppable

__all__ = ["BATCH_DRAWS", "DesignService", "FeatureUnavailable", "Outcome"]

log = logging.getLogger(__name__)

BATCH_DRAWS = 512
"""Graphs drawn per batch at most (molecules per batch times the candidates drawn for each). A request stops for its
deadline or its Cancel button only between batches, so a request with targets (tens of candidates per molecule)
samples a few molecules per batch, one without hundreds."""


@dataclass
class Outcome:
    """What a request made (invalid and rejected records included) and, if it stopped early, why."""

    records: list
    stopped: str | None = None
    trajectory: list[dict] = field(default_factory=list)  # optimisation: one dict per iteration


class FeatureUnavailable(RuntimeError):
    """The design feature behind a tab is not in this version of molgen."""


def _load_design():
    try:
        import molgen.design as design
    except ImportError as exc:
        log.warning("molgen.design not importable (%s): the design tabs will say they are unavailable", exc)
        return None
    return design


class DesignService:
    """Design calls for the page, each returning a list of result records (invalid ones kept)."""

    def __init__(self, pipeline: MolgenPipeline) -> None:
        self.pipeline = pipeline
        self.design = _load_design()
        designer = getattr(self.design, "Designer", None)
        self.designer = designer(pipeline) if designer is not None else None
        self._designers = {} if self.designer is None else {self.designer.batch_size: self.designer}

    @property
    def property_names(self) -> list[str]:
        """Properties the prior can be steered toward (empty for a model without a conditioned prior)."""
        prior = self.pipeline.prior
        return list(prior.config.property_names) if prior is not None else []

    @property
    def default_steps(self) -> int:
        return self.pipeline.prior.config.default_steps if self.pipeline.prior is not None else 20

    @property
    def default_repairs(self) -> int:
        """The repair passes the page starts with: the discrete prior's default (0 for any other prior)."""
        return self.pipeline.prior.config.default_repairs if self.uses_repairs else 0

    @property
    def uses_steps(self) -> bool:
        """Whether sampling steps mean anything to this model's prior: not to a discrete one, which draws each token
        from a softmax (the page hides the field)."""
        return self.pipeline.prior is None or self.pipeline.prior.config.architecture != "discrete"

    @property
    def uses_repairs(self) -> bool:
        """Whether the prior takes repair passes (redraw each graph whose argmax decoding breaks a valence or falls
        apart, from its first atom at fault): only a discrete one (the page hides the field otherwise)."""
        return self.pipeline.prior is not None and self.pipeline.prior.config.architecture == "discrete"

    @property
    def has_predictor(self) -> bool:
        """Whether the model has a property predictor to steer toward targets with (predictor guidance)."""
        return getattr(self.pipeline, "predictor", None) is not None

    @property
    def default_property_guidance(self) -> float:
        """The predictor guidance the page starts with: the design API's default for this model (0 without one)."""
        return float(getattr(self.designer, "default_property_guidance", 0.0)) if self.has_predictor else 0.0

    def has(self, method: str) -> bool:
        return self.designer is not None and callable(getattr(self.designer, method, None))

    def _require(self, method: str, tab: str):
        if not self.has(method):
            raise FeatureUnavailable(f"{tab} is not available in this version of molgen (molgen.design has no Designer.{method})")
        return getattr(self.designer, method)

    def _design_attr(self, name: str, what: str):
        value = getattr(self.design, name, None)
        if value is None:
            raise FeatureUnavailable(f"{what} is not available in this version of molgen (no molgen.design.{name})")
        return value

    def filters(self, alerts: bool, sa_max: float | None, windows: dict[str, tuple[float, float]] | None = None):
        """A ``molgen.design.Filters``, or None when nothing is asked for."""
        if not alerts and sa_max is None and not windows:
            return None
        return self._design_attr("Filters", "filtering")(alerts=alerts, sa_max=sa_max, windows=windows or None)

    def target_report(self, records: Sequence, targets: dict) -> dict[str, dict[str, float]]:
        """Per target: share of molecules on target (``in_range``) and mean distance (``mae``); {} if none."""
        report = getattr(self.design, "target_report", None)
        if not targets or report is None or not self.has("parse_targets"):
            return {}
        return report(records, self.designer.parse_targets(targets))

    def candidates(self, targets: bool) -> int:
        """Graphs the prior draws per molecule by default (the largest ``default_candidates`` / ``candidates`` of the
        model's parts that resample: the judge and predictor with targets, the calibration always; 1: none)."""
        parts = [("calibration", "candidates")] + ([("judge", "default_candidates"), ("predictor", "default_candidates")] if targets else [])
        counts = [getattr(getattr(getattr(self.pipeline, part, None), "config", None), name, None) for part, name in parts]
        return max([1, *(c for c in counts if isinstance(c, int))])

    def _designer_for(self, targets: bool):
        """The designer whose batches draw at most :data:`BATCH_DRAWS` graphs for such a request."""
        batch = max(1, min(self.designer.batch_size, BATCH_DRAWS // self.candidates(targets)))
        if batch not in self._designers:
            self._designers[batch] = self.design.Designer(self.pipeline, batch_size=batch)
        return self._designers[batch]

    # --- the five tabs: each stops at the request's deadline with what it has -------------------------------

    def generate(self, n: int, deadline: Deadline | None = None, **options) -> Outcome:
        self._require("generate_iter", "Generation")
        return Outcome(*collect(self._designer_for(bool(options.get("targets"))).generate_iter(n, **options), deadline))

    def analogs(self, smiles: str, n: int, deadline: Deadline | None = None, **options) -> Outcome:
        return Outcome(*collect(self._require("analogs_iter", "Analogs")(smiles, n, **options), deadline))

    def decorate(self, core: str, n: int, deadline: Deadline | None = None, **options) -> Outcome:
        return Outcome(*collect(self._require("decorate_iter", "Scaffold decoration")(core, n, **options), deadline))

    def interpolate(self, smiles_a: str, smiles_b: str, n_points: int, deadline: Deadline | None = None, **options) -> Outcome:
        """One call (a path of at most a few dozen points): the deadline is checked before it starts."""
        interpolate = self._require("interpolate", "Interpolation")
        if deadline is not None and (why := deadline.reason()):
            return Outcome([], why)
        return Outcome(interpolate(smiles_a, smiles_b, n_points, **options))

    def optimize(self, objective, deadline: Deadline | None = None, **options) -> Outcome:
        """The best molecules (``records``) and the ``trajectory``; the deadline is checked once per iteration, and
        an optimisation stopped by it keeps the molecules scored so far."""
        optimize = self._require("optimize", "Optimisation")
        try:
            result = optimize(objective if deadline is None else stoppable(objective, deadline), **options)
        except Interrupted as exc:  # only if the design API let it through: nothing was kept
            return Outcome([], str(exc))
        stopped = result.stopped
        if stopped is not None and deadline is not None:  # interrupted: by the deadline or Cancel, say which
            stopped = deadline.reason() or stopped
        return Outcome(result.best, stopped, result.trajectory)

    def objective(self, kind: str, *, logp_low: float | None, logp_high: float | None, reference: str, weights: dict[str, float], components: str = ""):
        """The objective chosen on the Optimize tab, from the design API's objective factories (``components``: the
        TOML text of REINVENT-style scoring components)."""
        objectives = self._design_attr("objectives", "Optimisation")
        if kind == "scoring components (TOML)":
            import tomllib

            try:
                config = tomllib.loads(components)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"scoring components: not valid TOML: {exc}") from None
            return objectives.from_config(config)
        parts = {
            "QED": lambda: objectives.qed(),
            "logP window": lambda: objectives.logp_window(logp_low, logp_high),
            "similarity to reference": lambda: objectives.similarity(reference),
        }
        if kind in parts:
            return parts[kind]()
        chosen = [(parts[name](), weight) for name, weight in weights.items() if weight]
        if not chosen:
            raise ValueError("weighted combination: give at least one objective a non-zero weight")
        return objectives.weighted(chosen)
