"""Sampling the set flow-matching prior with a diffusers scheduler, as a diffusers pipeline does: make noise,
``set_timesteps``, then per timestep ``prior (with classifier-free guidance) -> scheduler.step``. A fresh scheduler
per batch, used unmodified (schedulers keep state between steps).

Edits: a start noised to ``strength`` of the schedule (x_s = (1 - s) x0 + s noise at the scheduler's first sigma at
or below ``strength``) and denoised from there (SDEdit); ``keep``: those tokens follow the start's own noising path
and come back exactly (RePaint-style inpainting).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor

from molgen.prior.flow import LatentPrior
from molgen.prior.scheduling import make_scheduler, model_time
from molgen.records import Latents
from molgen.sampling.base import Condition, draw_sizes
from molgen.sampling.config import Edit, SamplingConfig

__all__ = ["FlowSampler"]

DISCRETE_ONLY = {"top_p": 1.0, "repairs": 0, "candidates": 1, "selection": None, "calibrated": False, "property_guidance": 0.0}
"""Options of a discrete prior, and the value that leaves them off."""


class FlowSampler:
    """The sampler of a set :class:`LatentPrior`."""

    def __init__(self, prior: LatentPrior, device: torch.device, precision: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> None:
        self.prior, self.device, self.precision = prior, device, precision
        config = prior.config
        self.mean = torch.tensor(config.latent_mean, device=device)
        self.std = torch.tensor(config.latent_std, device=device)

    def check(self, config: SamplingConfig, condition: Condition, editing: bool) -> None:
        for name, off in DISCRETE_ONLY.items():
            if getattr(config, name) not in (None, off):
                raise ValueError(f"{name}={getattr(config, name)!r}: an option of a discrete prior; this model's prior is a set flow-matching prior, leave it unset")
        make_scheduler(self.prior.config, config.sampler)  # an unknown sampler is an error before any work

    @torch.no_grad()
    def sample(self, count: int, config: SamplingConfig, generator: torch.Generator, condition: Condition, sizes: Tensor | None, edit: Edit | None) -> Latents:
        prior_config = self.prior.config
        x0 = keep = None
        if edit is None:
            sizes = draw_sizes(prior_config, count, generator) if sizes is None else sizes
            n = int(sizes.max())
            mask = (torch.arange(n)[None, :] < sizes[:, None]).to(self.device)  # (B, N)
        else:
            mask = edit.start.mask.to(self.device).bool().expand(count, -1)  # (B, N)
            n = mask.shape[1]
            x0 = (edit.start.z.to(self.device) - self.mean) / self.std * mask.unsqueeze(-1)  # (B, N, d) normalised
            keep = None if edit.keep is None else edit.keep.to(self.device).bool().expand(count, -1).unsqueeze(-1)  # (B, N, 1)
        noise = torch.randn(count, n, prior_config.latent_dim, generator=generator).to(self.device)
        temperature = prior_config.default_temperature if config.temperature is None else config.temperature
        steps = prior_config.default_steps if config.steps is None else config.steps
        x = self._denoise(noise * temperature, mask, x0, 1.0 if edit is None else edit.strength, keep, condition, config.guidance_scale, steps, config.sampler)
        return Latents((x * self.std + self.mean) * mask.unsqueeze(-1), mask)

    def _denoise(
        self, noise: Tensor, mask: Tensor, x0: Tensor | None, strength: float, keep: Tensor | None, condition: Condition, scale: float, steps: int, sampler: str | None,
    ) -> Tensor:  # fmt: skip
        """From ``x0`` (normalised, or None: pure noise) noised to ``strength`` of the schedule with ``noise``, denoise
        to the end; ``keep`` (B, N, 1) tokens of ``x0`` held fixed."""
        config, real = self.prior.config, mask.unsqueeze(-1)
        scheduler = make_scheduler(config, sampler)  # fresh: schedulers keep state between steps
        scheduler.set_timesteps(steps, device=noise.device)
        x = noise * getattr(scheduler, "init_noise_sigma", 1.0) * real  # flow matching starts at sigma = 1
        begin = 0
        if x0 is not None:
            begin = _begin_index(scheduler, strength)
            if begin > 0:
                x = _noised(scheduler, x0, noise, begin) * real
                if hasattr(scheduler, "set_begin_index"):
                    scheduler.set_begin_index(begin)
            if keep is not None:
                x = torch.where(keep, _noised(scheduler, x0, noise, begin), x)
        for timestep in scheduler.timesteps[begin:]:
            # 1. prior with classifier-free guidance -> 2. scheduler step -> 3. kept tokens back on their own path
            t = model_time(timestep, config, x.shape[0], x.device)
            model_in = scheduler.scale_model_input(x, timestep) if hasattr(scheduler, "scale_model_input") else x
            with self.precision():  # the network's products in bfloat16 if asked; its prediction comes back float32
                velocity = self._guided(model_in, t, mask, condition, scale)
            x = scheduler.step(velocity, timestep, x).prev_sample * real
            if keep is not None:
                x = torch.where(keep, _noised(scheduler, x0, noise, scheduler.step_index), x)
        return x

    def _guided(self, x: Tensor, t: Tensor, mask: Tensor, condition: Condition, scale: float) -> Tensor:
        """The prior's velocity in float32, with classifier-free guidance: uncond + scale (cond - uncond)."""
        if condition is None:
            return self.prior(x, t, mask).float()
        values, given = condition
        if scale == 1.0:
            return self.prior(x, t, mask, values, given).float()
        both = self.prior(torch.cat([x, x]), torch.cat([t, t]), torch.cat([mask, mask]), torch.cat([values, values]), torch.cat([given, torch.zeros_like(given)])).float()
        cond, uncond = both.chunk(2)
        return uncond + scale * (cond - uncond)


def _begin_index(scheduler, strength: float) -> int:
    """First step of the schedule to run for a start noised to ``strength`` of the way (1: from pure noise)."""
    if strength >= 1:
        return 0
    sigmas = scheduler.sigmas[: len(scheduler.timesteps)].cpu()
    begin = int((sigmas > strength + 1e-6).sum())  # the first step whose sigma is at most ``strength``
    if getattr(scheduler, "order", 1) == 2 and begin % 2:
        begin += 1  # Heun lists every level but the first twice (predictor, then corrector): start on a predictor step
    return min(begin, len(scheduler.timesteps) - 1)


def _noised(scheduler, x0: Tensor, noise: Tensor, index: int) -> Tensor:
    """``x0`` noised to the level of schedule position ``index`` (the last sigma is 0: clean): (1 - s) x0 + s noise."""
    sigma = scheduler.sigmas[index].to(x0)
    return (1 - sigma) * x0 + sigma * noise
