"""The interface every prior family's sampler has: check a request's options before any work, then draw one batch
of latents. The pipeline splits a request into batches, seeds one generator for them all, and decodes."""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from molgen.prior.config import PriorConfig
from molgen.records import Latents
from molgen.sampling.config import Edit, SamplingConfig

__all__ = ["Condition", "Sampler", "draw_sizes", "guidance_rows", "nucleus", "take"]

Condition = tuple[Tensor, Tensor] | None
"""(B, P) normalised property targets and (B, P) which of them are given; None: unconditional."""


class Sampler(Protocol):
    """One prior family's sampling loop (:mod:`molgen.sampling.discrete`, :mod:`molgen.sampling.flow`,
    :mod:`molgen.sampling.masked`)."""

    def check(self, config: SamplingConfig, condition: Condition, editing: bool) -> None:
        """Raise ValueError naming the option when ``config`` asks for something this sampler cannot do."""

    def sample(self, count: int, config: SamplingConfig, generator: torch.Generator, condition: Condition, sizes: Tensor | None, edit: Edit | None) -> Latents:
        """Latents of ``count`` graphs (unnormalised, as the tokenizer reads them): ``sizes`` (count,) nodes per graph
        or None (drawn from the training distribution); ``edit``: start from given latents instead (their sizes)."""


def draw_sizes(config: PriorConfig, n: int, generator: torch.Generator) -> Tensor:
    """(n,) graph sizes drawn from the training distribution."""
    counts = torch.tensor(config.num_nodes_counts, dtype=torch.float64)
    return torch.multinomial(counts, n, replacement=True, generator=generator)


def take(value: Tensor | tuple[Tensor, ...] | None, rows: slice | Tensor) -> Tensor | tuple[Tensor, ...] | None:
    """Rows of a per-sample tensor, or of each tensor of a tuple (None stays None)."""
    if value is None:
        return None
    return tuple(v[rows] for v in value) if isinstance(value, tuple) else value[rows]


def guidance_rows(sizes: Tensor, condition: Condition, guidance_scale: float) -> tuple[bool, Tensor, Tensor | None, Tensor | None]:
    """What a network reads per row under classifier-free guidance: (guided, sizes, values, given); with conditions
    and a scale other than 1 the conditional rows come first and the unconditional ones after them."""
    guided = condition is not None and guidance_scale != 1.0
    values, given = (None, None) if condition is None else condition
    if guided:
        sizes, values, given = torch.cat([sizes, sizes]), torch.cat([values, values]), torch.cat([given, torch.zeros_like(given)])
    return guided, sizes, values, given


def nucleus(probs: Tensor, top_p: float) -> Tensor:
    """(..., V) probabilities with every code outside the nucleus set to zero: the smallest set of most likely
    codes whose probabilities add up to ``top_p`` (the most likely code always stays)."""
    ordered, order = probs.sort(-1, descending=True)
    outside = ordered.cumsum(-1) - ordered >= top_p  # the codes before this one already hold top_p
    return probs.scatter(-1, order, ordered.masked_fill(outside, 0.0))
