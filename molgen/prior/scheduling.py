"""The one place that says what the set prior's network predicts, how its training pairs are made, and which
diffusers scheduler samples it. Schedulers are used unmodified, and a fresh one is made per sampling call (they keep
state between ``step`` calls).

Flow matching: x_s = (1 - s) x0 + s noise with s = sigma in [0, 1] (1 is pure noise, as in diffusers'
FlowMatchEulerDiscreteScheduler); the network predicts the velocity ``noise - x0``; samplers run from sigma = 1 to 0
with timesteps ``1000 sigma`` taken from ``scheduler.timesteps``: Euler, Heun (two network evaluations per step), or
DPM-Solver++ 2M (``dpm``: DPMSolverMultistepScheduler on flow sigmas, second order from one evaluation per step).
The network's time input is ``timestep / num_train_timesteps`` in [0, 1].
"""

from __future__ import annotations

import torch
from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler
from torch import Tensor

from molgen.prior.config import PriorConfig

__all__ = ["SAMPLERS", "TIME_SAMPLINGS", "make_scheduler", "model_time", "training_pair"]

SAMPLERS: dict[str, type] = {"euler": FlowMatchEulerDiscreteScheduler, "heun": FlowMatchHeunDiscreteScheduler, "dpm": DPMSolverMultistepScheduler}


def make_scheduler(config: PriorConfig, sampler: str | None = None):
    """A fresh diffusers scheduler; ``sampler`` names one of :data:`SAMPLERS` (default: the prior's)."""
    sampler = sampler or config.default_sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}: choose one of {sorted(SAMPLERS)}")
    options = {"use_flow_sigmas": True, "prediction_type": "flow_prediction", "solver_order": 2} if sampler == "dpm" else {}
    return SAMPLERS[sampler](num_train_timesteps=config.num_train_timesteps, **options)


def model_time(timestep: Tensor | float, config: PriorConfig, batch: int, device: torch.device) -> Tensor:
    """A scheduler timestep -> (B,) network time input in [0, 1]."""
    t = torch.as_tensor(timestep, dtype=torch.float32, device=device) / config.num_train_timesteps
    return t.expand(batch) if t.ndim == 0 else t


TIME_SAMPLINGS = ("uniform", "logit_normal")
"""How training draws noise levels: ``uniform`` in [0, 1], or ``logit_normal`` (sigmoid of a standard normal,
Esser et al. 2024, SD3), which spends more of training on the middle noise levels."""


def training_pair(x0: Tensor, noise: Tensor, generator: torch.Generator | None = None, time_sampling: str = "uniform") -> tuple[Tensor, Tensor, Tensor]:
    """Clean latents ``x0`` (B, N, d) and ``noise`` -> (noisy x_t, (B,) time input sigma, velocity target noise - x0)."""
    batch = x0.shape[0]
    if time_sampling == "uniform":
        sigma = torch.rand(batch, device=x0.device, generator=generator)
    elif time_sampling == "logit_normal":
        sigma = torch.sigmoid(torch.randn(batch, device=x0.device, generator=generator))
    else:
        raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
    s = sigma[:, None, None]
    return (1 - s) * x0 + s * noise, sigma, noise - x0
