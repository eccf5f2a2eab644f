"""The one place that says what the prior's network predicts, how its training pairs are made, and which
diffusers scheduler samples it. Schedulers are used unmodified, and a fresh one is made per sampling call
(they keep state between ``step`` calls).

- ``flow``: x_t = (1 - s) x0 + s noise with s = sigma in [0, 1] (1 is pure noise, as in diffusers'
  FlowMatchEulerDiscreteScheduler); the network predicts the velocity ``noise - x0``; samplers run from
  sigma = 1 to 0 with timesteps ``1000 sigma`` taken from ``scheduler.timesteps``: Euler, Heun (two network
  evaluations per step), or DPM-Solver++ 2M (``dpm``: DPMSolverMultistepScheduler on flow sigmas, second order
  from one evaluation per step by reusing the previous step's prediction; its first sigma is 1 - 1/1000).
- ``diffusion``: DDPM forward process of ``DDPMScheduler`` (``clip_sample=False``: latents are not in
  [-1, 1]); the network predicts epsilon or v; DDPM, DDIM or DPM-Solver++ sample it.

The network's time input is always ``timestep / num_train_timesteps`` in [0, 1].
"""

from __future__ import annotations

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    FlowMatchHeunDiscreteScheduler,
)
from torch import Tensor

from molgen.prior.config import PriorConfig

__all__ = ["SAMPLERS", "clean_estimate", "make_scheduler", "model_time", "training_pair"]

SAMPLERS: dict[str, dict[str, type]] = {
    "flow": {"euler": FlowMatchEulerDiscreteScheduler, "heun": FlowMatchHeunDiscreteScheduler, "dpm": DPMSolverMultistepScheduler},
    "diffusion": {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpm": DPMSolverMultistepScheduler},
}


def _ddpm(config: PriorConfig) -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=config.num_train_timesteps,
        beta_schedule=config.beta_schedule,
        prediction_type=config.prediction,
        clip_sample=False,
    )


def make_scheduler(config: PriorConfig, sampler: str | None = None, **options):
    """A fresh diffusers scheduler for ``config``'s objective; ``sampler`` names one of :data:`SAMPLERS`."""
    sampler = sampler or config.default_sampler
    choices = SAMPLERS[config.objective]
    if sampler not in choices:
        raise ValueError(f"sampler {sampler!r} does not fit a {config.objective} prior; choose one of {sorted(choices)}")
    if config.objective == "flow":
        if sampler == "dpm":  # the same multistep solver, on the flow path x_t = (1 - s) x0 + s noise
            options = {"use_flow_sigmas": True, "prediction_type": "flow_prediction", "solver_order": 2} | options
        return choices[sampler](num_train_timesteps=config.num_train_timesteps, **options)
    return choices[sampler].from_config(_ddpm(config).config, **options)


def model_time(timestep: Tensor | float, config: PriorConfig, batch: int, device: torch.device) -> Tensor:
    """A scheduler timestep -> (B,) network time input in [0, 1]."""
    t = torch.as_tensor(timestep, dtype=torch.float32, device=device) / config.num_train_timesteps
    return t.expand(batch) if t.ndim == 0 else t


TIME_SAMPLINGS = ("uniform", "logit_normal")
"""How training draws noise levels: ``uniform`` in [0, 1], or ``logit_normal`` (sigmoid of a standard normal,
Esser et al. 2024, SD3), which spends more of training on the middle noise levels where a graph's global
structure is decided."""


def _training_times(batch: int, time_sampling: str, device: torch.device, generator: torch.Generator | None) -> Tensor:
    """(B,) times in (0, 1)."""
    if time_sampling == "uniform":
        return torch.rand(batch, device=device, generator=generator)
    if time_sampling == "logit_normal":
        return torch.sigmoid(torch.randn(batch, device=device, generator=generator))
    raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")


def training_pair(
    config: PriorConfig, x0: Tensor, noise: Tensor, generator: torch.Generator | None = None, time_sampling: str = "uniform"
) -> tuple[Tensor, Tensor, Tensor]:
    """Clean latents ``x0`` (B, N, d) and ``noise`` -> (noisy x_t, (B,) time input, regression target)."""
    batch = x0.shape[0]
    times = _training_times(batch, time_sampling, x0.device, generator)  # (B,) in (0, 1)
    if config.objective == "flow":
        sigma = times  # (B,)
        s = sigma[:, None, None]
        return (1 - s) * x0 + s * noise, sigma, noise - x0
    scheduler = _ddpm(config)
    timesteps = (times * config.num_train_timesteps).long().clamp(0, config.num_train_timesteps - 1)  # (B,)
    x_t = scheduler.add_noise(x0, noise, timesteps)
    target = noise if config.prediction == "epsilon" else scheduler.get_velocity(x0, noise, timesteps)
    return x_t, timesteps.float() / config.num_train_timesteps, target


def clean_estimate(config: PriorConfig, x_t: Tensor, t: Tensor, prediction: Tensor) -> Tensor:
    """The clean latents a prediction at (``x_t``, (B,) network time ``t``) implies: what self-conditioning feeds
    back. Flow: x0 = x_t - t v; diffusion: from epsilon or v with the DDPM schedule's alpha-bar at ``t``."""
    if config.objective == "flow":
        return x_t - t.to(x_t.dtype)[:, None, None] * prediction
    alphas = _ddpm(config).alphas_cumprod.to(x_t.device)
    timesteps = (t * config.num_train_timesteps).round().long().clamp(0, config.num_train_timesteps - 1)
    a = alphas[timesteps].to(x_t.dtype)[:, None, None]  # (B, 1, 1) alpha-bar
    if config.prediction == "epsilon":
        return (x_t - (1 - a).sqrt() * prediction) / a.sqrt()
    return a.sqrt() * x_t - (1 - a).sqrt() * prediction  # v-prediction
