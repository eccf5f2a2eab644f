"""The one place where the web UI reaches the library: :class:`molgen.design.Designer` over a loaded
:class:`molgen.pipeline.MolgenPipeline`.

A design feature this version of molgen lacks raises :class:`FeatureUnavailable` with a message for the
page, instead of an AttributeError in the middle of a request; the tabs that need it say so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from molgen.pipeline import MolgenPipeline

__all__ = ["DesignService", "FeatureUnavailable"]

log = logging.getLogger(__name__)


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

    # --- the five tabs -------------------------------------------------------------------------------

    def generate(self, n: int, **options) -> list:
        return self._require("generate", "Generation")(n, **options)

    def analogs(self, smiles: str, n: int, **options) -> list:
        return self._require("analogs", "Analogs")(smiles, n, **options)

    def decorate(self, core: str, n: int, **options) -> list:
        return self._require("decorate", "Scaffold decoration")(core, n, **options)

    def interpolate(self, smiles_a: str, smiles_b: str, n_points: int, **options) -> list:
        return self._require("interpolate", "Interpolation")(smiles_a, smiles_b, n_points, **options)

    def optimize(self, objective, **options):
        """A ``molgen.design.OptimizationResult`` (``best``, ``trajectory``)."""
        return self._require("optimize", "Optimisation")(objective, **options)

    def objective(self, kind: str, *, logp_low: float | None, logp_high: float | None, reference: str, weights: dict[str, float]):
        """The objective chosen on the Optimize tab, from the design API's objective factories."""
        objectives = self._design_attr("objectives", "Optimisation")
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
