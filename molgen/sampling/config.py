"""How to sample, as one object: :class:`SamplingConfig`. What to sample (how many, seed, conditions, sizes, an edit
of given latents) is the pipeline call's; how (temperature, guidance, candidates, ...) is this config's.

A field left at None takes the model's own default (its prior's, predictor's, judge's or calibration's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor

from molgen.config import SELECTIONS
from molgen.decoding import DECODINGS
from molgen.prior.config import PriorConfig

__all__ = ["Conditions", "Edit", "SamplingConfig", "Sizes", "condition_table", "size_rows"]

Conditions = Mapping[str, float] | Sequence[Mapping[str, float] | None]
"""Property targets: one mapping {name: value} for every sample, or a sequence with one mapping per sample (None
or {} for an unconditional row)."""

Sizes = int | Sequence[int]
"""Graph sizes (numbers of nodes): one for every sample, or a sequence with one per sample."""


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling options; None means the model's default.

    Every prior family:
      ``temperature``: a discrete or masked prior divides its log-probabilities by it; a set prior scales its starting
      noise (below 1: more conservative, more often valid, less diverse). ``guidance_scale``: classifier-free guidance
      weight for conditions (1: plain conditional sampling; > 1 pushes harder toward the targets). ``decoding``:
      ``valence`` (every output valid) or ``raw`` (the decoder's argmax, checked). ``properties``: compute each
      valid molecule's properties. ``batch_size``: graphs per network batch (the same seed and batch size give
      the same molecules).
    Discrete and masked priors:
      ``top_p``: nucleus sampling (1: off).
    Discrete prior only:
      ``repairs``: passes that redraw each sample whose argmax decoding breaks a valence or falls apart, from its
      first atom at fault. ``property_guidance``: weight of the prefix property predictor's error to the targets,
      token by token (0: off). ``candidates``: samples drawn per sample returned, one kept (1: none; default: the
      judge's, predictor's or calibration's). ``selection``: how the one is kept, ``best`` (highest score) or
      ``draw`` (in proportion to exp(score)). ``calibrated``: score candidates by the calibration's p_data / p_model
      of their ring counts (default: on for unconditional sampling from scratch).
    Set and masked priors:
      ``steps``: scheduler steps (a masked prior draws every token in that many parallel passes).
    Set prior only:
      ``sampler``: ``euler``, ``heun`` or ``dpm`` (diffusers' schedulers).
    """

    temperature: float | None = None
    guidance_scale: float = 1.0
    decoding: str = "valence"
    properties: bool = True
    batch_size: int = 512
    top_p: float | None = None
    repairs: int | None = None
    property_guidance: float = 0.0
    candidates: int | None = None
    selection: str | None = None
    calibrated: bool | None = None
    steps: int | None = None
    sampler: str | None = None

    def __post_init__(self) -> None:
        _number("temperature", self.temperature, low=0.0, optional=True)
        _number("guidance_scale", self.guidance_scale, low=0.0, inclusive=True)
        _number("property_guidance", self.property_guidance, low=0.0, inclusive=True)
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding={self.decoding!r}: must be one of {DECODINGS}")
        if not isinstance(self.properties, bool):
            raise ValueError(f"properties={self.properties!r}: must be True or False")
        _whole("batch_size", self.batch_size, low=1)
        if self.top_p is not None:
            _number("top_p", self.top_p, low=0.0)
            if self.top_p > 1:
                raise ValueError(f"top_p={self.top_p!r}: must be a number in (0, 1] (1 turns nucleus sampling off)")
        _whole("repairs", self.repairs, low=0, optional=True)
        _whole("candidates", self.candidates, low=1, optional=True)
        _whole("steps", self.steps, low=1, optional=True)
        if self.selection is not None and self.selection not in SELECTIONS:
            raise ValueError(f"selection={self.selection!r}: must be one of {SELECTIONS} (how one candidate of each group is kept)")
        if self.calibrated is not None and not isinstance(self.calibrated, bool):
            raise ValueError(f"calibrated={self.calibrated!r}: must be True, False or None (the model's default)")

    def replace(self, **options) -> SamplingConfig:
        """This config with some fields changed; an unknown name is an error naming the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown sampling option(s) {unknown}; the options are {sorted(known)}")
        return replace(self, **options) if options else self


def _number(name: str, value, low: float, inclusive: bool = False, optional: bool = False) -> None:
    if value is None and optional:
        return
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and (value >= low if inclusive else value > low)
    if not ok:
        raise ValueError(f"{name}={value!r}: must be a finite number {'>=' if inclusive else '>'} {low:g}")


def _whole(name: str, value, low: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}={value!r}: must be a whole number >= {low}")


@dataclass
class Edit:
    """Latents to start from (one graph, broadcast, or one per sample), how much to redraw, and which tokens to keep.

    ``strength`` < 1: a discrete prior keeps each token with probability 1 - strength; a set prior noises the start
    to that share of the schedule and denoises from there; a masked prior masks that share of the tokens not kept
    (rounded, at least one), chosen at random, and draws them again knowing the others. ``keep`` (B or 1, N) bool:
    tokens held exactly (the prior fills in the others around them).
    """

    start: object  # molgen.records.Latents
    strength: float = 1.0
    keep: Tensor | None = None


def condition_table(config: PriorConfig, conditions: Conditions | None, n: int, device: torch.device) -> tuple[Tensor, Tensor] | None:
    """Property targets -> normalised (n, P) values and (n, P) presence mask, one row per sample (a single mapping is
    every row's); None when no row gives a target. Errors name the property and, for a sequence, the row."""
    if not conditions:
        return None
    per_row = not isinstance(conditions, Mapping)
    if per_row and (isinstance(conditions, (str, bytes)) or not isinstance(conditions, Sequence)):
        raise ValueError(f"conditions={conditions!r}: give a mapping {{name: value}} or a sequence of {n} of them")
    if per_row and len(conditions) != n:
        raise ValueError(f"conditions holds {len(conditions)} rows for {n} samples: give one per sample (or a single mapping)")
    names = config.property_names
    rows = conditions if per_row else [conditions]
    values = torch.zeros(len(rows), len(names))
    given = torch.zeros(len(rows), len(names), dtype=torch.bool)
    for r, row in enumerate(rows):
        where = f"conditions[{r}]: " if per_row else ""
        if row is None:
            continue
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}{row!r} is not a mapping of property name -> target value")
        for name, value in row.items():
            if name not in names:
                raise ValueError(f"{where}condition {name!r}: this prior is conditioned on {names} only")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{where}condition {name!r}: target {value!r} is not a number") from None
            if not math.isfinite(value):
                raise ValueError(f"{where}condition {name!r}: target {value} is not a finite number")
            k = names.index(name)
            values[r, k] = (value - config.property_mean[k]) / config.property_std[k]
            given[r, k] = True
    if not given.any():
        return None
    if not per_row:
        values, given = values.expand(n, -1), given.expand(n, -1)
    return values.to(device), given.to(device)


def size_rows(config: PriorConfig, num_nodes: Sizes | None, n: int) -> Tensor | None:
    """(n,) graph sizes from ``num_nodes`` (one size for all, or one per sample), checked; None: draw them."""
    if num_nodes is None:
        return None
    max_nodes = config.max_nodes
    single = isinstance(num_nodes, (int, np.integer))
    if not single and (isinstance(num_nodes, (str, bytes)) or not isinstance(num_nodes, Sequence | np.ndarray | Tensor)):
        raise ValueError(f"num_nodes={num_nodes!r}: give a whole number or a sequence of {n} whole numbers")
    sizes = [num_nodes] * n if single else (num_nodes.tolist() if hasattr(num_nodes, "tolist") else list(num_nodes))
    if len(sizes) != n:
        raise ValueError(f"num_nodes holds {len(sizes)} sizes for {n} samples: give one per sample (or a single number)")
    for row, size in enumerate(sizes):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= max_nodes:
            where = "num_nodes" if single else f"num_nodes[{row}]"
            raise ValueError(f"{where}={size!r}: must be a whole number between 1 and this model's max_nodes={max_nodes}")
    return torch.tensor([int(s) for s in sizes], dtype=torch.long)
