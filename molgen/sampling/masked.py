"""Sampling a masked diffusion prior with diffusers' ``AmusedScheduler``, used unmodified, as a diffusers pipeline
does: every token to draw starts as ``[MASK]``, ``set_timesteps``, then per timestep
``prior (classifier-free guidance, temperature, nucleus) -> scheduler.step``. At each step the scheduler draws a code
for every masked position from the softmax of what it is given, keeps the likeliest of them (MaskGIT's
confidence, with Gumbel noise at :data:`REMASK_TEMPERATURE`) and masks the rest again, fewer at each step along the
cosine schedule the prior was trained with (:data:`~molgen.prior.masked.MASKING_SCHEDULE`); the last step keeps
them all. A fresh scheduler per batch (schedulers keep state).

Graph sizes: a batch holds graphs of several sizes, padded to the longest. The scheduler counts the tokens left
masked after a step as a share of the whole row; ``starting_mask_ratio``, given per graph as the share of its row
that is masked at the start, makes that count a share of the graph's own masked tokens. Padding (and every given
token) is not ``[MASK]``, so the scheduler never draws it, and its confidence is the largest float, so it is never
masked again; the network does not attend to padding.

Edits as inpainting (GenMol's design tasks): ``keep`` tokens are given from the start and, being never masked, come
back exactly; ``strength`` < 1 masks that share of the other tokens at random (the rest are given too), so an analog
keeps 1 - strength of its start's tokens exactly and draws the rest knowing all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from diffusers import AmusedScheduler
from torch import Tensor

from molgen.prior.masked import MASKING_SCHEDULE, MaskedDiffusionPrior
from molgen.records import Latents
from molgen.sampling.base import Condition, draw_sizes, guidance_rows, nucleus, take
from molgen.sampling.config import Edit, SamplingConfig

__all__ = ["REMASK_TEMPERATURE", "MaskedSampler"]

REMASK_TEMPERATURE = (2.0, 0.0)
"""``AmusedScheduler.set_timesteps(temperature=...)``: the scale of the Gumbel noise added to the confidences that
choose which drawn tokens are masked again, falling linearly from the first step to the last (aMUSEd's default). It is
not the softmax temperature (:attr:`SamplingConfig.temperature`). Below about 4 a given token (confidence
log(float32 max) = 88.7) can never be masked again: a drawn token's confidence is at most 0 + 2 * 16.6."""

UNSUPPORTED = {
    "repairs": (0, "discrete autoregressive"), "candidates": (1, "discrete autoregressive"), "selection": (None, "discrete autoregressive"),
    "calibrated": (False, "discrete autoregressive"), "property_guidance": (0.0, "discrete autoregressive"), "sampler": (None, "set flow-matching"),
}  # fmt: skip
"""Options of the other prior families: the value that leaves each off, and whose option it is."""


class MaskedSampler:
    """The sampler of a :class:`MaskedDiffusionPrior`."""

    def __init__(
        self, prior: MaskedDiffusionPrior, device: torch.device, precision: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    ) -> None:
        self.prior, self.device, self.precision = prior, device, precision

    def check(self, config: SamplingConfig, condition: Condition, editing: bool) -> None:
        for name, (off, owner) in UNSUPPORTED.items():
            value = getattr(config, name)
            if value is not None and value != off:
                raise ValueError(f"{name}={value!r}: an option of a {owner} prior; this model's prior is a masked diffusion prior, leave it unset")

    @torch.no_grad()
    def sample(self, count: int, config: SamplingConfig, generator: torch.Generator, condition: Condition, sizes: Tensor | None, edit: Edit | None) -> Latents:
        prior_config, mask_id = self.prior.config, self.prior.mask_id
        if edit is None:
            sizes = draw_sizes(prior_config, count, generator) if sizes is None else sizes
            mask = (torch.arange(int(sizes.max()))[None, :] < sizes[:, None]).to(self.device)  # (B, N)
            ids = torch.full(mask.shape, mask_id, device=self.device)
        else:
            mask = edit.start.mask.to(self.device).bool().expand(count, -1)  # (B, N)
            start = self.prior.ids(edit.start.z.to(self.device)).expand(count, -1)  # (B, N)
            ids = torch.where(self._given(mask, edit, generator), start, mask_id)
        ids = torch.where(mask, ids, 0)  # padding: a given token to the scheduler, out of the network's attention
        steps = prior_config.default_steps if config.steps is None else config.steps
        temperature = prior_config.default_temperature if config.temperature is None else config.temperature
        top_p = prior_config.default_top_p if config.top_p is None else config.top_p
        ids = self._unmask(ids, mask, condition, config.guidance_scale, temperature, top_p, steps, generator)
        return Latents(self.prior.values(ids) * mask.unsqueeze(-1), mask)

    def _given(self, mask: Tensor, edit: Edit, generator: torch.Generator) -> Tensor:
        """(B, N) bool, the tokens of ``edit.start`` that are given: ``keep``, and with ``strength`` < 1 all but that
        share of the others (rounded, at least one), chosen at random."""
        count, n = mask.shape
        given = torch.zeros_like(mask) if edit.keep is None else edit.keep.to(self.device).bool().expand(count, -1) & mask
        if edit.strength < 1:
            free = mask & ~given
            redrawn = (edit.strength * free.sum(1)).round().clamp(min=1)  # (B,)
            draws = torch.rand(count, n, generator=generator).to(self.device).masked_fill(~free, 2.0)
            rank = draws.argsort(1).argsort(1)  # the free tokens of each graph in a random order, the others last
            given = given | (free & (rank >= redrawn[:, None]))
        return given

    def _unmask(
        self, ids: Tensor, mask: Tensor, condition: Condition, scale: float, temperature: float, top_p: float, steps: int, generator: torch.Generator,
    ) -> Tensor:  # fmt: skip
        """(B, N) ids with ``[MASK]`` where a code is to be drawn -> (B, N) ids, every ``[MASK]`` drawn, every other
        id as it was. Graphs with nothing to draw are left out of the loop (the scheduler masks at least one token
        of each row it is given)."""
        mask_id = self.prior.mask_id
        rows = (ids == mask_id).any(1).nonzero().squeeze(1)
        if len(rows) == 0:
            return ids
        x, real, condition = ids[rows], mask[rows], take(condition, rows)
        scheduler = AmusedScheduler(mask_token_id=mask_id, masking_schedule=MASKING_SCHEDULE)  # fresh: schedulers keep state
        scheduler.set_timesteps(steps, temperature=REMASK_TEMPERATURE, device=self.device)
        starting = (x == mask_id).sum(1, keepdim=True).float() / x.shape[1]  # (R, 1): each graph's masked share of its row
        for timestep in scheduler.timesteps:
            # 1. prior with guidance, temperature and nucleus -> 2. the scheduler draws, keeps the likeliest, masks the rest
            logits = self._logits(x, real, condition, scale, temperature, top_p)
            x = scheduler.step(logits, timestep, x, starting_mask_ratio=starting, generator=generator).prev_sample
        ids = ids.clone()
        ids[rows] = x
        return ids

    def _logits(self, x: Tensor, mask: Tensor, condition: Condition, scale: float, temperature: float, top_p: float) -> Tensor:
        """(B, N, V) float32 log-probabilities the scheduler draws from (it takes their softmax): classifier-free
        guidance on the prior's log-probabilities, divided by ``temperature``, codes outside the nucleus at -inf."""
        batch = x.shape[0]
        guided, _, values, given = guidance_rows(mask.sum(1), condition, scale)
        if guided:
            x, mask = torch.cat([x, x]), torch.cat([mask, mask])
        with self.precision():  # the network's products in bfloat16 if asked; its logits come back float32
            logp = self.prior(x, mask, values, given).float().log_softmax(-1)
        if guided:  # conditional rows first: uncond + scale (cond - uncond)
            logp = logp[batch:] + scale * (logp[:batch] - logp[batch:])
        logp = logp / temperature
        if top_p < 1:
            logp = nucleus(logp.softmax(-1), top_p).log()
        return logp
