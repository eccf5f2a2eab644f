"""The one place where the web UI reaches the library: :class:`molgen.design.Designer` when this version
has it, else plain sampling from :class:`molgen.pipeline.MolgenPipeline` for the Generate tab.

A design feature this version lacks raises :class:`FeatureUnavailable` with a message for the page,
instead of an AttributeError in the middle of a request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from molgen.pipeline import MolgenPipeline

__all__ = ["DesignService", "FeatureUnavailable"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
FALLBACK_BATCH = 64  # small batches so the progress bar moves; fixed so that a seed gives the same molecules


class FeatureUnavailable(RuntimeError):
    """The design feature behind a tab is not in this version of molgen."""


def _load_design():
    try:
        import molgen.design as design
    except ImportError as exc:
        log.warning("molgen.design not importable (%s): only plain generation is available", exc)
        return None
    return design


class DesignService:
    """Design calls for the page, each returning a list of result records (invalid ones kept)."""

    def __init__(self, pipeline: MolgenPipeline) -> None:
        self.pipeline = pipeline
        self.design = _load_design()
        designer = getattr(self.design, "Designer", None)  # a half-built molgen.design has no Designer yet
        self.designer = designer(pipeline) if designer is not None else None

    @property
    def property_names(self) -> list[str]:
        """Properties the prior can be steered toward (empty for a model without a conditioned prior)."""
        prior = self.pipeline.prior
        return list(prior.config.property_names) if prior is not None else []

    @property
    def default_steps(self) -> int:
        return self.pipeline.prior.config.default_steps if self.pipeline.prior is not None else 20

    def has(self, method: str) -> bool:
        return self.designer is not None and callable(getattr(self.designer, method, None))

    def _require(self, method: str, tab: str):
        if not self.has(method):
            raise FeatureUnavailable(f"{tab} is not available in this version of molgen (molgen.design has no Designer.{method})")
        return getattr(self.designer, method)

    def filters(self, alerts: bool, sa_max: float | None):
        """A ``molgen.design.Filters``, or None when nothing is asked for."""
        if not alerts and sa_max is None:
            return None
        if self.design is None or not hasattr(self.design, "Filters"):
            raise FeatureUnavailable("filters (alerts, SA ceiling) are not available in this version of molgen")
        return self.design.Filters(alerts=alerts, sa_max=sa_max)

    # --- the five tabs -------------------------------------------------------------------------------

    def generate(
        self,
        n: int,
        *,
        seed: int,
        steps: int | None,
        targets: dict,
        guidance_scale: float,
        must_contain: Sequence[str],
        must_avoid: Sequence[str],
        filters,
        progress: Progress | None = None,
    ) -> list:
        if self.has("generate"):
            return self.designer.generate(
                n, seed=seed, steps=steps, targets=targets or None, guidance_scale=guidance_scale,
                must_contain=tuple(must_contain), must_avoid=tuple(must_avoid), filters=filters, progress=progress,
            )  # fmt: skip
        return self._plain_generate(n, seed, steps, targets, guidance_scale, must_contain, must_avoid, progress)

    def _plain_generate(self, n, seed, steps, targets, guidance_scale, must_contain, must_avoid, progress) -> list:
        if must_contain or must_avoid:
            raise FeatureUnavailable("SMARTS constraints are not available in this version of molgen (no molgen.design)")
        ranges = [name for name, t in targets.items() if isinstance(t, tuple)]
        if ranges:
            raise FeatureUnavailable(f"range targets ({', '.join(ranges)}) are not available in this version of molgen; give single values")
        records = []
        for molecule in self.pipeline.sample_iter(
            n, steps=steps, seed=seed, batch_size=FALLBACK_BATCH, conditions=targets or None, guidance_scale=guidance_scale
        ):
            records.append(molecule)
            if progress is not None and (len(records) % FALLBACK_BATCH == 0 or len(records) == n):
                progress(len(records), n)
        return records

    def analogs(self, smiles: str, n: int, **options) -> list:
        return self._require("analogs", "Analogs")(smiles, n, **options)

    def decorate(self, core: str, n: int, **options) -> list:
        return self._require("decorate", "Scaffold decoration")(core, n, **options)

    def interpolate(self, smiles_a: str, smiles_b: str, n_points: int, **options) -> list:
        return self._require("interpolate", "Interpolation")(smiles_a, smiles_b, n_points, **options)

    def optimize(self, objective, **options):
        """A ``molgen.design.OptimizationResult`` (``best``, ``trajectory``)."""
        return self._require("optimize", "Optimisation")(objective, **options)

    def objective(self, kind: str, *, logp_low: float, logp_high: float, reference: str, weights: dict[str, float]):
        """The objective chosen on the Optimize tab, from the design API's objective factories."""
        objectives = getattr(self.design, "objectives", None)
        if objectives is None:
            raise FeatureUnavailable("Optimisation is not available in this version of molgen (no molgen.design.objectives)")
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
